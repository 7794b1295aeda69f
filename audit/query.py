"""Read-only queries for the auditor UI: search with keyset pagination, one entry,
checkpoints with their cosignatures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .log import StoredCheckpoint, recent_checkpoints
from .models import entries, tree

MAX_LIMIT = 500


@dataclass(frozen=True)
class EntryView:
    index: int
    entry: dict[str, Any]  # the parsed leaf
    leaf: bytes  # the exact leaf bytes
    leaf_hash: bytes
    integrated: bool  # hashed into the stored tree (a checkpoint covers it soon)


@dataclass(frozen=True)
class Page:
    entries: list[EntryView]
    next_after: int | None  # pass as after_index for the next page; None at the end


def _conn(s: Session | Connection) -> Connection:
    return s.connection() if isinstance(s, Session) else s


def _view(row: Any, size: int) -> EntryView:
    leaf = bytes(row.leaf)
    return EntryView(row.idx, json.loads(leaf), leaf, bytes(row.leaf_hash), row.idx < size)


def search_entries(
    session: Session | Connection,
    *,
    case: str | None = None,
    outlet: str | None = None,
    partner: str | None = None,
    actor: int | None = None,
    matter: str | None = None,
    action: str | None = None,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
    after_index: int | None = None,
    limit: int = 50,
    newest_first: bool = True,
) -> Page:
    """Entries matching every given filter, ``limit`` per page, keyset-paginated on the
    index (newest first by default). ``date_to`` is inclusive for a date."""
    conn = _conn(session)
    limit = max(1, min(limit, MAX_LIMIT))
    q = select(entries.c.idx, entries.c.leaf, entries.c.leaf_hash)
    for col, value in (
        (entries.c.case_no, case), (entries.c.outlet, outlet), (entries.c.partner, partner),
        (entries.c.actor_id, actor), (entries.c.matter_code, matter), (entries.c.action, action),
    ):  # fmt: skip
        if value is not None:
            q = q.where(col == value)
    if date_from is not None:
        q = q.where(entries.c.time >= _start(date_from))
    if date_to is not None:
        q = q.where(entries.c.time < _end(date_to))
    if after_index is not None:
        q = q.where(entries.c.idx < after_index if newest_first else entries.c.idx > after_index)
    q = q.order_by(entries.c.idx.desc() if newest_first else entries.c.idx).limit(limit + 1)
    rows = conn.execute(q).all()
    size = _size(conn)
    views = [_view(r, size) for r in rows[:limit]]
    return Page(views, views[-1].index if len(rows) > limit else None)


def get_entry(session: Session | Connection, index: int) -> EntryView | None:
    conn = _conn(session)
    row = conn.execute(
        select(entries.c.idx, entries.c.leaf, entries.c.leaf_hash).where(entries.c.idx == index)
    ).first()
    return _view(row, _size(conn)) if row else None


def list_checkpoints(
    session: Session | Connection, *, limit: int = 50, before_id: int | None = None
) -> list[StoredCheckpoint]:
    """Newest first, with cosignatures; page with ``before_id`` = last id shown."""
    return recent_checkpoints(_conn(session), max(1, min(limit, MAX_LIMIT)), before_id)


def _size(conn: Connection) -> int:
    return int(conn.execute(select(tree.c.size).where(tree.c.id == 1)).scalar() or 0)


def _start(d: date | datetime) -> datetime:
    return d if isinstance(d, datetime) else datetime.combine(d, time.min)


def _end(d: date | datetime) -> datetime:
    if isinstance(d, datetime):
        return d
    return datetime.combine(date.fromordinal(d.toordinal() + 1), time.min)
