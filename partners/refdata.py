"""Reference data that rarely changes, cached per app process: the working calendar, the
outlets and the AB角 cover — what every teller page reads and an administrator changes a
few times a year.

Invalidation is one mechanism for every write path and every process: an ORM flush that
adds, changes or deletes a row of a :data:`WATCHED` table bumps the single
``ref_version`` row in the same transaction (so the bump commits exactly with the change).
Each request reads that version in its session lookup (one more column of the query it
runs anyway, :mod:`partners.logins`) and hands it to :func:`observe`; a process whose cache
holds an older version drops it before the request reads anything from it. A change is
therefore in force from the very next request, in every process (tests/web/test_refdata.py).

Only reads of a request that observed a version use the cache (:func:`cached`); anything
else — background jobs, the CLI, authorization inside a write transaction, tests calling
domain functions directly — reads the database as before. Entries carry the version they
were loaded under, so a request that observed an older version neither reads nor stores
them (no stale value can outlive a bump).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from partners.models import (
    Agreement,
    BackupAssignment,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
    Partner,
    Staff,
)

T = TypeVar("T")

# Tables whose rows the cache holds or derives from (cover: the holder's outlet and
# active flag). Catalog and grants are watched too, so that caching them later needs no
# new invalidation path. Other packages add theirs with :func:`watch`.
WATCHED: tuple[type[SQLModel], ...] = (BackupAssignment, Staff, Outlet, Partner, Agreement, Grant,
                                       GrantMatter, GrantOutlet, Matter, MatterVersion)


def watch(*models: type[SQLModel]) -> None:
    """Add ``models`` to the tables whose changes invalidate the cache (at import time)."""
    global WATCHED
    WATCHED = (*WATCHED, *(m for m in models if m not in WATCHED))


class RefVersion(SQLModel, table=True):
    """One row (``id`` 1): bumped in every transaction that changes a watched table."""

    __tablename__ = "ref_version"

    id: int = Field(primary_key=True)
    version: int = 0


def version_column() -> Any:
    """The current version as a scalar subquery (0 before the first bump), for the
    session lookup to select beside the session row."""
    table = RefVersion.__table__  # type: ignore[attr-defined]
    return func.coalesce(select(table.c.version).where(table.c.id == 1).scalar_subquery(), 0)


class RefCache:
    """One process' cache (``app.state.refdata``). Values are shared between threads and
    must be treated as read-only."""

    def __init__(self) -> None:
        self.version = -1
        self._data: dict[Hashable, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def observe(self, version: int) -> None:
        """A request saw ``version``: drop everything older."""
        if version > self.version:
            with self._lock:
                if version > self.version:
                    self.version, self._data = version, {}

    def get(self, version: int, key: Hashable, load: Callable[[], T]) -> T:
        entry = self._data.get(key)
        if entry is not None and entry[0] == version:
            return entry[1]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            if version == self.version:
                self._data[key] = (version, value)
        return value


_request: ContextVar[tuple[RefCache, int] | None] = ContextVar("servicepoint_refdata", default=None)


def observe(cache: RefCache, version: int) -> None:
    """Validate ``cache`` against ``version`` (read by this request's session lookup) and
    let the rest of the request (its threads included: contexts are copied) use it."""
    cache.observe(version)
    _request.set((cache, version))


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, or its value kept under ``key`` since the version this request observed;
    outside a request that observed one, always ``load()``."""
    current = _request.get()
    if current is None:
        return load()
    cache, version = current
    return cache.get(version, key, load)


def _changes_watched(session: OrmSession) -> bool:
    for obj in session.new:
        if isinstance(obj, WATCHED):
            return True
    for obj in session.deleted:
        if isinstance(obj, WATCHED):
            return True
    for obj in session.dirty:
        if isinstance(obj, WATCHED) and session.is_modified(obj):
            return True
    return False


def bump(session: OrmSession) -> None:
    """Move the version on, inside ``session``'s transaction (an upsert: the row need not
    exist yet)."""
    table = RefVersion.__table__  # type: ignore[attr-defined]
    ins = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = ins(table).values(id=1, version=1).on_conflict_do_update(
        index_elements=["id"], set_={"version": table.c.version + 1})
    session.connection().execute(stmt)


@event.listens_for(OrmSession, "before_flush")
def _bump_on_change(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Every ORM write path (admin pages, the CLI, demo seeding) invalidates through here."""
    if _changes_watched(session):
        bump(session)
