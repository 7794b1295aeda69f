"""Service records: scopes × kinds (allowed, refused and recorded), 首问负责 handover rules,
and every 代办 form's state transitions."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select

from outlet.errors import IllegalTransition, InvalidInput, NotOwner
from outlet.models import CaseMaterial
from outlet.services import daiban, records
from outlet.services.models import ServiceRecord, ServiceStep
from outlet.services.records import NewService
from partners.errors import ScopeNotGranted
from tests.outlet.conftest import AT, KEY, PERSON_ID, World, audit_rows, build_world
from tests.outlet.services.conftest import ServiceWorld


def _open(w: World, kind: str, actor=None, matter=True, **kw):  # type: ignore[no-untyped-def]
    data = NewService(kind=kind, matter_id=w.committed.id if matter else None, topic="如何办理参保登记",
                      **kw)
    return records.open_service(w.engine, actor or w.teller_a, data, pseudonym_key=KEY, at=AT)


@pytest.mark.parametrize(("kind", "matter"), [("咨询", False), ("咨询", True), ("帮办", True), ("陪办", True)])
def test_open_allowed_when_the_grant_carries_the_kinds_scope(sw: ServiceWorld, kind: str, matter: bool) -> None:
    record = _open(sw.w, kind, matter=matter)
    assert record.state == "open" and record.owner_id == sw.w.teller_a.id
    [entry] = audit_rows(sw.w.engine, "service.open")
    assert entry["outcome"] == {"result": "done"} and entry["case"] == record.number
    assert entry["state"] == {"from": None, "to": "open"}


@pytest.mark.parametrize("kind", ["咨询", "帮办", "陪办"])
def test_open_refused_without_the_scope_and_the_refusal_recorded(engine, kind: str) -> None:  # type: ignore[no-untyped-def]
    w = build_world(engine)  # grants carry 收件受理/代办/即办 only
    with pytest.raises(ScopeNotGranted):
        _open(w, kind)
    [entry] = audit_rows(engine, "service.open")
    assert entry["outcome"] == {"result": "refused", "reason": "scope_not_granted"}
    with Session(engine) as s:
        assert s.exec(select(ServiceRecord)).all() == []


def test_daiban_needs_the_daiban_scope_and_an_applicant(sw: ServiceWorld) -> None:
    with pytest.raises(InvalidInput) as exc:
        _open(sw.w, "代办")
    assert "applicant_name" in exc.value.errors
    record = _open(sw.w, "代办", applicant_name="张三", id_number=PERSON_ID)
    [entry] = audit_rows(sw.w.engine, "service.open")
    assert entry["subject"].startswith("hmac-sha256:") and PERSON_ID not in str(entry)
    # outlet B's grant has 代办 but no 咨询: 代办 allowed, 咨询 refused
    b = records.open_service(sw.w.engine, sw.w.teller_b, NewService(
        kind="代办", matter_id=sw.w.committed.id, topic="代办参保", applicant_name="李四",
        id_number=PERSON_ID), pseudonym_key=KEY, at=AT)
    assert b.kind == "代办" and record.kind == "代办"
    with pytest.raises(ScopeNotGranted):
        _open(sw.w, "咨询", actor=sw.w.teller_b, matter=False)


def test_first_asked_owns_the_enquiry_until_handed_over_with_a_note(sw: ServiceWorld) -> None:
    w = sw.w
    record = _open(w, "咨询", matter=False)
    with pytest.raises(NotOwner):
        records.close(w.engine, sw.teller_a2, record.number, outcome="answered", at=AT)
    assert audit_rows(w.engine, "service.close")[-1]["outcome"] == {"result": "refused", "reason": "not_owner"}
    with pytest.raises(InvalidInput) as exc:
        records.handover(w.engine, w.teller_a, record.number, to_staff_id=sw.teller_a2.id, note=" ", at=AT)
    assert "note" in exc.value.errors
    with pytest.raises(InvalidInput):  # another outlet's teller is not a colleague
        records.handover(w.engine, w.teller_a, record.number, to_staff_id=w.teller_b.id, note="请跟进", at=AT)
    records.handover(w.engine, w.teller_a, record.number, to_staff_id=sw.teller_a2.id,
                     note="已解释参保条件，待确认缴费档次", at=AT)
    with pytest.raises(NotOwner):  # the first owner handed it over: no longer theirs
        records.close(w.engine, w.teller_a, record.number, outcome="answered", at=AT)
    done = records.close(w.engine, sw.teller_a2, record.number, outcome="answered", at=AT)
    assert done.state == "closed" and done.outcome == "answered" and done.ended_at == AT
    with pytest.raises(IllegalTransition):
        records.close(w.engine, sw.teller_a2, record.number, outcome="answered", at=AT)
    actions = [e["action"] for e in audit_rows(w.engine, case=record.number) if e["outcome"]["result"] == "done"]
    assert actions == ["service.open", "service.handover", "service.close"]


def test_close_requires_a_reason_for_not_done_and_handed_over(sw: ServiceWorld) -> None:
    record = _open(sw.w, "帮办", channel="爱山东APP")
    for outcome in ("not_done", "handed_over"):
        with pytest.raises(InvalidInput) as exc:
            records.close(sw.w.engine, sw.w.teller_a, record.number, outcome=outcome, at=AT)
        assert "note" in exc.value.errors
    closed = records.close(sw.w.engine, sw.w.teller_a, record.number, outcome="not_done",
                           note="系统维护，改日再办", at=AT)
    assert closed.outcome_note == "系统维护，改日再办"


def _daiban(sw: ServiceWorld) -> str:
    return _open(sw.w, "代办", applicant_name="张三", id_number=PERSON_ID).number


def _forms(engine, number: str) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        rec = s.exec(select(ServiceRecord).where(ServiceRecord.number == number)).one()
        steps = s.exec(select(ServiceStep).where(ServiceStep.record_id == rec.id).order_by(ServiceStep.id)).all()
        return [st.form for st in steps if st.form]


def test_daiban_forms_entrust_suspend_resume_deliver(sw: ServiceWorld) -> None:
    e, t = sw.w.engine, sw.w.teller_a
    n = _daiban(sw)
    with pytest.raises(IllegalTransition):  # nothing to deliver before the 委托书
        daiban.deliver(e, t, n, items="社保卡", received_by="张三", at=AT)
    with pytest.raises(InvalidInput):
        daiban.entrust(e, t, n, matters="", valid_until=None, at=AT)
    daiban.entrust(e, t, n, matters="代为申领社会保障卡", valid_until=date(2026, 12, 31), at=AT)
    with pytest.raises(IllegalTransition):  # 代办 does not end through "close"
        records.close(e, t, n, outcome="done", at=AT)
    with pytest.raises(InvalidInput):
        daiban.suspend(e, t, n, reason="", at=AT)
    daiban.suspend(e, t, n, reason="申请人需补户口簿", at=AT)
    with pytest.raises(IllegalTransition):
        daiban.deliver(e, t, n, items="社保卡", received_by="张三", at=AT)
    daiban.entrust(e, t, n, matters="继续代为申领", valid_until=date(2026, 12, 31), at=AT)
    rec = daiban.deliver(e, t, n, items="社会保障卡 1 张", received_by="张三", at=AT)
    assert rec.state == "delivered" and rec.outcome == "done"
    assert _forms(e, n) == ["entrust", "accept", "suspend", "resume", "deliver"]
    with pytest.raises(IllegalTransition):
        daiban.terminate(e, t, n, reason="撤回", at=AT)
    steps = [x["action"] for x in audit_rows(e, case=n) if x["outcome"]["result"] == "done"]
    assert steps == ["service.open", "service.entrust", "service.suspend", "service.entrust", "service.deliver"]


def test_daiban_terminate_from_suspended_and_entrust_needs_daiban_scope(sw: ServiceWorld) -> None:
    e, t = sw.w.engine, sw.w.teller_a
    n = _daiban(sw)
    daiban.entrust(e, t, n, matters="代为申领", valid_until=date(2026, 12, 31), at=AT)
    daiban.suspend(e, t, n, reason="等待材料", at=AT)
    rec = daiban.terminate(e, t, n, reason="申请人撤回委托", at=AT)
    assert rec.state == "terminated" and rec.outcome == "not_done"
    assert _forms(e, n) == ["entrust", "accept", "suspend", "terminate"]
    consult = _open(sw.w, "咨询", matter=False).number
    with pytest.raises(IllegalTransition):
        daiban.entrust(e, t, consult, matters="x", valid_until=date(2026, 12, 31), at=AT)


def test_service_applicant_is_checked_exactly_as_at_intake() -> None:
    """One validator (outlet.intake.check_applicant) for cases and service records: the same
    input gives the same normalised values and the same messages."""
    from outlet.intake import NewCase

    raw = {"applicant_name": "  张三 ", "id_number": "１１０１０５１９４９１２３１００２ｘ",
           "phone": "１３８－００１３８０００"}
    case = NewCase(matter_id=1, **raw).validate()
    service = NewService(kind="咨询", topic="参保", **raw).validate()
    assert (service.applicant_name, service.id_number, service.phone) == (
        case.applicant_name, case.id_number, case.phone) == ("张三", "11010519491231002X", "138-00138000")
    bad = {"applicant_name": "张\u200b三", "id_number": "110105194912310021", "phone": "abc"}
    with pytest.raises(InvalidInput) as at_intake:
        NewCase(matter_id=1, **bad).validate()
    with pytest.raises(InvalidInput) as at_service:
        NewService(kind="咨询", topic="参保", **bad).validate()
    keys = ("applicant_name", "id_number", "phone")
    assert {k: at_service.value.errors[k] for k in keys} == {k: at_intake.value.errors[k] for k in keys}
    with pytest.raises(InvalidInput) as kind:
        NewService(kind="咨询", topic="参保", applicant_kind="robot", **raw).validate()
    assert kind.value.errors["applicant_kind"] == "请选择申请人类型"


def test_daiban_creates_its_case_through_intake_and_links_it(sw: ServiceWorld) -> None:
    from outlet.models import Applicant, Case

    e, t = sw.w.engine, sw.w.teller_a
    n = _daiban(sw)
    with pytest.raises(IllegalTransition, match="签订委托书并受理后"):  # before the 委托书: refused
        daiban.create_case(e, t, n, pseudonym_key=KEY, at=AT)
    assert audit_rows(e, "service.case")[-1]["outcome"]["result"] == "refused"
    daiban.entrust(e, t, n, matters="代为申领", valid_until=date(2026, 12, 31), at=AT)
    with pytest.raises(NotOwner):  # 首问负责: a colleague may not
        daiban.create_case(e, sw.teller_a2, n, pseudonym_key=KEY, at=AT)
    case = daiban.create_case(e, t, n, pseudonym_key=KEY, at=AT)
    with Session(e) as s:
        stored = s.get(Case, case.id)
        applicant = s.get(Applicant, stored.applicant_id)  # type: ignore[union-attr]
        rec = s.exec(select(ServiceRecord).where(ServiceRecord.number == n)).one()
        keys = [m.key for m in s.exec(select(CaseMaterial).where(CaseMaterial.case_id == case.id))]
    assert (stored.service_mode, stored.state, stored.matter_id) == ("代办", "draft", sw.w.committed.id)
    assert applicant.id_number == PERSON_ID and rec.case_id == case.id  # type: ignore[union-attr]
    assert "poa" in keys  # the intake path's 授权委托书 line
    created = [x for x in audit_rows(e, "case.create") if x["case"] == case.number]
    assert created[-1]["outcome"] == {"result": "done"} and created[-1]["grant"] is not None
    assert audit_rows(e, "service.case")[-1]["outcome"] == {"result": "done"}
    with pytest.raises(IllegalTransition, match="已关联办件"):  # only once
        daiban.create_case(e, t, n, pseudonym_key=KEY, at=AT)
    with Session(e) as s:
        assert len(s.exec(select(Case).where(Case.service_mode == "代办")).all()) == 1
    with pytest.raises(IllegalTransition, match="办件办结后才能出具办结单"):  # the case is 待受理
        daiban.deliver(e, t, n, items="社会保障卡 1 张", received_by="张三", at=AT)
    assert audit_rows(e, "service.deliver")[-1]["outcome"] == {"result": "refused", "reason": "illegal_transition"}


def test_daiban_without_a_poa_can_be_terminated_and_texts_and_terms_are_bounded(sw: ServiceWorld) -> None:
    e, t = sw.w.engine, sw.w.teller_a
    n = _daiban(sw)
    with pytest.raises(InvalidInput, match="最长一年"):  # 9999-12-31 is not a 委托 term
        daiban.entrust(e, t, n, matters="代为申领", valid_until=date(9999, 12, 31), at=AT)
    with pytest.raises(InvalidInput, match="不超过 500 字"):  # refused, never cut silently
        daiban.terminate(e, t, n, reason="长" * 501, at=AT)
    rec = daiban.terminate(e, t, n, reason="申请人决定自己办理，未签委托书", at=AT)
    assert rec.state == "terminated" and rec.outcome == "not_done" and rec.ended_at is not None
    assert _forms(e, n) == ["terminate"]
    consult = _open(sw.w, "咨询", matter=False).number
    with pytest.raises(InvalidInput, match="不超过 500 字"):
        records.handover(e, t, consult, to_staff_id=sw.teller_a2.id, note="交" * 501, at=AT)
    with pytest.raises(InvalidInput, match="不超过 500 字"):
        records.close(e, t, consult, outcome="answered", note="答" * 501, at=AT)
