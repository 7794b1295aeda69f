"""The same storage on a real PostgreSQL server (advisory locks, bytea, bigint)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from audit import export, prove, record, verify
from audit.log import Checkpointer
from audit.models import ALL_TABLES, entries, metadata
from tests.audit.helpers import ORIGIN, fixed_signer, make_entry

PG_URL = os.environ.get("SERVICEPOINT_TEST_PG_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="SERVICEPOINT_TEST_PG_URL is not set (no PostgreSQL)"),
]


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh database on the test server (falls back to the given one, tables reset)."""
    assert PG_URL
    url, dropdb = make_url(PG_URL), None
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"audit_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url, dropdb = url.set(database=name), name
    except Exception:  # no CREATEDB privilege: use the given database
        pass
    engine = create_engine(url)
    metadata.drop_all(engine, tables=list(ALL_TABLES))
    metadata.create_all(engine, tables=list(ALL_TABLES))
    yield engine
    metadata.drop_all(engine, tables=list(ALL_TABLES))
    engine.dispose()
    if dropdb:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{dropdb}"'))
    admin.dispose()


def test_postgres_record_checkpoint_prove_verify(pg_engine: Engine, tmp_path: Path) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(20):
            with Session(pg_engine) as s, s.begin():
                idx = record(s, make_entry(k * 100 + i))
            with lock:
                got.append(idx)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(120))
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "log key 1")], batch=50)
    first = log.sign_checkpoint(pg_engine)
    with Session(pg_engine) as s, s.begin():
        record(s, make_entry(999))
    second = log.sign_checkpoint(pg_engine)
    assert (first.size, second.size) == (120, 121)
    (tmp_path / "p.tlog-proof").write_bytes(prove(pg_engine, 77))
    verify(tmp_path / "p.tlog-proof", log.policy())
    export(pg_engine, tmp_path / "x", log.policy())
    verify(tmp_path / "x")
    with pg_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(entries)).scalar() == 121
