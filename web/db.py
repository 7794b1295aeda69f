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

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, create_engine

from audit.db import open_engine, open_reader, reader_of
from outlet.errors import InvalidInput

TOO_LONG = "有一项填写内容过长（最多 {limit} 个字符），请缩短后重试"
_limits: dict[Mapper[Any], tuple[tuple[str, int], ...]] = {}


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


def _string_limits(mapper: Mapper[Any]) -> tuple[tuple[str, int], ...]:
    """``(attribute, max characters)`` of every bounded string column of ``mapper``."""
    found = _limits.get(mapper)
    if found is None:
        found = tuple(
            (attr.key, length) for attr in mapper.column_attrs for column in attr.columns[:1]
            if isinstance(length := getattr(column.type, "length", None), int)
        )
        _limits[mapper] = found
    return found


@event.listens_for(OrmSession, "before_flush")
def _check_lengths(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Refuse a value longer than its column before the database sees it.

    PostgreSQL ends such an INSERT/UPDATE with ``StringDataRightTruncation`` (a 500 and a
    lost form); SQLite stores it whole. Both now answer the same :class:`InvalidInput`
    (422, Chinese message), which the routes render next to the form they keep. Forms
    check their own fields first and name the field; this is the one net under all of them.
    """
    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        for key, limit in _string_limits(state.mapper):
            value = state.dict.get(key)
            if isinstance(value, str) and len(value) > limit:
                raise InvalidInput(TOO_LONG.format(limit=limit))
