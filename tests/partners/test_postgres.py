"""The database-facing part of partners/ on a real PostgreSQL server: the demo seed,
authorization with every refusal, the delegated-matter search, grant revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

import partners.accounts as accounts
import web.models  # noqa: F401  (all tables)
from partners.authorize import authorize
from partners.catalog import delegated_matters
from partners.demo import seed_demo
from partners.errors import GrantExpired, GrantNotYetValid, GrantRevoked, NotDelegated, WrongOutlet
from partners.grants import list_grants, revoke_grant
from partners.models import Matter, Outlet, Staff, utcnow
from tests.partners.conftest import AT, World, audit_entries, build_world
from web.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_world() -> Iterator[World]:
    from tests.conftest import new_pg_database

    engine: Engine = make_engine(new_pg_database())
    SQLModel.metadata.create_all(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        world = build_world(engine)
    yield world
    engine.dispose()


def test_postgres_authorize_refusals(pg_world: World) -> None:
    w = pg_world
    with Session(w.engine) as s:
        teller = w["teller.o1"]
        assert authorize(s, teller, "case.accept", w.committed, w.o1, AT) is not None
        for matter, refusal in [
            (w.expired, GrantExpired),
            (w.revoked, GrantRevoked),
            (w.pending, GrantNotYetValid),
            (w.undelegated, NotDelegated),
        ]:
            with pytest.raises(refusal):
                authorize(s, teller, "case.create", matter, w.o1, AT)
        with pytest.raises(WrongOutlet):
            authorize(s, w["teller.o2"], "case.create", w.committed, w.o1, AT)


def test_postgres_delegated_matters_search(pg_world: World) -> None:
    with Session(pg_world.engine) as s:
        found = delegated_matters(s, pg_world.o1, AT, "参保")
        names = [d.version.name for d in found]
        assert names == ["城乡居民养老保险参保登记", "灵活就业人员参保登记"]
        assert "即办" in found[1].scopes


def test_postgres_grant_list_and_revoke(pg_world: World) -> None:
    w = pg_world
    with Session(w.engine) as s:
        statuses = {row.status for row in list_grants(s, AT, per_page=50).items}
        assert statuses == {"active", "expired", "revoked", "pending"}
    when = datetime(2026, 9, 28, 3, 0)
    revoke_grant(w.engine, w["admin"], w.main_grant.id, "合作调整", at=when)  # type: ignore[arg-type]
    assert audit_entries(w.engine, "admin.grant.revoke")[-1]["grant"] == w.main_grant.id
    with Session(w.engine) as s, pytest.raises(GrantRevoked):
        authorize(s, w["teller.o1"], "case.create", w.committed, w.o1, datetime(2026, 9, 28, 4))


def test_postgres_demo_seed() -> None:
    from tests.conftest import new_pg_database

    engine = make_engine(new_pg_database())
    SQLModel.metadata.create_all(engine)
    try:
        assert len(seed_demo(engine)) >= 10
        assert seed_demo(engine) == []
        with Session(engine) as s:
            assert len(s.exec(select(Matter)).all()) >= 15
            teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
            outlet = s.get(Outlet, teller.outlet_id)
            assert outlet is not None
            # Seed dates are relative to today, so the grants are in force now.
            assert len(delegated_matters(s, outlet, utcnow())) >= 8
    finally:
        engine.dispose()
