"""Case numbers stay unique when many tellers take cases in at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import web.models  # noqa: F401
from tests.outlet.conftest import COMMITTED_CODE, World, build_world
from web.db import make_engine

THREADS = 12


def _race(world: World) -> list[str]:
    barrier = threading.Barrier(THREADS)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            actor = world.teller_a if i % 2 else world.teller_b
            case = world.new_case(actor=actor)
            with lock:
                numbers.append(case.number)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return numbers


def _expect(numbers: list[str]) -> None:
    assert sorted(numbers) == [f"{COMMITTED_CODE}20260928{i:04d}" for i in range(1, THREADS + 1)]


def test_case_numbers_unique_under_threads_on_sqlite_file(world: World) -> None:
    _expect(_race(world))


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=THREADS, max_overflow=4)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_case_numbers_unique_under_threads_on_postgresql(pg_engine: Engine) -> None:
    _expect(_race(build_world(pg_engine)))
