"""audit.db.open_engine (write lock, checkpoints outside it, pool) and record()'s SQLite
fast path, which must store exactly what the SQLAlchemy Core statement stores."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import audit.db as adb
from audit import record, store
from audit.entry import canonical_json, normalize, parse_time
from audit.merkle import leaf_hash
from audit.models import create_tables, entries
from tests.audit.helpers import make_entry


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Engine]:
    eng = adb.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    create_tables(eng)
    yield eng
    eng.dispose()


def _times() -> list[dict[str, Any]]:
    return [
        make_entry(0),
        make_entry(1, time="2026-11-21T08:30:00Z"),  # no fraction
        make_entry(2, time="2026-11-21T08:30:00.5Z", matter=None, outlet=None, case=None),
        make_entry(3, time="2026-02-28T23:59:59.123Z", partner=None),
    ]


def _raw_rows(eng: Engine) -> list[tuple[Any, ...]]:
    with eng.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql(
            "SELECT *, typeof(time) FROM audit_entries ORDER BY idx")]  # fmt: skip


def test_sqlite_fast_path_stores_the_same_row_as_the_core_statement(
    served: Engine, tmp_path: Path
) -> None:
    with Session(served) as s, s.begin():
        assert [record(s, e) for e in _times()] == [0, 1, 2, 3]
    core = adb.open_engine(f"sqlite:///{tmp_path / 'core.db'}")
    create_tables(core)
    with core.begin() as c:
        for e in _times():
            n = normalize(e)
            leaf = canonical_json(n)
            values = [leaf, leaf_hash(leaf), parse_time(n["time"]),
                      n["actor"]["id"], n["actor"]["role"], n["outlet"], n["partner"],
                      n["action"], n["case"], (n["matter"] or {}).get("code")]  # fmt: skip
            c.execute(store._INSERT, dict(zip(store._COLS, values, strict=True)))
    assert _raw_rows(served) == _raw_rows(core)
    core.dispose()
    with Session(served) as s:
        row = s.execute(entries.select().where(entries.c.idx == 1)).one()
    assert str(row.time) == "2026-11-21 08:30:00"  # read back as a datetime


def test_record_raises_sqlalchemy_errors_on_the_fast_path(served: Engine) -> None:
    with served.begin() as c:
        c.execute(text("DROP TABLE audit_entries"))
    with pytest.raises(exc.OperationalError, match="no such table"):
        with Session(served) as s, s.begin():
            record(s, make_entry(0))
    # the failed transaction was rolled back and the write lock released
    with served.begin() as c:
        c.execute(text("CREATE TABLE t (x)"))


def test_engine_pragmas_and_pool(served: Engine) -> None:
    with served.connect() as c:
        got = [c.exec_driver_sql(f"PRAGMA {p}").scalar()
               for p in ("journal_mode", "synchronous", "wal_autocheckpoint")]  # fmt: skip
    assert got == ["wal", 1, adb.WAL_AUTOCHECKPOINT]
    assert served.pool.size() == adb.POOL_SIZE  # type: ignore[attr-defined]
    mem = adb.open_engine("sqlite://")  # in-memory: SQLAlchemy's single-thread pool
    create_tables(mem)
    with Session(mem) as s, s.begin():
        assert record(s, make_entry(0)) == 0
    mem.dispose()


def test_checkpoint_runs_after_the_write_lock_is_released(
    served: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adb, "CHECKPOINT_EVERY", 4)
    seen: list[tuple[bool, bool]] = []
    real = adb._SerializedConnection._checkpoint

    def spy(self: adb._SerializedConnection) -> None:
        seen.append((self.holding, self.writers.lock.locked()))
        real(self)

    monkeypatch.setattr(adb._SerializedConnection, "_checkpoint", spy)
    db = tmp_path / "a.db"
    before = db.stat().st_size
    with served.connect() as c:
        start = c.connection.dbapi_connection.writers.commits  # type: ignore[union-attr]
    for i in range(9):
        with Session(served) as s, s.begin():
            record(s, make_entry(i))
    assert len(seen) == (start + 9) // 4 - start // 4 >= 2
    assert all(s == (False, False) for s in seen)
    assert db.stat().st_size > before  # pages reached the database file, not only the WAL
    with served.connect() as c:  # a rolled-back transaction is not counted
        c.exec_driver_sql("SELECT 1")
        c.rollback()
    assert len(seen) == (start + 9) // 4 - start // 4


def test_a_failing_checkpoint_does_not_fail_the_committed_transaction(
    served: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(adb, "CHECKPOINT_EVERY", 1)

    def execute(self: sqlite3.Connection, sql: str, *args: Any) -> sqlite3.Cursor:
        if "wal_checkpoint" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return sqlite3.Connection.execute(self, sql, *args)

    monkeypatch.setattr(adb._SerializedConnection, "execute", execute)
    with Session(served) as s, s.begin():
        assert record(s, make_entry(0)) == 0
    assert "WAL checkpoint failed: disk I/O error" in caplog.text
    with Session(served) as s, s.begin():  # lock released, next writer goes on
        assert record(s, make_entry(1)) == 1


def test_many_writers_more_than_the_pool_get_consecutive_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adb, "POOL_SIZE", 2)
    monkeypatch.setattr(adb, "POOL_OVERFLOW", 1)  # threads also wait for a connection
    monkeypatch.setattr(adb, "CHECKPOINT_EVERY", 5)
    eng = adb.open_engine(f"sqlite:///{tmp_path / 'm.db'}")
    create_tables(eng)
    got: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(10):
            with Session(eng) as s, s.begin():
                idx = record(s, make_entry(k * 100 + i))
            with lock:
                got.append(idx)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(160))
    with eng.connect() as c:
        assert store.entry_count(c) == 160
    eng.dispose()


# --- the read-only engine (open_reader) -------------------------------------------------


def test_reader_reads_while_a_writer_holds_the_write_lock(served: Engine, tmp_path: Path) -> None:
    """A read never queues behind the in-process write lock nor SQLite's: it sees the last
    committed snapshot while a write transaction is open."""
    reader = adb.open_reader(f"sqlite:///{tmp_path / 'a.db'}", served)
    assert adb.reader_of(served) is reader
    with Session(served) as s, s.begin():
        record(s, make_entry(0))
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with Session(served) as s, s.begin():
            record(s, make_entry(1))
            writing.set()
            release.wait(30)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert writing.wait(30)
        seen: list[int] = []
        r = threading.Thread(target=lambda: seen.extend(_count(reader)))
        r.start()
        r.join(30)
        assert not r.is_alive(), "the read waited for the writer"
        assert seen == [1]  # the committed entry only
    finally:
        release.set()
        t.join(30)
    assert _count(reader) == [2]
    reader.dispose()


def _count(eng: Engine) -> list[int]:
    with Session(eng) as s:
        return [int(s.execute(text("SELECT count(*) FROM audit_entries")).scalar_one())]


def test_reader_refuses_writes(served: Engine, tmp_path: Path) -> None:
    reader = adb.open_reader(f"sqlite:///{tmp_path / 'a.db'}", served)
    with pytest.raises(exc.OperationalError, match="readonly"):
        with Session(reader) as s, s.begin():
            record(s, make_entry(0))
    assert _count(served) == [0]
    reader.dispose()


def test_reader_of_an_engine_without_one_is_the_engine(served: Engine) -> None:
    assert adb.reader_of(served) is served
