"""Engine and session helpers shared by the app, the CLI and the tests.

The SQLite engine set-up (WAL, synchronous=NORMAL, foreign keys, ``BEGIN IMMEDIATE`` for
every transaction, one in-process writer queue) lives in ``audit.db`` because the audit
package must stand alone; the app uses that same engine factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from audit.db import open_engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite file or PostgreSQL; ``kwargs`` size the pool)."""
    if url.startswith("sqlite"):
        return open_engine(url)
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
