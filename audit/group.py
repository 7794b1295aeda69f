"""Group commit: the transactions of many threads share one database transaction, each in a
SAVEPOINT of its own, with one COMMIT per batch.

Why: every append must commit together with the action it records, and an action is
acknowledged only after that commit. One transaction per action costs a BEGIN, a COMMIT
and a WAL write of the same index pages per entry; with 64 concurrent writers that
overhead, not the insert, bounds the rate (see ``bench/audit_bench.py``: the empty
transaction ceiling). Batching the units that queue up meanwhile into one commit keeps the
guarantee and pays that cost once per batch:

- each unit runs alone on the batch's session (a mutex; on SQLite the process already
  serialized writers, on PostgreSQL the append's advisory lock did from record() on);
- a unit that raises rolls back to its savepoint: only its own changes are undone, the
  batch goes on, and indexes stay consecutive (the next record() reads max(idx) again);
- a unit returns only after the batch it belongs to has committed; if that COMMIT fails,
  every unit of the batch raises (none was acknowledged);
- a batch commits when no other unit is waiting to join it, or at ``max_batch`` units.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

MAX_BATCH = 256  # units per COMMIT


class _Batch:
    __slots__ = ("session", "units", "done", "error")

    def __init__(self, engine: Engine, session_class: type[Session]) -> None:
        self.session = session_class(engine, expire_on_commit=False)
        self.session.begin()
        self.units = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """One per engine (``group_commit(engine)``); threads call ``unit()``."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH,
                 session_class: type[Session] = Session) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.session_class = session_class  # e.g. sqlmodel's Session, for the callers' API
        self._mutex = threading.Lock()  # one unit at a time on the batch's session
        self._count = threading.Lock()  # guards _waiting
        self._waiting = 0
        self._batch: _Batch | None = None
        self._local = threading.local()
        self.batches = 0  # committed batches (figures for the benchmark)

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """A session inside this unit's savepoint. Leaving the block normally returns
        after the batch's COMMIT; an exception rolls back this unit only and propagates.
        A unit opened inside another (same thread) is a nested savepoint of it."""
        outer: Session | None = getattr(self._local, "session", None)
        if outer is not None:
            nested = outer.begin_nested()
            try:
                yield outer
            except BaseException:
                nested.rollback()
                raise
            nested.commit()
            return
        with self._count:
            self._waiting += 1
        self._mutex.acquire()
        with self._count:
            self._waiting -= 1
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch(self.engine, self.session_class)
        failed: BaseException | None = None
        session = batch.session
        try:
            _raw(session, "SAVEPOINT group_unit")
            self._local.session = session
            try:
                yield session
                session.flush()  # this unit's changes belong to its savepoint, not the next one
                _raw(session, "RELEASE SAVEPOINT group_unit")
                batch.units += 1
            except BaseException as exc:
                failed = exc
                _raw(session, "ROLLBACK TO SAVEPOINT group_unit")
                _raw(session, "RELEASE SAVEPOINT group_unit")
                raise
            finally:
                self._local.session = None
                # Each unit sees the database, not another unit's objects: its instances stay
                # with its own thread (loaded, detached), as with a session of its own; an
                # undone unit's objects are never flushed later.
                session.expunge_all()
        finally:
            committer = self._close_if_last(batch)
            self._mutex.release()
            if committer:
                self._commit(batch)
        if failed is None:
            batch.done.wait()
            if batch.error is not None:
                raise batch.error

    def _close_if_last(self, batch: _Batch) -> bool:
        """Under the mutex: is this the last unit of ``batch``? Then nobody else joins it."""
        with self._count:
            last = self._waiting == 0 or batch.units >= self.max_batch
        if last:
            self._batch = None
        return last

    def _commit(self, batch: _Batch) -> None:
        try:
            batch.session.commit()
            self.batches += 1
        except BaseException as exc:
            batch.error = exc
            batch.session.rollback()
        finally:
            batch.session.close()
            batch.done.set()


def _raw(session: Session, sql: str) -> None:
    """A savepoint statement straight on the DBAPI connection: SQLAlchemy's nested
    transaction machinery costs more than the append itself. The ORM is kept in step by
    flushing before RELEASE and expunging every unit's objects at its end."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


_groups: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def group_commit(engine: Engine, session_class: type[Session] = Session) -> GroupCommit:
    """The engine's group committer (created on first use with ``session_class``)."""
    with _groups_lock:
        group = _groups.get(engine)
        if group is None:
            group = _groups[engine] = GroupCommit(engine, session_class=session_class)
        return group
