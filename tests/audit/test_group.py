"""Group commit: units of several threads share one COMMIT, each in its own savepoint; a
unit returns only after that commit; a failing unit undoes only itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from audit import record
from audit.group import AFTER_COMMIT, GroupCommit
from audit.models import create_tables, entries
from tests.audit.helpers import make_entry

WAIT = 10.0  # seconds: bounded waits, not speed goals


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield engine
        return
    from audit.db import open_engine
    from tests.conftest import new_pg_database

    eng = open_engine(new_pg_database())
    create_tables(eng)
    yield eng
    eng.dispose()


def _stored(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as c:
        return [(r.idx, r.action) for r in c.execute(select(entries.c.idx, entries.c.action).order_by(entries.c.idx))]


def _queued(group: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + WAIT
    while group._waiting < n:  # the units are queued behind the one in progress
        assert time.monotonic() < deadline, "units did not queue up"
        time.sleep(0.005)


def test_group_units_queued_meanwhile_share_one_commit_and_return_after_it(db: Engine) -> None:
    group = GroupCommit(db)
    inside, release = threading.Event(), threading.Event()
    returned: dict[str, Any] = {}

    def first() -> None:
        with group.unit() as s:
            record(s, make_entry(0, action="case.create"))
            inside.set()
            release.wait(WAIT)
        returned["first"] = _stored(db)  # after the commit: visible to everyone

    def later(k: int) -> None:
        with group.unit() as s:
            record(s, make_entry(k, action="case.accept"))
        returned[f"later{k}"] = _stored(db)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert inside.wait(WAIT)
    threads += [threading.Thread(target=later, args=(k,)) for k in (1, 2)]
    for t in threads[1:]:
        t.start()
    _queued(group, 2)
    release.set()
    for t in threads:
        t.join(WAIT)
    assert group.batches == 1
    expected = [(0, "case.create"), (1, "case.accept"), (2, "case.accept")]
    assert returned == {"first": expected, "later1": expected, "later2": expected}


def test_group_failing_unit_rolls_back_only_itself_and_indexes_stay_consecutive(db: Engine) -> None:
    group = GroupCommit(db)
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with group.unit() as s:
            record(s, make_entry(0, action="case.create"))
            inside.set()
            release.wait(WAIT)

    def failing() -> None:
        try:
            with group.unit() as s:
                record(s, make_entry(1, action="case.reject"))
                raise LookupError("the change failed after its entry was appended")
        except LookupError as exc:
            errors.append(exc)

    def last() -> None:
        with group.unit() as s:
            record(s, make_entry(2, action="case.accept"))

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(WAIT)
    t2 = threading.Thread(target=failing)
    t2.start()
    _queued(group, 1)
    t3 = threading.Thread(target=last)
    t3.start()
    _queued(group, 2)
    release.set()
    for t in (t1, t2, t3):
        t.join(WAIT)
    assert len(errors) == 1
    assert _stored(db) == [(0, "case.create"), (1, "case.accept")]


def test_group_many_writers_every_acknowledged_entry_is_stored(db: Engine) -> None:
    group = GroupCommit(db)
    acknowledged: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(20):
            with group.unit() as s:
                idx = record(s, make_entry(k * 100 + i))
            with lock:
                acknowledged.append(idx)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = [i for i, _a in _stored(db)]
    assert sorted(acknowledged) == stored == list(range(320))


def test_group_after_commit_hooks_run_once_committed_and_never_for_a_rolled_back_unit(db: Engine) -> None:
    """A unit's Session sees after_commit at its savepoint's release, before the COMMIT; what
    must see committed data (e.g. the event hub's wake-up) goes to info[AFTER_COMMIT]."""
    group = GroupCommit(db)
    seen: list[Any] = []
    with group.unit() as s:
        record(s, make_entry(0, action="case.create"))
        s.info[AFTER_COMMIT].append(lambda: seen.append(_stored(db)))
    with pytest.raises(LookupError):
        with group.unit() as s:
            record(s, make_entry(1, action="case.reject"))
            s.info[AFTER_COMMIT].append(lambda: seen.append("rolled back"))
            raise LookupError("undone")
    assert seen == [[(0, "case.create")]]


def test_group_units_and_plain_transactions_mixed_keep_indexes_consecutive(db: Engine) -> None:
    """Plain transactions (e.g. a throttled refusal's entry) append beside the batches; on
    PostgreSQL a batch's "already holds the append lock" mark must not outlive its
    transaction on the pooled connection, or a plain append would skip the lock."""
    from sqlalchemy.orm import Session

    group = GroupCommit(db)
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        try:
            for i in range(15):
                if (k + i) % 2:
                    with group.unit() as s:
                        idx = record(s, make_entry(k * 100 + i))
                else:
                    with Session(db) as s, s.begin():
                        idx = record(s, make_entry(k * 100 + i))
                with lock:
                    acknowledged.append(idx)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(acknowledged) == [i for i, _a in _stored(db)] == list(range(120))


def test_group_nested_unit_rolled_back_inside_a_unit_undoes_only_itself(db: Engine) -> None:
    """Savepoints share one name (audit.group._fast_savepoints): after an inner unit rolled
    back, the outer unit's own rollback must still reach the outer savepoint, and its commit
    must still keep what it did before and after the inner one."""
    group = GroupCommit(db)
    with group.unit() as s:
        record(s, make_entry(0, action="case.create"))
        with pytest.raises(LookupError):
            with group.unit() as inner:
                record(inner, make_entry(1, action="case.reject"))
                raise LookupError("inner undone")
        record(s, make_entry(2, action="case.accept"))
    with pytest.raises(KeyError):
        with group.unit() as s:
            record(s, make_entry(3, action="case.create"))
            with pytest.raises(LookupError):
                with group.unit() as inner:
                    record(inner, make_entry(4, action="case.reject"))
                    raise LookupError("inner undone")
            with group.unit() as inner:
                record(inner, make_entry(5, action="case.accept"))
            raise KeyError("the whole outer unit fails")
    with group.unit() as s:
        record(s, make_entry(6, action="case.complete"))
    assert _stored(db) == [(0, "case.create"), (1, "case.accept"), (2, "case.complete")]
