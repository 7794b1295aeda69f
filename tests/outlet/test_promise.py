"""告知承诺制 from intake to 核查 不属实 and revocation; only catalog-marked materials."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from outlet import decisions, promise, review
from outlet.errors import GuardFailed, IllegalTransition, InvalidInput
from outlet.models import CasePromise, Notice
from partners.errors import RoleLacksAction
from partners.models import MatterVersion
from tests.outlet.conftest import AT, MATERIALS, World, audit_rows


def _mark_promisable(w: World, key: str = "m2") -> None:
    with Session(w.engine) as s, s.begin():
        v = s.exec(select(MatterVersion).where(MatterVersion.matter_id == w.committed.id)).one()
        v.materials = [{**m, "promise": True} if m["key"] == key else m for m in MATERIALS]
        s.add(v)


def test_promise_replaces_marked_materials_and_a_false_one_gets_the_decision_revoked(world: World) -> None:
    _mark_promisable(world)
    e, t, r = world.engine, world.teller_a, world.reviewer
    n = world.new_case().number
    with pytest.raises(GuardFailed):  # m1 is not marked in the catalog
        promise.sign_promise(e, t, n, ["m1"], at=AT)
    assert audit_rows(e, "case.promise")[-1]["outcome"]["result"] == "refused"
    with pytest.raises(InvalidInput):
        promise.sign_promise(e, t, n, [], at=AT)
    p = promise.sign_promise(e, t, n, ["m2"], at=AT)
    assert p.materials == [{"key": "m2", "name": "申请表"}]
    assert world.materials(n)["m2"].status == "received"
    with pytest.raises(IllegalTransition):
        promise.sign_promise(e, t, n, ["m2"], at=AT)
    with Session(e) as s:
        notice = s.exec(select(Notice).where(Notice.kind == "promise")).one()
        assert notice.number == p.number and notice.items == p.materials
    world.receive(n, "m1", "m3")
    decisions.accept(e, t, n, at=AT)  # m2 counts as received thanks to the promise
    decisions.forward(e, t, n, at=AT)
    review.claim(e, r, n, at=AT)
    review.approve(e, r, n, at=AT)
    with pytest.raises(GuardFailed):  # no revocation before a 不属实 check
        promise.revoke(e, r, n, reason="x", at=AT)
    with pytest.raises(RoleLacksAction):  # 核查 is the center's
        promise.check_promise(e, t, n, result="不属实", note="x", at=AT)
    with pytest.raises(InvalidInput):
        promise.check_promise(e, r, n, result="不属实", note="", at=AT)
    promise.check_promise(e, r, n, result="不属实", note="经核查申请表所述情况与事实不符", at=AT)
    with pytest.raises(IllegalTransition):
        promise.check_promise(e, r, n, result="属实", at=AT)
    with pytest.raises(InvalidInput, match="撤销决定的理由"):  # 422 with a message, before any lock
        promise.revoke(e, r, n, reason=" ", at=AT)
    case = promise.revoke(e, r, n, reason="承诺不实，依法撤销准予决定", at=AT)
    assert case.state == "revoked"
    with Session(e) as s:
        row = s.exec(select(CasePromise)).one()
        assert row.check_result == "不属实" and row.revoke_reason == "承诺不实，依法撤销准予决定"
    done = [x["action"] for x in audit_rows(e, case=n) if x["outcome"]["result"] == "done"]
    assert done[:2] == ["case.create", "case.promise"]
    assert done[-2:] == ["case.promise_check", "case.revoke"]
    assert audit_rows(e, "case.revoke")[-1]["state"] == {"from": "approved", "to": "revoked"}


def test_a_promise_checked_true_cannot_be_revoked(world: World) -> None:
    _mark_promisable(world)
    e, t, r = world.engine, world.teller_a, world.reviewer
    n = world.new_case().number
    promise.sign_promise(e, t, n, ["m2"], at=AT)
    world.receive(n, "m1", "m3")
    decisions.accept(e, t, n, at=AT)
    decisions.forward(e, t, n, at=AT)
    promise.check_promise(e, r, n, result="属实", at=AT)
    review.claim(e, r, n, at=AT)
    review.approve(e, r, n, at=AT)
    with pytest.raises(GuardFailed):
        promise.revoke(e, r, n, reason="无", at=AT)
