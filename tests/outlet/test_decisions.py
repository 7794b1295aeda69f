from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import Session, select

from outlet import decisions, intake, review
from outlet.errors import CaseNotFound, GuardFailed, IllegalTransition, InvalidInput
from outlet.models import Notice
from partners.errors import ScopeNotGranted
from tests.outlet.conftest import AT, PERSON_ID, World, audit_rows


def notices(world: World, number: str) -> list[Notice]:
    case = world.case(number)
    with Session(world.engine) as s:
        return list(s.exec(select(Notice).where(Notice.case_id == case.id).order_by(Notice.id)).all())


def test_accept_sets_deadlines_across_national_day_and_issues_receipt(world: World) -> None:
    number = world.drive("accepted")  # accepted Mon 28 Sep 2026, 5 committed / 20 statutory
    case = world.case(number)
    assert case.accepted_at == AT
    assert case.due_on == date(2026, 10, 10)  # the make-up Saturday is the 5th working day
    assert case.statutory_due_on == date(2026, 10, 30)
    assert not case.due_estimated
    [receipt] = notices(world, number)
    assert receipt.kind == "receipt" and receipt.number == f"{number}-SL01"


def test_accept_in_late_december_is_marked_estimated(world: World) -> None:
    at = datetime(2026, 12, 28, 2, 0)
    number = world.new_case(at=at).number
    world.receive(number, "m1", "m2", "m3", at=at)
    case = decisions.accept(world.engine, world.teller_a, number, at=at)
    assert case.due_on == date(2027, 1, 4) and case.due_estimated


def test_accept_refused_while_required_material_missing(world: World) -> None:
    number = world.new_case().number
    world.receive(number, "m1", "m3")
    with pytest.raises(GuardFailed) as exc:
        decisions.accept(world.engine, world.teller_a, number, at=AT)
    assert "「申请表」" in exc.value.message and exc.value.code == "materials_incomplete"
    [entry] = audit_rows(world.engine, "case.accept", number)
    assert entry["outcome"] == {"result": "refused", "reason": "materials_incomplete"}


def test_rongque_only_for_materials_marked_rongque(world: World) -> None:
    number = world.new_case().number
    world.receive(number, "m1")  # 申请表 (必要) missing too
    with pytest.raises(GuardFailed) as exc:
        decisions.accept_rongque(world.engine, world.teller_a, number, deadline=date(2026, 10, 8),
                                 commitment_signed=True, at=AT)
    assert exc.value.code == "rongque_not_allowed" and "「申请表」" in exc.value.message


def test_rongque_needs_signed_commitment(world: World) -> None:
    number = world.new_case().number
    world.receive(number, "m1", "m2")
    with pytest.raises(GuardFailed) as exc:
        decisions.accept_rongque(world.engine, world.teller_a, number, deadline=date(2026, 10, 8),
                                 commitment_signed=False, at=AT)
    assert exc.value.code == "commitment_missing"


def test_rongque_deadline_may_not_pass_committed_completion(world: World) -> None:
    number = world.new_case().number
    world.receive(number, "m1", "m2")
    with pytest.raises(GuardFailed) as exc:
        decisions.accept_rongque(world.engine, world.teller_a, number, deadline=date(2026, 10, 12),
                                 commitment_signed=True, at=AT)
    assert exc.value.code == "deadline_after_due" and "2026-10-10" in exc.value.message
    case = decisions.accept_rongque(world.engine, world.teller_a, number, deadline=date(2026, 10, 10),
                                    commitment_signed=True, commitment_text="本人承诺按期补交", at=AT)
    assert case.state == "rongque" and case.rongque_deadline == date(2026, 10, 10)
    assert case.rongque_commitment == "本人承诺按期补交"
    assert world.materials(number)["m3"].status == "deferred"
    kinds = [(n.kind, n.deadline) for n in notices(world, number)]
    assert kinds == [("receipt", None), ("rongque", date(2026, 10, 10))]
    assert notices(world, number)[1].items[0]["name"] == "参保证明"


def test_supplying_the_last_rongque_material_accepts_the_case(world: World) -> None:
    number = world.drive("rongque")
    intake.mark_material(world.engine, world.teller_a, number, "m3", "received", at=AT)
    assert world.case(number).state == "accepted"
    [entry] = audit_rows(world.engine, "case.supply", number)
    assert entry["state"] == {"from": "rongque", "to": "accepted"}


def test_approval_refused_while_rongque_material_outstanding(world: World) -> None:
    number = world.drive("rongque")
    decisions.forward(world.engine, world.teller_a, number, at=AT)
    review.claim(world.engine, world.reviewer, number, at=AT)
    with pytest.raises(GuardFailed) as exc:
        review.approve(world.engine, world.reviewer, number, at=AT)
    assert exc.value.code == "rongque_outstanding" and "参保证明" in exc.value.message
    # supplied while under review → the center can approve
    intake.mark_material(world.engine, world.teller_a, number, "m3", "received", at=AT)
    assert world.case(number).state == "under_review"
    assert review.approve(world.engine, world.reviewer, number, at=AT).state == "approved"


def test_only_rongque_materials_can_be_supplied_after_acceptance(world: World) -> None:
    number = world.drive("rongque")
    with pytest.raises(IllegalTransition):
        intake.mark_material(world.engine, world.teller_a, number, "m1", "missing", at=AT)


