"""The demo seed: idempotent, and it meets the counts the issue asks for."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners.accounts import authenticate
from partners.authorize import authorize, grant_state, local_day
from partners.catalog import current_version, delegated_matters, validate_version, version_as_form
from partners.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo, uscc_with_check
from partners.errors import GrantExpired, GrantRevoked, WrongOutlet
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
    utcnow,
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    from sqlmodel import SQLModel

    import web.models  # noqa: F401
    from web.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    SQLModel.metadata.create_all(engine)
    logins = seed_demo(engine)
    assert len(logins) == len(DEMO_LOGINS)
    return engine


def count(s: Session, model: type) -> int:
    return int(s.exec(select(func.count()).select_from(model)).one())


def test_seed_demo_is_idempotent(seeded: Engine) -> None:
    with Session(seeded) as s:
        before = [count(s, m) for m in (Partner, Outlet, Staff, Matter, MatterVersion, Grant)]
    assert seed_demo(seeded) == []
    with Session(seeded) as s:
        assert [
            count(s, m) for m in (Partner, Outlet, Staff, Matter, MatterVersion, Grant)
        ] == before


def test_seed_demo_partners_and_outlets(seeded: Engine) -> None:
    with Session(seeded) as s:
        kinds = Counter(p.kind for p in s.exec(select(Partner)).all())
        assert (
            kinds["bank"] >= 4
            and kinds["post"] >= 1
            and kinds["building"] >= 1
            and kinds["block"] >= 1
        )
        outlets = s.exec(select(Outlet)).all()
        assert len(outlets) >= 8
        assert sum(o.self_service_24h for o in outlets) == 1
        assert all(o.address and o.opening_hours and o.latitude and o.longitude for o in outlets)
        today = local_day(utcnow())
        for agreement in s.exec(select(Agreement)).all():
            assert (
                agreement.status == "active" and agreement.valid_from <= today <= agreement.valid_to
            )


def test_seed_demo_catalog(seeded: Engine) -> None:
    with Session(seeded) as s:
        matters = s.exec(select(Matter)).all()
        assert len(matters) >= 15
        versions = [current_version(s, m) for m in matters]
        domains = Counter(v.domain for v in versions)
        assert {"社保", "医保", "公积金", "商事登记", "不动产", "民政"} <= set(domains)
        necessities = Counter(m["necessity"] for v in versions for m in v.materials)
        assert necessities["容缺后补"] >= 3 and necessities["非必要"] >= 3
        food = [v for v in versions if v.name.startswith("食品经营许可")]
        assert len(food) == 1 and food[0].inspection_required and food[0].recording_required
        assert len(food[0].inspection_checklist) >= 5
        for matter, version in zip(matters, versions, strict=True):
            assert len(matter.basic_code) == 12 and len(matter.implementation_code) == 31
            assert matter.implementation_code[:18] == uscc_with_check(
                matter.implementation_code[:17]
            )
            validate_version(version_as_form(version))  # every entry passes the admin's rules
        assert max(m.current_version for m in matters) == 2  # one edited entry shows versioning


def test_seed_demo_grants_scopes_expired_and_revoked(seeded: Engine) -> None:
    now = utcnow()
    with Session(seeded) as s:
        rows = s.exec(select(Grant, Agreement).join(Agreement)).all()
        states = Counter(grant_state(g, a, now).status for g, a in rows)
        assert (
            states["expired"] == 1 and states["revoked"] == 1 and states["active"] == len(rows) - 2
        )
        scopes = {sc for g, _a in rows for sc in g.scopes}
        assert {"即办", "代办", "视频办"} <= scopes
        for grant, _agreement in rows:
            state = grant_state(grant, _agreement, now).status
            if state not in {"expired", "revoked"}:
                continue
            matter_id = s.exec(
                select(GrantMatter.matter_id).where(GrantMatter.grant_id == grant.id)
            ).first()
            outlet_id = s.exec(
                select(GrantOutlet.outlet_id).where(GrantOutlet.grant_id == grant.id)
            ).first()
            matter, outlet = s.get(Matter, matter_id), s.get(Outlet, outlet_id)
            teller = s.exec(select(Staff).where(Staff.outlet_id == outlet_id)).first()
            assert matter and outlet and teller, (
                "the refused matter must be tryable by a demo teller"
            )
            expected = GrantExpired if state == "expired" else GrantRevoked
            with pytest.raises(expected):
                authorize(s, teller, "case.create", matter, outlet, now)
            assert matter.id not in {d.matter.id for d in delegated_matters(s, outlet, now)}


def test_seed_demo_users_for_every_role_and_logins_work(seeded: Engine) -> None:
    with Session(seeded) as s:
        staff = s.exec(select(Staff)).all()
        roles = {r for st in staff for r in st.role_set}
        assert roles == {
            "teller",
            "block_agent",
            "outlet_lead",
            "expert",
            "reviewer",
            "admin",
            "security_admin",
            "auditor",
            "partner_manager",
        }
        names = {st.username for st in staff}
        assert {
            "teller1",
            "teller2",
            "agent1",
            "lead1",
            "expert1",
            "expert2",
            "reviewer1",
            "reviewer2",
            "admin",
            "secadmin",
            "secadmin2",
            "auditor",
            "partner1",
        } <= names
        by_name = {st.username: st for st in staff}
        assert by_name["teller1"].outlet_id != by_name["teller2"].outlet_id
        assert by_name["reviewer1"].domain == "社保" and by_name["reviewer2"].domain == "商事登记"
        assert (
            by_name["expert1"].expert_level == "town" and by_name["expert2"].expert_level == "city"
        )
        assert s.exec(select(BackupAssignment)).first() is not None
    with Session(seeded) as s, s.begin():
        assert authenticate(s, "teller1", DEMO_PASSWORD).username == "teller1"


def test_seed_demo_teller_paths(seeded: Engine) -> None:
    """teller1 can take in, complete on the spot and call video; teller2 can act as agent."""
    now = utcnow()
    with Session(seeded) as s:
        users = {st.username: st for st in s.exec(select(Staff)).all()}
        a = s.get(Outlet, users["teller1"].outlet_id)
        b = s.get(Outlet, users["teller2"].outlet_id)
        assert a and b
        at_a = {d.version.name: d.scopes for d in delegated_matters(s, a, now)}
        assert len(at_a) >= 8 and any("即办" in sc for sc in at_a.values())
        at_b = {d.version.name: d.scopes for d in delegated_matters(s, b, now)}
        assert "代办" in at_b["个体工商户设立登记"] and "视频办" in at_b["食品经营许可（新办）"]
        # The AB backup (teller3) covers teller2's outlet this week.
        food = next(d.matter for d in delegated_matters(s, b, now, "食品经营"))
        assert authorize(s, users["teller3"], "case.create", food, b, now)
        with pytest.raises(WrongOutlet):
            authorize(s, users["teller3"], "case.create", food, b, now + timedelta(days=30))


def test_seed_demo_uses_password_for(tmp_path_factory: pytest.TempPathFactory) -> None:
    from sqlmodel import SQLModel

    from web.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('demo2') / 'demo.db'}")
    SQLModel.metadata.create_all(engine)
    logins = seed_demo(
        engine, password_for=lambda u: "center-pass-123" if u == "admin" else "staff-pass-123"
    )
    assert ("admin", "center-pass-123") in {(u, p) for u, p, _label in logins}
    assert ("teller1", "staff-pass-123") in {(u, p) for u, p, _label in logins}
    assert all(label for _u, _p, label in logins)
    with Session(engine) as s, s.begin():
        assert authenticate(s, "admin", "center-pass-123")


def test_demo_prints_only_logins_whose_password_is_still_the_demo_password(demo: Engine) -> None:
    """`servicepoint demo` run again after teller1 changed their password and the auditor's
    was reset must not print those two as 'password demo-12345'."""
    from partners.accounts import change_password, reset_password
    from partners.demo import logins_still_demo
    from web.cli import demo_logins_text

    assert [row[0] for row in logins_still_demo(demo)] == [row[0] for row in DEMO_LOGINS]
    with Session(demo, expire_on_commit=False) as s, s.begin():
        teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
        change_password(s, teller, DEMO_PASSWORD, "tide-lantern-42")
        auditor = s.exec(select(Staff).where(Staff.username == "auditor")).one()
        reset_password(s, auditor, "Reset-on-server-9", actor=None)
    still = [row[0] for row in logins_still_demo(demo)]
    assert "teller1" not in still and "auditor" not in still and "teller2" in still
    text = demo_logins_text(logins_still_demo(demo))
    assert "teller1 " not in text and "auditor " not in text and "另有 2 个演示账号的密码已修改" in text
