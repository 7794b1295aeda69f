"""Engines for the CLI and tools, configured like the app's (WAL, BEGIN IMMEDIATE), and
the read-only engine pages read with (:func:`open_reader`: deferred BEGIN, no write lock)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

log = logging.getLogger(__name__)

# WAL checkpoints copy committed pages into the database file and fsync twice. SQLite's
# automatic checkpoint runs inside the COMMIT call, i.e. while this process' write lock
# is held, so every writer waited for those fsyncs (a few ms every ~100 appends). With
# serialized writers the committing thread instead runs a PASSIVE checkpoint every
# CHECKPOINT_EVERY commits after releasing the lock (other writers go on meanwhile), and
# SQLite's own checkpoint is only the backstop at WAL_AUTOCHECKPOINT pages: it then has
# little left to copy and, running under the lock, lets the next writer rewind the WAL.
CHECKPOINT_EVERY = 256
WAL_AUTOCHECKPOINT = 10_000  # pages (40 MB at 4 KiB); SQLite's default is 1000
# Pooled connections for a SQLite file (SQLAlchemy's default is 5 + 10 overflow). All
# transactions of the process queue on the write lock anyway, so more connections cost
# only a few file handles each; but a thread that finds the pool empty waits in the
# pool's pure-Python queue, which hands connections over with an extra thread switch per
# transaction and no fairness (threads starved for seconds at 64 writers). With a
# connection per thread they queue on the write lock only.
POOL_SIZE = 64
POOL_OVERFLOW = 64


class _Writers:
    """Per-engine writer queue: the lock and the commit counter."""

    __slots__ = ("lock", "commits")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.commits = 0


class _SerializedConnection(sqlite3.Connection):
    """Holds the engine's in-process write lock from BEGIN IMMEDIATE to COMMIT/ROLLBACK,
    so threads of one process queue on a lock instead of SQLite's sleeping busy handler
    (which wastes 1-100 ms per collision under many concurrent writers)."""

    writers: _Writers
    holding = False

    def _acquire(self) -> None:
        if not self.holding:
            self.writers.lock.acquire()
            self.holding = True

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            self.writers.lock.release()

    def commit(self) -> None:
        checkpoint = False
        try:
            super().commit()
            if self.holding:  # the counter is only touched under the lock
                w = self.writers
                w.commits += 1
                checkpoint = w.commits % CHECKPOINT_EVERY == 0
        finally:
            self._release()
        if checkpoint:
            self._checkpoint()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def _checkpoint(self) -> None:
        """PASSIVE checkpoint outside the write lock: it never waits for (nor blocks)
        writers or readers. The transaction is already committed and durable, so a
        failure here must not reach the caller (SQLite ignores failed automatic
        checkpoints too); the next one, or the backstop, copies the pages later."""
        if self.in_transaction:
            return
        try:
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %s", exc)


def open_engine(url: str, *, serialize_writers: bool = True) -> Engine:
    """An engine for ``url``. SQLite gets WAL, synchronous=NORMAL (commits survive a
    process kill), busy_timeout and ``BEGIN IMMEDIATE`` write transactions; with
    ``serialize_writers`` threads of this process also queue on one lock for writing
    and WAL checkpoints run outside that lock."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    args: dict[str, Any] = {"check_same_thread": False}
    if serialize_writers:
        args["factory"] = _SerializedConnection
    pool: dict[str, Any] = {}
    if _is_file_db(make_url(url)):  # in-memory databases use SingletonThreadPool
        pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    engine = create_engine(url, connect_args=args, **pool)
    writers = _Writers()
    pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"]
    if serialize_writers:
        pragmas.append(f"wal_autocheckpoint={WAL_AUTOCHECKPOINT}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        if serialize_writers:
            dbapi_connection.writers = writers
        cur = dbapi_connection.cursor()
        for pragma in pragmas:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        if serialize_writers:
            dbapi._acquire()
        try:
            # Straight on the DBAPI connection: SQLAlchemy's statement machinery would
            # cost more than SQLite's BEGIN itself.
            dbapi.execute("BEGIN IMMEDIATE")
        except BaseException:
            if serialize_writers:
                dbapi._release()
            raise

    return engine


_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def reader_of(engine: Engine) -> Engine:
    """The read-only engine :func:`open_reader` made beside ``engine``, else ``engine``
    itself. For reads that decide nothing (loading what a page shows, or what an action
    will then authorize inside its own write transaction)."""
    return _READERS.get(engine, engine)


def open_reader(url: str, writer: Engine) -> Engine:
    """A read-only engine beside ``writer`` (the engine :func:`open_engine` made for ``url``).

    SQLite file: its own pool whose connections have ``PRAGMA query_only=ON`` and start
    transactions with a plain (deferred) ``BEGIN``: a read sees one WAL snapshot, never
    waits for the in-process write lock nor SQLite's, and any write attempted through it
    fails (``attempt to write a readonly database``) instead of slipping past the single
    write path. PostgreSQL: the writer's pool with ``READ ONLY`` transactions. An
    in-memory SQLite database has one connection, so the writer itself is returned."""
    if not url.startswith("sqlite"):
        reader = writer.execution_options(postgresql_readonly=True)
        _READERS[writer] = reader
        return reader
    if not _is_file_db(make_url(url)):
        return writer
    engine = create_engine(url, connect_args={"check_same_thread": False},
                           pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        for pragma in ("query_only=ON", "foreign_keys=ON", "busy_timeout=30000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.connection.dbapi_connection.execute("BEGIN")

    _READERS[writer] = engine
    return engine


def _is_file_db(url: URL) -> bool:
    db = url.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    return not memory and url.query.get("mode") != "memory"