def test_inspection_gate_blocks_approval(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from outlet import states

    monkeypatch.setattr(states, "inspection_gate", lambda s, c: "现场勘验尚未通过")
    number = world.drive("under_review")
    with pytest.raises(GuardFailed) as exc:
        review.approve(world.engine, world.reviewer, number, at=AT)
    assert exc.value.message == "现场勘验尚未通过" and exc.value.code == "inspection_pending"


def test_complete_onsite_only_for_instant_matters(world: World) -> None:
    number = world.drive("accepted")  # 承诺件
    with pytest.raises(GuardFailed) as exc:
        decisions.complete_onsite(world.engine, world.teller_a, number, at=AT)
    assert exc.value.code == "not_instant"


def test_complete_onsite_needs_the_instant_scope(world: World) -> None:
    number = world.drive("accepted", matter=world.instant, actor=world.teller_b)
    with pytest.raises(ScopeNotGranted):
        decisions.complete_onsite(world.engine, world.teller_b, number, at=AT)
    entry = audit_rows(world.engine, "case.complete_onsite", number)[-1]
    assert entry["outcome"] == {"result": "refused", "reason": "scope_not_granted"}


def test_complete_onsite_rejected_needs_reason(world: World) -> None:
    number = world.drive("accepted", matter=world.instant)
    with pytest.raises(GuardFailed):
        decisions.complete_onsite(world.engine, world.teller_a, number, outcome="rejected", at=AT)
    case = decisions.complete_onsite(world.engine, world.teller_a, number, outcome="rejected",
                                     reason="不符合变更条件", at=AT)
    assert case.state == "rejected" and case.review_comment == "不符合变更条件"
    with pytest.raises(InvalidInput):
        decisions.complete_onsite(world.engine, world.teller_a, number, outcome="maybe", at=AT)


def test_correction_returns_reasons_to_the_outlet(world: World) -> None:
    number = world.drive("under_review")
    notice = review.request_correction(
        world.engine, world.reviewer, number, items=[("m2", "缺少申请人签名"), ("m1", "")],
        reason="请同时补充联系电话", at=AT)
    assert notice.kind == "correction"
    assert [(i["name"], i["reason"]) for i in notice.items] == [
        ("申请表", "缺少申请人签名"), ("其他", "请同时补充联系电话")]
    mats = world.materials(number)
    assert mats["m2"].status == "defective" and mats["m1"].status == "received"
    with pytest.raises(GuardFailed) as exc:
        decisions.resubmit(world.engine, world.teller_a, number, at=AT)
    assert "申请表" in exc.value.message
    intake.mark_material(world.engine, world.teller_a, number, "m2", "received", at=AT)
    assert decisions.resubmit(world.engine, world.teller_a, number, at=AT).state == "forwarded"


def test_correction_needs_at_least_one_reason(world: World) -> None:
    number = world.drive("under_review")
    with pytest.raises(GuardFailed):
        review.request_correction(world.engine, world.reviewer, number, items=[("m1", " ")], at=AT)


def test_refuse_and_withdraw_need_reasons(world: World) -> None:
    number = world.new_case().number
    for call in (decisions.refuse, decisions.withdraw):
        with pytest.raises(GuardFailed) as exc:
            call(world.engine, world.teller_a, number, reason="  ", at=AT)
        assert exc.value.code == "reason_required"
    case = decisions.refuse(world.engine, world.teller_a, number, reason="申请人不在服务对象范围内", at=AT)
    assert case.refused_reason == "申请人不在服务对象范围内"
    [refusal] = notices(world, number)
    assert refusal.kind == "refusal" and refusal.items == [{"reason": "申请人不在服务对象范围内"}]


def test_other_outlet_gets_not_found(world: World) -> None:
    number = world.new_case().number
    with pytest.raises(CaseNotFound):
        decisions.withdraw(world.engine, world.teller_b, number, reason="x", at=AT)
    with pytest.raises(CaseNotFound):
        intake.mark_material(world.engine, world.teller_b, number, "m1", "received", at=AT)
    assert world.case(number).state == "draft"


def test_reviewer_of_another_domain_gets_not_found(world: World) -> None:
    number = world.drive("forwarded")
    with pytest.raises(CaseNotFound):
        review.claim(world.engine, world.reviewer_other, number, at=AT)


def test_reviewer_without_domain_sees_all(world: World) -> None:
    from sqlmodel import Session as S

    with S(world.engine, expire_on_commit=False) as s, s.begin():
        rv = s.merge(world.reviewer_other)
        rv.domain = None
    number = world.drive("forwarded")
    assert review.claim(world.engine, rv, number, at=AT).state == "under_review"


def test_claimed_case_is_decided_by_its_reviewer(world: World) -> None:
    from sqlmodel import Session as S

    with S(world.engine, expire_on_commit=False) as s, s.begin():
        other = s.merge(world.reviewer_other)
        other.domain = "社保"
    number = world.drive("under_review")
    with pytest.raises(GuardFailed) as exc:
        review.approve(world.engine, other, number, at=AT)
    assert exc.value.code == "claimed_by_other"


def test_reveal_pii_is_audited_without_the_number(world: World) -> None:
    number = world.new_case().number
    revealed = decisions.reveal_pii(world.engine, world.teller_a, number, at=AT)
    assert revealed.id_number == PERSON_ID
    [entry] = audit_rows(world.engine, "case.reveal_pii", number)
    assert entry["outcome"] == {"result": "done"} and PERSON_ID not in str(entry)


