"""The append point and the stored Merkle tree: record(), integration, proofs."""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import merkle
from .entry import canonical_json, normalize, parse_time
from .errors import LogStateError
from .models import entries, node_id, nodes, tree

# pg_advisory_xact_lock keys ("audit" + 1/2). Appends and tree integration use separate
# locks so that integration never blocks the app's writers on PostgreSQL.
APPEND_LOCK = 0x6175646974_01
TREE_LOCK = 0x6175646974_02
DEFAULT_BATCH = 100_000
# Connection.info key: this connection's transaction already holds APPEND_LOCK (a group-commit
# batch took it first; see audit.group), so record() skips the lock's round trip.
APPEND_LOCKED = "audit.append_locked"

_MAX_IDX = select(func.max(entries.c.idx))
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_COLS = ("leaf", "leaf_hash", "time", "actor_id", "actor_role", "outlet", "partner", "action",
         "case_no", "matter_code")  # fmt: skip
# Generic path (PostgreSQL, other drivers): SQLAlchemy Core.
_INSERT = (
    insert(entries)
    .from_select(
        ["idx", *_COLS],
        select(
            func.coalesce(func.max(entries.c.idx) + 1, 0),
            *(bindparam(c, type_=entries.c[c].type) for c in _COLS),
        ),
    )
    .returning(entries.c.idx)
)
# SQLite fast path: one constant SQL string run on the session's DBAPI connection, so
# pysqlite's statement cache keeps it prepared and SQLAlchemy's per-statement machinery
# (about as expensive as SQLite's own insert here) is skipped. max(idx) on the INTEGER
# PRIMARY KEY (SQLite's rowid) is a single B-tree seek, not a scan.
_SQLITE_INSERT = (
    f"INSERT INTO {entries.name} (idx, {', '.join(_COLS)}) "
    f"SELECT coalesce(max(idx) + 1, 0), {', '.join('?' * len(_COLS))} FROM {entries.name} "
    "RETURNING idx"
)
_TIME = _COLS.index("time")
# Bind processor of the time column per dialect (the same value SQLAlchemy would store).
_time_bind: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def record(session: Session, entry: Mapping[str, Any]) -> int:
    """Append ``entry`` inside the caller's open transaction and return its index.

    Does not commit. Indexes are consecutive in commit order: on SQLite the app's
    ``BEGIN IMMEDIATE`` serializes writers; on PostgreSQL an advisory transaction lock
    is taken before reading max(index) and held until the caller commits."""
    # All work that needs no database comes before session.connection(): when the session
    # has not begun yet, that call takes the write lock, which should be held briefly.
    e = normalize(entry)
    leaf = canonical_json(e)
    actor, matter = e["actor"], e["matter"]
    values = [leaf, merkle.leaf_hash(leaf), parse_time(e["time"]), actor["id"],
              actor["role"], e["outlet"], e["partner"], e["action"], e["case"],
              matter["code"] if matter else None]  # fmt: skip
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        proc = _time_bind.get(dialect)
        if proc is None:
            impl = entries.c.time.type.dialect_impl(dialect)
            proc = _time_bind[dialect] = impl.bind_processor(dialect) or (lambda v: v)
        values[_TIME] = proc(values[_TIME])
        # One statement: the next index is read and used under the same write lock.
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        try:
            rows = dbapi.execute(_SQLITE_INSERT, values).fetchall()
        except sqlite3.Error as err:  # the same exception types as through SQLAlchemy
            raise DBAPIError.instance(_SQLITE_INSERT, values, err, sqlite3.Error,
                                      hide_parameters=conn.engine.hide_parameters,
                                      dialect=dialect) from err  # fmt: skip
        return int(rows[0][0])
    if dialect.name == "postgresql" and not conn.info.get(APPEND_LOCKED):
        conn.execute(_PG_LOCK, {"k": APPEND_LOCK})
    # One statement: the next index is read and used under the same (advisory) lock.
    return int(conn.execute(_INSERT, dict(zip(_COLS, values, strict=True))).scalar_one())


