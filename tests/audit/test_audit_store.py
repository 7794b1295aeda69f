"""record() and the stored tree (integration, roots and proofs read from the database)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from audit import merkle, record, store
from audit.db import open_engine
from audit.errors import EntryError
from audit.models import create_tables, entries
from tests.audit.helpers import make_entry


def test_record_assigns_consecutive_indexes_inside_the_callers_transaction(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        assert [record(s, make_entry(i)) for i in range(3)] == [0, 1, 2]
    with Session(engine) as s:
        s.begin()
        assert record(s, make_entry(3)) == 3
        s.rollback()  # record() never commits: the caller's rollback discards it
    with Session(engine) as s, s.begin():
        assert record(s, make_entry(4)) == 3
        row = s.execute(select(entries).where(entries.c.idx == 3)).one()
    assert row.action == "case.accept" and row.outlet == "OUT1" and row.actor_id == 104


def test_record_rejects_invalid_entry_and_writes_nothing(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        with pytest.raises(EntryError):
            record(s, make_entry(0, unknown=1))
        assert s.execute(select(func.count()).select_from(entries)).scalar() == 0


@pytest.mark.parametrize("serialized", [False, True])
def test_record_concurrent_writers_get_unique_consecutive_indexes(
    engine: Engine, tmp_path: Path, serialized: bool
) -> None:
    if serialized:  # audit.db.open_engine: writers of one process queue on a lock
        engine = open_engine(f"sqlite:///{tmp_path / 'serialized.db'}")
        create_tables(engine)
    got: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(15):
            with Session(engine) as s, s.begin():
                idx = record(s, make_entry(k * 100 + i))
            with lock:
                got.append(idx)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(120))


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_store_integration_matches_the_rfc_tree(
    engine: Engine, appender: Callable[..., list[int]], batch: int
) -> None:
    ref = merkle.MemoryTree()
    for chunk in (1, 4, 9, 2, 17):
        start = len(ref.leaves)
        appender(engine, chunk, start)
        with engine.connect() as c:
            for leaf in store.leaves(c, start, start + chunk):
                ref.append(leaf)
        assert store.integrate(engine, batch) == len(ref.leaves)
        with engine.connect() as c:
            n = len(ref.leaves)
            assert store.root(c, n) == ref.root()
            for m in range(0, n, 3):
                assert store.inclusion_proof(c, m, n) == ref.inclusion_proof(m)
                assert store.consistency_proof(c, m, n) == ref.consistency_proof(m)


def test_store_root_changes_when_a_stored_leaf_hash_is_tampered(
    engine: Engine, appender: Callable[..., list[int]]
) -> None:
    appender(engine, 5)
    store.integrate(engine)
    with engine.connect() as c:
        before = store.root(c, 5)
    with engine.begin() as c:
        c.execute(update(entries).where(entries.c.idx == 4).values(leaf_hash=b"\x00" * 32))
    with engine.connect() as c:
        assert store.root(c, 5) != before
