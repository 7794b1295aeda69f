"""A small explicit world for the partners tests, built through the validating helpers.

Two partners; outlets O1, O2 (bank P1) and O3 (post office P2); matters in 社保 and 商事登记;
grants in force, expired, revoked and not yet valid; one account per role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import partners.accounts as accounts
import web.models  # noqa: F401  (all tables)
from partners.catalog import create_matter
from partners.directory import save_agreement, save_outlet, save_partner
from partners.grants import add_grant
from partners.models import Agreement, Grant, Matter, Outlet, Staff
from web.db import make_engine

# Monday 2026-09-28, 10:00 in Beijing (02:00 UTC).
AT = datetime(2026, 9, 28, 2, 0)
PASSWORD = "s3cret-pass"
ALL_SCOPES = ["咨询", "帮办", "收件受理", "代办", "即办", "视频办"]


def material(name: str, necessity: str = "必要") -> dict[str, Any]:
    return {"name": name, "form": "纸质", "copies": 1, "necessity": necessity}


def matter_data(code_suffix: str, name: str, **over: Any) -> dict[str, Any]:
    """Valid input for ``create_matter``; ``code_suffix`` (3 digits) makes codes unique."""
    data: dict[str, Any] = {
        "basic_code": f"000120101{code_suffix}",
        "implementation_code": f"11370298004189021M000120101{code_suffix}1",
        "name": name,
        "matter_type": "20",
        "domain": "社保",
        "case_kind": "承诺件",
        "statutory_days": 20,
        "committed_days": 5,
        "service_object": "自然人",
        "materials": [material("居民身份证"), material("申请表"), material("参保证明", "容缺后补")],
        "service_modes": ["咨询", "帮办", "收件受理", "代办", "视频办"],
    }
    data.update(over)
    return data


@dataclass
class World:
    engine: Engine
    o1: Outlet
    o2: Outlet
    o3: Outlet
    agreement1: Agreement
    agreement2: Agreement
    committed: Matter  # 社保 承诺件, delegated to O1 (no 代办 scope, no 即办)
    instant: Matter  # 社保 即办件, delegated to O1 with 即办
    biz: Matter  # 商事登记, delegated to O1 and (咨询 only) O2
    expired: Matter  # only an expired grant at O1
    revoked: Matter  # only a revoked grant at O1
    pending: Matter  # only a grant starting later at O1
    undelegated: Matter  # no grant anywhere
    main_grant: Grant
    staff: dict[str, Staff]

    def __getitem__(self, username: str) -> Staff:
        return self.staff[username]


@pytest.fixture
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters while building fixtures (hashing is not under test there)."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


def build_world(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        p1 = save_partner(s, {"code": "BANK1", "name": "测试银行海川分行", "kind": "bank"})
        p2 = save_partner(s, {"code": "POST1", "name": "测试邮政海川分公司", "kind": "post"})
        period = {"signed_on": "2025-12-20", "valid_from": "2026-01-01", "valid_to": "2027-12-31"}
        ag1 = save_agreement(
            s, {"number": "HCZY-T-001", "partner_id": p1.id, "parties": "中心；银行", **period}
        )
        ag2 = save_agreement(
            s, {"number": "HCZY-T-002", "partner_id": p2.id, "parties": "中心；邮政", **period}
        )
        o1 = save_outlet(
            s,
            {
                "code": "O1",
                "partner_id": p1.id,
                "name": "一号支行",
                "address": "长江路 1 号",
                "kind": "bank",
            },
        )
        o2 = save_outlet(
            s,
            {
                "code": "O2",
                "partner_id": p1.id,
                "name": "二号支行",
                "address": "长江路 2 号",
                "kind": "bank",
            },
        )
        o3 = save_outlet(
            s,
            {
                "code": "O3",
                "partner_id": p2.id,
                "name": "三号营业所",
                "address": "黄岛路 3 号",
                "kind": "post",
            },
        )
        committed = create_matter(s, matter_data("001", "城乡居民养老保险参保登记"))
        instant = create_matter(
            s,
            matter_data(
                "002",
                "灵活就业人员参保登记",
                case_kind="即办件",
                committed_days=0,
                statutory_days=1,
                service_modes=["咨询", "帮办", "收件受理", "即办"],
            ),
        )
        biz = create_matter(
            s, matter_data("003", "个体工商户设立登记", domain="商事登记", matter_type="01")
        )
        expired = create_matter(s, matter_data("004", "社会保障卡申领"))
        revoked = create_matter(s, matter_data("005", "职工养老保险关系转移"))
        pending = create_matter(s, matter_data("006", "医保关系转移接续"))
        undelegated = create_matter(s, matter_data("007", "不动产登记资料查询"))
        in_2026 = {"valid_from": date(2026, 1, 1), "valid_to": date(2027, 12, 31)}
        main = add_grant(
            s,
            agreement_id=ag1.id,
            matter_ids=[committed.id, instant.id, biz.id],
            scopes=["咨询", "帮办", "收件受理", "即办", "视频办"],
            outlet_ids=[o1.id],
            **in_2026,
        )
        add_grant(
            s,
            agreement_id=ag1.id,
            matter_ids=[biz.id],
            scopes=["咨询"],
            outlet_ids=[o2.id],
            **in_2026,
        )
        add_grant(
            s,
            agreement_id=ag1.id,
            matter_ids=[expired.id],
            scopes=["收件受理"],
            outlet_ids=[o1.id],
            valid_from=date(2026, 1, 1),
            valid_to=date(2026, 6, 30),
        )
        gone = add_grant(
            s,
            agreement_id=ag1.id,
            matter_ids=[revoked.id],
            scopes=["收件受理"],
            outlet_ids=[o1.id],
            **in_2026,
        )
        gone.revoked_at = datetime(2026, 9, 1, 1, 0)
        gone.revoked_reason = "网点人员调整"
        s.add(gone)
        add_grant(
            s,
            agreement_id=ag1.id,
            matter_ids=[pending.id],
            scopes=["收件受理"],
            outlet_ids=[o1.id],
            valid_from=date(2026, 10, 1),
            valid_to=date(2027, 12, 31),
        )
        add_grant(
            s,
            agreement_id=ag2.id,
            matter_ids=[committed.id],
            scopes=["咨询", "收件受理"],
            outlet_ids=[o3.id],
            **in_2026,
        )

        def mk(username: str, roles: list[str], outlet: Outlet | None = None, **kw: Any) -> Staff:
            return accounts.create_staff(
                s,
                username=username,
                display_name=username,
                password=PASSWORD,
                roles=roles,
                outlet_id=outlet.id if outlet else None,
                **kw,
            )

        staff = {
            "teller.o1": mk("teller.o1", ["teller"], o1),
            "agent.o1": mk("agent.o1", ["block_agent"], o1),
            "lead.o1": mk("lead.o1", ["outlet_lead"], o1),
            "teller.o2": mk("teller.o2", ["teller"], o2),
            "teller.o3": mk("teller.o3", ["teller"], o3),
            "reviewer.sb": mk("reviewer.sb", ["reviewer"], domain="社保"),
            "reviewer.biz": mk("reviewer.biz", ["reviewer"], domain="商事登记"),
            "reviewer.any": mk("reviewer.any", ["reviewer"]),
            "expert.sb": mk("expert.sb", ["expert"], domain="社保", expert_level="town"),
            "expert.biz": mk("expert.biz", ["expert"], domain="商事登记", expert_level="town"),
            "expert.city": mk("expert.city", ["expert"], expert_level="city"),
            "admin": mk("admin", ["admin"]),
            "secadmin": mk("secadmin", ["security_admin"]),
            "secadmin2": mk("secadmin2", ["security_admin"]),
            "auditor": mk("auditor", ["auditor"]),
        }
    return World(
        engine,
        o1,
        o2,
        o3,
        ag1,
        ag2,
        committed,
        instant,
        biz,
        expired,
        revoked,
        pending,
        undelegated,
        main,
        staff,
    )


@pytest.fixture
def world(engine: Engine, fast_hashes: None) -> World:
    return build_world(engine)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A read-only world shared by a module's tests (the authorization matrix)."""
    path: Path = tmp_path_factory.mktemp("world") / "world.db"
    engine = make_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        world = build_world(engine)
    yield world
    engine.dispose()


def audit_entries(engine: Engine, action: str | None = None) -> list[dict[str, Any]]:
    """Parsed audit leaves, oldest first."""
    from audit import search_entries

    with Session(engine) as s:
        page = search_entries(s, action=action, limit=500, newest_first=False)
        return [view.entry for view in page.entries]
