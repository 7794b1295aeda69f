"""Engine and session helpers shared by the app, the CLI and the tests.

The SQLite engine set-up (WAL, synchronous=NORMAL, foreign keys, ``BEGIN IMMEDIATE`` for
every write transaction, one in-process writer queue; a read-only engine with deferred
``BEGIN`` for reads) lives in ``audit.db`` because the audit
package must stand alone; the app uses that same engine factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from audit.db import open_engine, open_reader, reader_of


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite file or PostgreSQL; ``kwargs`` size the pool)."""
    if url.startswith("sqlite"):
        return open_engine(url)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_reader(url: str, writer: Engine) -> Engine:
    """The read-only engine beside ``writer`` (see :func:`audit.db.open_reader`): pages and
    other pure reads use it, so they never queue behind writers; every write keeps going
    through ``writer`` (one write path, one transaction with its audit entry)."""
    return open_reader(url, writer)


def reader(state: Any) -> Engine:
    """The read-only engine of an app's ``state`` (its writer before the app has started)."""
    return getattr(state, "reader", None) or reader_of(state.engine)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