def lock_tree(conn: Connection) -> int:
    """Take the log's tree lock for this transaction and return the integrated size.

    SQLite: the first statement is a write, so the transaction holds the write lock
    from here on (and waits for it with busy_timeout). PostgreSQL: advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TREE_LOCK})
    res = conn.execute(update(tree).where(tree.c.id == 1).values(size=tree.c.size))
    if res.rowcount == 0:
        conn.execute(insert(tree).values(id=1, size=0))
        return 0
    return int(conn.execute(select(tree.c.size).where(tree.c.id == 1)).scalar_one())


def tree_size(conn: Connection) -> int:
    return int(conn.execute(select(tree.c.size).where(tree.c.id == 1)).scalar() or 0)


def entry_count(conn: Connection) -> int:
    last = conn.execute(_MAX_IDX).scalar()
    return 0 if last is None else int(last) + 1


def integrate(engine: Engine, batch: int = DEFAULT_BATCH) -> int:
    """Hash committed entries into audit_nodes, ``batch`` leaves per transaction.
    Returns the integrated tree size."""
    while True:
        with engine.begin() as conn:
            size = lock_tree(conn)
            rows = conn.execute(
                select(entries.c.idx, entries.c.leaf_hash)
                .where(entries.c.idx >= size)
                .order_by(entries.c.idx)
                .limit(batch)
            ).all()
            leaves: list[bytes] = []
            for i, row in enumerate(rows):
                if row.idx != size + i:  # a gap: stop at the contiguous prefix
                    break
                leaves.append(bytes(row.leaf_hash))
            if not leaves:
                return size
            new_nodes = _new_nodes(conn, size, leaves)
            if new_nodes:
                conn.execute(insert(nodes), [{"id": k, "hash": h} for k, h in new_nodes])
            size += len(leaves)
            conn.execute(update(tree).where(tree.c.id == 1).values(size=size))
        if len(leaves) < batch:
            return size


def _new_nodes(conn: Connection, old: int, leaves: list[bytes]) -> list[tuple[int, bytes]]:
    """Complete subtrees (level >= 1) that become complete when ``leaves`` are appended
    to a tree of size ``old``. Only the leftmost child at each level can be old."""
    new = old + len(leaves)
    out: list[tuple[int, bytes]] = []
    prev, prev_base = leaves, old  # hashes at level-1, first index
    level = 1
    node = merkle.node_hash
    while True:
        lo, hi = old >> level, new >> level
        if lo >= hi:
            break
        cur: list[bytes] = []
        for i in range(lo, hi):
            li, ri = 2 * i, 2 * i + 1
            left = prev[li - prev_base] if li >= prev_base else _get(conn, level - 1, li)
            h = node(left, prev[ri - prev_base])
            cur.append(h)
            out.append((node_id(level, i), h))
        prev, prev_base = cur, lo
        level += 1
    return out


def _get(conn: Connection, level: int, index: int) -> bytes:
    got = subtree_hashes(conn, [(level, index)])
    if (level, index) not in got:
        raise LogStateError(f"stored tree is missing subtree ({level}, {index})")
    return got[(level, index)]


def subtree_hashes(
    conn: Connection, ids: Iterable[merkle.SubtreeId]
) -> dict[merkle.SubtreeId, bytes]:
    """Fetch complete subtree hashes in at most two queries."""
    ids = set(ids)
    leaf_idx = [i for lv, i in ids if lv == 0]
    node_ids = {node_id(lv, i): (lv, i) for lv, i in ids if lv > 0}
    out: dict[merkle.SubtreeId, bytes] = {}
    if leaf_idx:
        q = select(entries.c.idx, entries.c.leaf_hash).where(entries.c.idx.in_(leaf_idx))
        for idx, h in conn.execute(q):
            out[(0, idx)] = bytes(h)
    if node_ids:
        q = select(nodes.c.id, nodes.c.hash).where(nodes.c.id.in_(list(node_ids)))
        for nid, h in conn.execute(q):
            out[node_ids[nid]] = bytes(h)
    return out


def range_hashes(conn: Connection, ranges: Sequence[merkle.Range], size: int) -> list[bytes]:
    """MTH of each range, from stored subtrees (all within the integrated tree)."""
    if size > tree_size(conn):
        raise LogStateError(f"tree size {size} is not integrated yet")
    plans = [merkle.subtree_ids(a, b) for a, b in ranges]
    got = subtree_hashes(conn, [s for plan in plans for s in plan])
    try:
        return [merkle.fold([got[s] for s in plan]) for plan in plans]
    except KeyError as exc:
        raise LogStateError(f"stored tree is missing subtree {exc.args[0]}") from exc


def root(conn: Connection, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return range_hashes(conn, [(0, size)], size)[0]


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    return range_hashes(conn, merkle.inclusion_ranges(index, size), size)


def consistency_proof(conn: Connection, old: int, new: int) -> list[bytes]:
    return range_hashes(conn, merkle.consistency_ranges(old, new), new)


def leaves(conn: Connection, start: int, end: int, chunk: int = 50_000) -> Iterable[bytes]:
    """Leaf bytes of entries [start, end) in index order."""
    pos = start
    while pos < end:
        stop = min(end, pos + chunk)
        q = (
            select(entries.c.idx, entries.c.leaf)
            .where(entries.c.idx >= pos, entries.c.idx < stop)
            .order_by(entries.c.idx)
        )
        for idx, leaf in conn.execute(q).all():
            if idx != pos:
                break
            yield bytes(leaf)
            pos += 1
        if pos != stop:
            raise LogStateError(f"entry {pos} is missing from audit_entries")
