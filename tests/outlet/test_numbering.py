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


# --- capacity: the convention's 4-digit serial, widened deliberately -----------------------

def _set_serial(world: World, last: int) -> None:
    from sqlmodel import Session

    from outlet.models import CaseSerial

    with Session(world.engine) as s:
        s.add(CaseSerial(implementation_code=COMMITTED_CODE, day="20260928", last=last))
        s.commit()


def test_the_10000th_case_of_a_day_gets_a_five_digit_serial(world: World) -> None:
    # Issue 8: "the 10,000th case of one matter in one day is refused".
    _set_serial(world, 9999)
    number = world.new_case().number
    assert number == f"{COMMITTED_CODE}2026092810000"
    assert len(number) <= 48


def test_past_the_capacity_a_clear_message_and_no_number(world: World) -> None:
    from outlet.cases import serial_capacity
    from outlet.errors import InvalidInput

    _set_serial(world, serial_capacity(COMMITTED_CODE))
    with pytest.raises(InvalidInput, match="每日最多 999,999 件"):
        world.new_case()


@pytest.mark.parametrize(("code_length", "capacity"), [(30, 999_999), (31, 999_999), (33, 999_999),
                                                      (35, 99_999), (36, 9_999), (40, 9_999)])
def test_serial_capacity_follows_the_room_in_the_number(code_length: int, capacity: int) -> None:
    from outlet.cases import serial_capacity

    # 实施编码 is 31 characters (33 with a 办理项 suffix); the number column holds 48.
    assert serial_capacity("1" * code_length) == capacity


def test_notice_numbers_widen_past_99(world: World) -> None:
    from sqlmodel import Session

    from outlet.models import Case
    from outlet.notices import issue

    case = world.new_case()
    with Session(world.engine) as s:
        row = s.get(Case, case.id)
        assert row is not None
        numbers = [issue(s, row, "one_time", actor_id=1, at=case.created_at).number for _ in range(101)]
        s.flush()
        s.commit()
    # numbered within the transaction: count is taken from flushed rows
    assert numbers[0].endswith("-GZ01") and numbers[-1].endswith("-GZ101")
    assert len(set(numbers)) == 101
