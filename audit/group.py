"""Group commit: the transactions of many threads share one database transaction, each in a
SAVEPOINT of its own, with one COMMIT per batch.

Why: every append must commit together with the action it records, and an action is
acknowledged only after that commit. One transaction per action costs a BEGIN, a COMMIT
and a WAL write of the same index pages per entry; with 64 concurrent writers that
overhead, not the insert, bounds the rate (see ``bench/audit_bench.py``: the empty
transaction ceiling). Batching the units that queue up meanwhile into one commit keeps the
guarantee and pays that cost once per batch:

- each unit runs alone on the batch's connection (a mutex), in a Session of its own bound to
  that connection with ``join_transaction_mode="create_savepoint"``: its objects, its
  flushes and its rollback are its own, as with a transaction of its own;
- a unit that raises (also a failed flush, e.g. an IntegrityError) rolls back to its
  savepoint: only its own changes are undone, the batch goes on, and indexes stay
  consecutive (the next record() reads max(idx) again);
- a unit returns only after the batch it belongs to has committed; if that COMMIT fails,
  every unit of the batch raises (none was acknowledged);
- a batch commits when no other unit is waiting to join it, or at ``max_batch`` units;
- a unit's Session fires ``after_commit`` when its savepoint is released, i.e. *before* the
  batch's COMMIT; code that must run after the data is visible appends a callable to
  ``session.info[AFTER_COMMIT]`` instead (run once the batch committed, dropped if the unit
  rolled back);
- SQLite: the batch's ``BEGIN IMMEDIATE`` holds the process' write lock, as one transaction
  did. PostgreSQL: the batch takes the append lock (``audit.store.APPEND_LOCK``) first, so
  batches of several processes queue on it before any unit runs and never hold each other's
  row or publish locks in a cycle; delegated actions are thus serialized across processes
  for the whole action (before: from the append to the commit), and commit once per batch.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .store import APPEND_LOCK, APPEND_LOCKED

MAX_BATCH = 256  # units per COMMIT
AFTER_COMMIT = "audit.group.after_commit"  # session.info key: callables run after the COMMIT
log = logging.getLogger(__name__)
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
# the one savepoint name (see _fast_savepoints)
_SQL_SAVEPOINT, _SQL_RELEASE = "SAVEPOINT sa_savepoint", "RELEASE SAVEPOINT sa_savepoint"
_SQL_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT sa_savepoint"


class _Batch:
    __slots__ = ("conn", "units", "done", "error", "after")

    def __init__(self, engine: Engine) -> None:
        self.conn: Connection = engine.connect()
        try:
            self.conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
            if self.conn.dialect.name == "postgresql":
                self.conn.execute(_PG_LOCK, {"k": APPEND_LOCK})
                self.conn.info[APPEND_LOCKED] = True  # until this transaction ends
        except BaseException:
            self.conn.close()
            raise
        self.units = 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.after: list[Callable[[], None]] = []


class GroupCommit:
    """One per engine (``group_commit(engine)``); threads call ``unit()``."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH,
                 session_class: type[Session] = Session) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.session_class = session_class  # e.g. sqlmodel's Session, for the callers' API
        self._mutex = threading.Lock()  # one unit at a time on the batch's connection
        # One token per thread between asking for the mutex and getting it: deque append and
        # pop are atomic under the GIL, so this costs no lock of its own. Read by the mutex's
        # holder: a token there is a thread that will join the open batch.
        self._queue: deque[None] = deque()
        self._batch: _Batch | None = None
        self._local = threading.local()
        self.batches = 0  # committed batches (figures for the benchmark, tests)
        _fast_savepoints(engine)

    def _session(self, conn: Connection, session_class: type[Session] | None) -> Session:
        return (session_class or self.session_class)(bind=conn, join_transaction_mode="create_savepoint",
                                  expire_on_commit=False)

    @contextmanager
    def unit(self, session_class: type[Session] | None = None) -> Iterator[Session]:
        """A session inside this unit's savepoint. Leaving the block normally returns
        after the batch's COMMIT; an exception rolls back this unit only and propagates.
        A unit opened inside another (same thread) is a nested savepoint of it. Raises
        what the batch's BEGIN or COMMIT raised (then nothing of the unit was committed).
        ``session_class`` overrides the group's (e.g. sqlmodel's Session)."""
        outer: _Batch | None = getattr(self._local, "batch", None)
        if outer is not None:
            session = self._session(outer.conn, session_class)
            inner: list[Callable[[], None]] = []
            session.info[AFTER_COMMIT] = inner
            try:
                with session.begin():
                    yield session
                self._local.after += inner  # the outer unit's, if it does not roll back
            finally:
                session.close()
            return
        self._queue.append(None)
        self._mutex.acquire()
        self._queue.pop()
        batch = self._batch
        if batch is None:
            try:
                batch = self._batch = _Batch(self.engine)
            except BaseException:
                self._mutex.release()
                raise
        failed = False
        session = self._session(batch.conn, session_class)
        after: list[Callable[[], None]] = []
        session.info[AFTER_COMMIT] = after
        try:
            self._local.batch, self._local.after = batch, after
            try:
                with session.begin():  # SAVEPOINT … RELEASE, or ROLLBACK TO on an exception
                    yield session
                batch.units += 1
                batch.after += after
            except BaseException:
                failed = True
                raise
            finally:
                self._local.batch = self._local.after = None
                session.close()  # its objects stay loaded, detached, with this thread
        finally:
            committer = self._close_if_last(batch)
            self._mutex.release()
            if committer:
                self._commit(batch)
        if not failed:
            batch.done.wait()
            if batch.error is not None:
                raise batch.error

    @property
    def _waiting(self) -> int:
        """Threads waiting for the mutex (figures for tests)."""
        return len(self._queue)

    def _close_if_last(self, batch: _Batch) -> bool:
        """Under the mutex: is this the last unit of ``batch``? Then nobody else joins it."""
        last = not self._queue or batch.units >= self.max_batch
        if last:
            self._batch = None
        return last

    def _commit(self, batch: _Batch) -> None:
        try:
            batch.conn.commit()
            self.batches += 1
            for hook in batch.after:
                try:
                    hook()
                except Exception:  # the batch is committed: a hook's failure is only logged
                    log.exception("after-commit hook %r failed", hook)
        except BaseException as exc:
            batch.error = exc
            try:
                batch.conn.rollback()
            except Exception:  # noqa: BLE001 - the COMMIT's error is the one to report
                pass
        finally:
            try:
                if not batch.conn.closed and not batch.conn.invalidated:
                    batch.conn.info.pop(APPEND_LOCKED, None)  # the pooled connection outlives the lock
                batch.conn.close()
            finally:
                batch.done.set()  # never leave the batch's units waiting


