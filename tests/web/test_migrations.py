"""The Alembic migrations create exactly the schema the models describe, on both databases,
and the demo seed runs through the real service functions."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

import audit
import web.models  # noqa: F401
from outlet.demo import seed_demo_cases
from outlet.models import Case
from partners.demo import seed_demo
from web.db import make_engine
from web.migrate import upgrade


def _schema_diff(url: str) -> list[object]:
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _schema_diff(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_migrations_match_models_on_postgres(pg_url: str) -> None:
    assert _schema_diff(pg_url) == []


def test_demo_cases_are_audited_and_cover_the_teller_situations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine)
    numbers = seed_demo_cases(engine, b"k" * 32)
    assert len(numbers) == 5
    assert seed_demo_cases(engine, b"k" * 32) == []  # idempotent
    with Session(engine) as s:
        states = sorted(c.state for c in s.exec(select(Case)))
        page = audit.search_entries(s, case=numbers[0], limit=100)
    assert states == ["accepted", "accepted", "delivered", "draft", "forwarded"]
    assert page.entries and all(e.entry["case"] == numbers[0] for e in page.entries)
    assert {e.entry["action"] for e in page.entries} >= {"case.create", "case.accept"}
    engine.dispose()
