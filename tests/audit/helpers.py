"""Helpers for the audit tests: real SQLite files configured like the app's engine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from audit.note import Signer
from audit.store import record

ORIGIN = "audit.test.example/log"


def sqlite_engine(path: Path) -> Engine:
    """The app's SQLite conventions: WAL, synchronous=NORMAL, BEGIN IMMEDIATE."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=30000"):  # fmt: skip
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def fixed_signer(name: str, label: str, alg: int = 0x01) -> Signer:
    return Signer(name, hashlib.sha256(label.encode()).digest(), alg)


def make_entry(i: int, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "time": f"2026-11-21T08:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z",
        "actor": {"id": 100 + i % 7, "role": "teller"},
        "outlet": f"OUT{i % 3}",
        "partner": "BANK1",
        "action": "case.accept",
        "case": f"11370211MB2846674330001171430002026112{i % 10}{i:04d}",
        "matter": {"code": "113702110000", "version": 1},
        "grant": 7,
        "outcome": {"result": "done"},
        "digests": [],
        "state": {"from": "submitted", "to": "accepted"},
        "subject": None,
    }
    e.update(over)
    return e


def append(engine: Engine, n: int, start: int = 0, **over: Any) -> list[int]:
    out = []
    with Session(engine) as s, s.begin():
        for i in range(start, start + n):
            out.append(record(s, make_entry(i, **over)))
    return out


