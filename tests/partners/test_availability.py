"""What the new-case search says about matters an outlet may not take in (issue 8 §4): every
kind of refusal has its reason, and the reason is the one ``authorize`` gives."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from partners.authorize import authorize
from partners.availability import refused_matters
from partners.catalog import current_version, delegated_matters
from partners.errors import DelegationRefused
from tests.partners.conftest import AT, World


def reasons(world: World, query: str = "", outlet: str = "o1") -> dict[str, tuple[str, str]]:
    o = getattr(world, outlet)
    with Session(world.engine) as s:
        allowed = {d.matter.id for d in delegated_matters(s, o, AT)}
        return {r.version.name: (r.code, r.reason)
                for r in refused_matters(s, o, AT, query, exclude=allowed)}


def test_refused_matters_without_query_are_those_whose_grant_is_not_in_force(shared_world: World) -> None:
    assert reasons(shared_world) == {
        "社会保障卡申领": ("grant_expired", "授权已于 2026-06-30 到期"),
        "职工养老保险关系转移": ("grant_revoked", "授权已于 2026-09-01 撤销：网点人员调整"),
        "医保关系转移接续": ("grant_pending", "授权自 2026-10-01 起生效"),
    }


def test_refused_matters_found_by_query_include_the_undelegated(shared_world: World) -> None:
    assert reasons(shared_world, "不动产") == {"不动产登记资料查询": ("not_delegated", "未委托本网点")}
    assert reasons(shared_world, "养老保险参保") == {}  # delegated to O1: offered, not refused


@pytest.mark.parametrize("attr", ["expired", "revoked", "pending", "undelegated"])
def test_refused_matter_reason_is_what_authorize_says(shared_world: World, attr: str) -> None:
    matter = getattr(shared_world, attr)
    with Session(shared_world.engine) as s:
        name = current_version(s, matter).name
        with pytest.raises(DelegationRefused) as refused:
            authorize(s, shared_world["teller.o1"], "case.create", matter, shared_world.o1, AT)
    _code, reason = reasons(shared_world, str(name))[str(name)]
    detail = reason.removeprefix("授权")
    if detail == "未委托本网点":
        assert refused.value.code == "not_delegated" and "未委托" in refused.value.message
    else:
        assert detail in refused.value.message