def _fast_savepoints(engine: Engine) -> None:
    """Savepoint statements straight on the DBAPI cursor for this engine's dialect:
    SQLAlchemy's statement machinery costs more than SQLite's savepoint itself
    (``Dialect.do_savepoint`` etc. are SQLAlchemy's documented hooks).

    Every savepoint is named ``sa_savepoint`` instead of SQLAlchemy's numbered names: SAVEPOINT,
    RELEASE and ROLLBACK TO name the innermost savepoint of that name (SQLite and PostgreSQL
    alike), and SQLAlchemy nests them strictly, so one name means the same statements; with a
    new number per unit, each was a new SQL text that SQLite parsed again (pysqlite's statement
    cache never hit)."""
    dialect: Any = engine.dialect
    if getattr(dialect, "_group_fast_savepoints", False):
        return

    def run(conn: Connection, *sql: str) -> None:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            for statement in sql:
                cur.execute(statement)
        finally:
            cur.close()

    dialect.do_savepoint = lambda conn, _name: run(conn, _SQL_SAVEPOINT)
    # ROLLBACK TO keeps the savepoint; SQLAlchemy is done with it, so it is released too:
    # the database's stack of savepoints stays SQLAlchemy's, and the next RELEASE or
    # ROLLBACK TO of this one name reaches the savepoint SQLAlchemy means.
    dialect.do_rollback_to_savepoint = lambda conn, _name: run(conn, _SQL_ROLLBACK_TO, _SQL_RELEASE)
    dialect.do_release_savepoint = lambda conn, _name: run(conn, _SQL_RELEASE)
    dialect._group_fast_savepoints = True


_groups: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def group_commit(engine: Engine, session_class: type[Session] = Session) -> GroupCommit:
    """The engine's group committer (created on first use with ``session_class``)."""
    with _groups_lock:
        group = _groups.get(engine)
        if group is None:
            group = _groups[engine] = GroupCommit(engine, session_class=session_class)
        return group
