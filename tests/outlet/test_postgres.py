"""The database-facing part of the case lifecycle on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401  (all tables)
from outlet import cases, intake, status
from outlet.errors import CaseNotFound, IllegalTransition, WrongCheckCode
from outlet.states import STATE_LABELS
from partners.errors import GrantExpired
from tests.outlet.conftest import AT, World, audit_rows, build_world
from web.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tests.conftest import new_pg_database

    engine: Engine = make_engine(new_pg_database())
    SQLModel.metadata.create_all(engine)
    yield build_world(engine)
    engine.dispose()


@pytest.mark.parametrize("state", list(STATE_LABELS))
def test_postgres_drives_every_state(pg_world: World, state: str) -> None:
    number = pg_world.drive(state, matter=pg_world.instant)
    assert pg_world.case(number).state == state
    assert all(e["outcome"] == {"result": "done"} for e in audit_rows(pg_world.engine, case=number))


def test_postgres_refusals_are_audited(pg_world: World) -> None:
    number = pg_world.drive("delivered")
    from outlet import decisions

    with pytest.raises(IllegalTransition):
        decisions.withdraw(pg_world.engine, pg_world.teller_a, number, reason="x", at=AT)
    assert audit_rows(pg_world.engine, "case.withdraw", number)[-1]["outcome"]["result"] == "refused"
    with pytest.raises(GrantExpired):
        pg_world.new_case(matter=pg_world.expired)
    with pytest.raises(CaseNotFound):
        intake.mark_material(pg_world.engine, pg_world.teller_b, number, "m1", "received", at=AT)


def test_postgres_lists_and_status(pg_world: World) -> None:
    number = pg_world.drive("forwarded")
    with Session(pg_world.engine) as s:
        assert number in [r.case.number for r in cases.review_queue(s, pg_world.reviewer, per_page=500)]
        assert number not in [r.case.number for r in cases.recent_cases(s, pg_world.teller_b, per_page=500)]
    right = pg_world.case(number).check_code
    wrong = "999999" if right != "999999" else "888888"
    with pytest.raises(WrongCheckCode):
        status.lookup(pg_world.engine, number, wrong)
    assert status.lookup(pg_world.engine, number, right).state == "forwarded"
