"""Under concurrency (threads, a real SQLite file and a real PostgreSQL server): ticket
numbers stay unique and consecutive, and counters calling at the same moment never get the
same ticket."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401
from outlet.queue import counters, tickets
from outlet.queue.errors import NoOneWaiting
from partners.models import Staff
from tests.outlet.conftest import AT, _staff, build_world
from tests.outlet.queue.conftest import Floor, build_floor
from web.db import make_engine

THREADS = 8


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            got = work(i)
            with lock:
                out.append(got)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return out


def _issue_race(f: Floor) -> None:
    got = _race(THREADS, lambda i: tickets.issue(f.engine, outlet_id=f.outlet_id, line_id=f.line_a.id or 0,
                                                 hub=f.hub, device_id=1, at=AT).number)
    assert sorted(got) == [f"A{i:03d}" for i in range(1, THREADS + 1)]


def _tellers(f: Floor, n: int) -> list[Staff]:
    """``n`` tellers, each signed in to a counter of their own serving line A."""
    out = []
    with Session(f.engine, expire_on_commit=False) as s, s.begin():
        staff = [_staff(s, f"teller.c{i}", "teller", f.world.outlet_a) for i in range(n)]
    for i, st in enumerate(staff):
        c = counters.save_counter(f.engine, f.lead, number=str(10 + i), name=f"{10 + i}号窗口",
                                  line_ids=[f.line_a.id or 0], at=AT)
        counters.sign_in(f.engine, st, c.id or 0, at=AT)
        out.append(st)
    return out


def _call_race(f: Floor) -> None:
    waiting = THREADS - 2  # fewer tickets than counters: two must hear "no one waiting"
    for _ in range(waiting):
        tickets.issue(f.engine, outlet_id=f.outlet_id, line_id=f.line_a.id or 0, hub=f.hub, device_id=1, at=AT)
    staff = _tellers(f, THREADS)

    def call(i: int) -> str | None:
        try:
            return tickets.call_next(f.engine, staff[i], hub=f.hub, at=AT).number
        except NoOneWaiting:
            return None

    got = _race(THREADS, call)
    numbers = [n for n in got if n is not None]
    assert len(numbers) == waiting and len(set(numbers)) == waiting
    assert got.count(None) == THREADS - waiting


def test_ticket_numbers_unique_under_concurrent_issue_on_sqlite(floor: Floor) -> None:
    _issue_race(floor)


def test_counters_calling_at_once_never_share_a_ticket_on_sqlite(floor: Floor) -> None:
    _call_race(floor)


@pytest.fixture
def pg_floor(pg_url: str) -> Iterator[Floor]:
    engine = make_engine(pg_url, pool_size=THREADS + 2, max_overflow=4)
    SQLModel.metadata.create_all(engine)
    yield build_floor(build_world(engine))
    engine.dispose()


@pytest.mark.postgres
def test_ticket_numbers_unique_under_concurrent_issue_on_postgresql(pg_floor: Floor) -> None:
    _issue_race(pg_floor)


@pytest.mark.postgres
def test_counters_calling_at_once_never_share_a_ticket_on_postgresql(pg_floor: Floor) -> None:
    _call_race(pg_floor)
