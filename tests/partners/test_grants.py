"""Delegation grants: validation, audited create and revoke, the status list."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlmodel import Session

from partners.authorize import authorize
from partners.catalog import create_matter
from partners.errors import GrantRevoked, InvalidFields, PartnersError, RoleLacksAction
from partners.grants import add_grant, create_grant, grant_row, list_grants, revoke_grant
from partners.models import Grant
from tests.partners.conftest import AT, World, audit_entries, matter_data


def grant_args(world: World, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "agreement_id": world.agreement1.id,
        "matter_ids": [world.undelegated.id],
        "scopes": ["咨询", "收件受理"],
        "outlet_ids": [world.o2.id],
        "valid_from": date(2026, 9, 1),
        "valid_to": date(2026, 12, 31),
    }
    args.update(over)
    return args


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"scopes": []}, "scopes", "授权方式"),
        ({"scopes": ["上门办"]}, "scopes", "授权方式"),
        ({"matter_ids": []}, "matter_ids", "至少选择一个事项"),
        ({"outlet_ids": []}, "outlet_ids", "至少选择一个网点"),
        ({"outlet_ids": ["o3"]}, "outlet_ids", "不属于协议"),
        ({"valid_to": date(2026, 8, 1)}, "valid_to", "不能早于"),
        ({"valid_to": date(2028, 6, 30)}, "valid_to", "协议有效期"),
        ({"scopes": ["即办"]}, "scopes", "只允许以"),
    ],
)
def test_add_grant_validation(
    world: World, changes: dict[str, Any], field: str, message: str
) -> None:
    if changes.get("outlet_ids") == ["o3"]:
        changes = {"outlet_ids": [world.o3.id]}
    with Session(world.engine) as s, s.begin(), pytest.raises(InvalidFields) as invalid:
        add_grant(s, **grant_args(world, **changes))
    assert message in invalid.value.errors[field], invalid.value.errors


def test_create_grant_is_audited_and_takes_effect(world: World) -> None:
    grant_id = create_grant(world.engine, world["admin"], **grant_args(world), at=AT)
    entry = audit_entries(world.engine, action="admin.grant.create")[-1]
    assert entry["grant"] == grant_id and entry["outcome"] == {"result": "done"}
    assert entry["actor"]["role"] == "admin"
    with Session(world.engine) as s:
        assert authorize(s, world["teller.o2"], "case.create", world.undelegated, world.o2, AT)


def test_create_grant_by_non_admin_is_refused_and_audited(world: World) -> None:
    with pytest.raises(RoleLacksAction):
        create_grant(world.engine, world["teller.o1"], **grant_args(world), at=AT)
    entry = audit_entries(world.engine, action="admin.grant.create")[-1]
    assert entry["outcome"] == {"result": "refused", "reason": "role_lacks_action"}


def test_create_grant_validation_error_leaves_nothing(world: World) -> None:
    with pytest.raises(InvalidFields):
        create_grant(world.engine, world["admin"], **grant_args(world, scopes=[]), at=AT)
    assert audit_entries(world.engine, action="admin.grant.create") == []


def test_revoke_grant_stops_it_and_is_audited(world: World) -> None:
    at = datetime(2026, 9, 28, 3, 0)
    revoke_grant(
        world.engine, world["admin"], world.main_grant.id, "  协议到期前提前终止合作  ", at=at
    )  # type: ignore[arg-type]
    entry = audit_entries(world.engine, action="admin.grant.revoke")[-1]
    assert entry["grant"] == world.main_grant.id
    assert entry["state"] == {"from": "active", "to": "revoked"}
    with Session(world.engine) as s:
        grant = s.get(Grant, world.main_grant.id)
        assert grant is not None and grant.revoked_reason == "协议到期前提前终止合作"
        assert grant.revoked_by == world["admin"].id
        with pytest.raises(GrantRevoked):
            authorize(
                s,
                world["teller.o1"],
                "case.create",
                world.committed,
                world.o1,
                datetime(2026, 9, 28, 4),
            )


def test_revoke_grant_needs_a_reason_and_only_once(world: World) -> None:
    gid = world.main_grant.id
    assert gid is not None
    with pytest.raises(InvalidFields) as invalid:
        revoke_grant(world.engine, world["admin"], gid, "   ", at=AT)
    assert "reason" in invalid.value.errors
    revoke_grant(world.engine, world["admin"], gid, "停止合作", at=AT)
    with pytest.raises(PartnersError, match="已撤销"):
        revoke_grant(world.engine, world["admin"], gid, "再次撤销", at=AT)


def test_list_grants_shows_each_status(world: World) -> None:
    with Session(world.engine) as s:
        page = list_grants(s, AT, per_page=50)
        labels = {row.matters[0]: row.status_label for row in page.items if len(row.matters) == 1}
        assert labels["社会保障卡申领"] == "已过期"
        assert labels["职工养老保险关系转移"] == "已撤销"
        assert labels["医保关系转移接续"] == "未生效"
        assert labels["个体工商户设立登记"] == "生效中"
        main = grant_row(s, world.main_grant.id, AT)  # type: ignore[arg-type]
        assert main.outlets == ("一号支行",) and len(main.matters) == 3
        assert [r.grant.id for r in list_grants(s, AT, status="revoked").items] == [
            r.grant.id for r in page.items if r.status == "revoked"
        ]


def test_list_grants_paginates(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        for n in range(25):
            matter = create_matter(s, matter_data(f"{200 + n}", f"批量事项{n:02d}"))
            add_grant(s, **grant_args(world, matter_ids=[matter.id]))
    with Session(world.engine) as s:
        first = list_grants(s, AT, page=1, per_page=20)
        second = list_grants(s, AT, page=2, per_page=20)
        assert first.total == 31 and first.pages == 2 and first.has_next and not first.has_prev
        assert len(first.items) == 20 and len(second.items) == 11
        assert not {r.grant.id for r in first.items} & {r.grant.id for r in second.items}
        assert list_grants(s, AT, page=99).page == 2
