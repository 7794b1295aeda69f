"""Engines for the CLI and tools, configured like the app's (WAL, BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


class _SerializedConnection(sqlite3.Connection):
    """Holds the engine's in-process write lock from BEGIN IMMEDIATE to COMMIT/ROLLBACK,
    so threads of one process queue on a lock instead of SQLite's sleeping busy handler
    (which wastes 1-100 ms per collision under many concurrent writers)."""

    write_lock: threading.Lock
    holding = False

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()


def open_engine(url: str, *, serialize_writers: bool = True) -> Engine:
    """An engine for ``url``. SQLite gets WAL, synchronous=NORMAL (commits survive a
    process kill), busy_timeout and ``BEGIN IMMEDIATE`` write transactions; with
    ``serialize_writers`` threads of this process also queue on one lock for writing."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    args: dict[str, Any] = {"check_same_thread": False}
    if serialize_writers:
        args["factory"] = _SerializedConnection
    engine = create_engine(url, connect_args=args)
    lock = threading.Lock()

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        if serialize_writers:
            dbapi_connection.write_lock = lock
        cur = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000"):  # fmt: skip
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        if serialize_writers and not dbapi.holding:
            dbapi.write_lock.acquire()
            dbapi.holding = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if serialize_writers:
                dbapi._release()
            raise

    return engine
