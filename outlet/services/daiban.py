"""代办 under a power of attorney, with the forms of the local 帮办代办 standards
(DB14/T 2233-2020, DB3205/T 1077-2023): 委托书 + 受理单 → (中止单 → 续办委托书) →
终止单 or 办结单. Each form is a dated, numbered step, printable on A4; the applicant stays
the legal applicant, and 代办 is free of charge.

States: open → entrusted (委托书, 受理单) ⇄ suspended (中止单 / 续办委托书);
open | entrusted | suspended → terminated (终止单: also before a 委托书 was signed, so a 代办
the applicant never entrusted does not stay 办理中 for ever); entrusted → delivered (办结单,
once a linked case is finished). While entrusted, :func:`create_case` takes the case in
through the normal intake path.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from audit.db import reader_of
from outlet.clock import local_day
from outlet.errors import IllegalTransition, InvalidInput
from outlet.models import Case
from outlet.services.models import ServiceRecord, ServiceStep
from outlet.services.records import (
    STATE_LABELS,
    ServiceFrame,
    _require_owner,
    link_case,
    load_service,
    service_action,
)
from outlet.states import COMPLETED, TERMINAL
from outlet.states import STATE_LABELS as CASE_STATES
from partners.models import Staff

# A 委托书 runs at most a year (the longest term of the local 帮办代办 practice; a longer
# errand is renewed with a 续办委托书).
MAX_ENTRUST_DAYS = 366
MAX_TEXT = 500  # characters of a form's free text (matters, reason, items: the column's size)

FORMS = {
    "entrust": ("委托书", "WT"),
    "accept": ("受理单", "SL"),
    "resume": ("续办委托书", "XB"),
    "suspend": ("中止单", "ZZ"),
    "terminate": ("终止单", "ZJ"),
    "deliver": ("办结单", "BJ"),
}
# A linked case is finished (decided, delivered, refused, withdrawn …) before the 办结单.
FINISHED_CASE = COMPLETED | TERMINAL
# action → (allowed source states, target state)
MOVES = {
    "service.entrust": (("open", "suspended"), "entrusted"),
    "service.suspend": (("entrusted",), "suspended"),
    "service.terminate": (("open", "entrusted", "suspended"), "terminated"),
    "service.deliver": (("entrusted",), "delivered"),
}


def _fail(errors: dict[str, str]) -> None:
    if errors:
        raise InvalidInput(next(iter(errors.values())), field=next(iter(errors)), errors=errors)


def _begin(f: ServiceFrame, actor: Staff, action: str) -> str:
    if f.record.kind != "代办":
        raise IllegalTransition("只有代办服务使用委托书等代办表单")
    _require_owner(f, actor, "办理")
    sources, target = MOVES[action]
    if f.record.state not in sources:
        raise IllegalTransition(
            f"代办当前状态为「{STATE_LABELS.get(f.record.state, f.record.state)}」，不能执行该操作")
    return target


def _form(f: ServiceFrame, action: str, form: str, data: dict[str, str], note: str) -> ServiceStep:
    assert f.record.id is not None
    count = len(f.session.exec(
        select(ServiceStep.id).where(ServiceStep.record_id == f.record.id, ServiceStep.form == form)
    ).all())
    number = f"{f.record.number}-{FORMS[form][1]}{count + 1}"
    return f.step(action, note=note[:MAX_TEXT], form=form, form_number=number, data=data)


def entrust(
    engine: Engine, actor: Staff, number: str, *, matters: str, valid_until: date | None,
    case_number: str = "", at: datetime | None = None,
) -> ServiceRecord:
    """Sign the 委托书 (who entrusts whom with what, valid until) and issue the 受理单; from
    "suspended" it is the 续办委托书. Needs the 代办 scope in a grant in force. ``case_number``
    links the case this 代办 created or continues."""
    matters = (matters or "").strip()
    errors = {}
    if not matters:
        errors["matters"] = "请写明委托办理的事项和权限"
    elif len(matters) > MAX_TEXT:
        errors["matters"] = f"委托事项不超过 {MAX_TEXT} 字"
    if valid_until is None:
        errors["valid_until"] = "请填写委托有效期"
    _fail(errors)
    assert valid_until is not None
    with service_action(engine, actor, number, "service.entrust", at=at, scope="代办") as f:
        target = _begin(f, actor, "service.entrust")
        today = local_day(f.act.at)
        if valid_until < today:
            _fail({"valid_until": "委托有效期不能早于今天"})
        if (valid_until - today).days > MAX_ENTRUST_DAYS:
            last = date.fromordinal(today.toordinal() + MAX_ENTRUST_DAYS)
            _fail({"valid_until": f"委托有效期最长一年（至 {last.isoformat()}），更长的委托请到期后续办"})
        if case_number.strip():
            link_case(f, case_number)
        data = {"matters": matters, "valid_until": valid_until.isoformat(),
                "agent": actor.display_name}
        if f.record.state == "suspended":
            _form(f, "service.entrust", "resume", data, f"续办：{matters}")
        else:
            _form(f, "service.entrust", "entrust", data, f"委托：{matters}")
            _form(f, "service.entrust", "accept", data, "代办受理")
        f.move(target)
    return f.record


def suspend(engine: Engine, actor: Staff, number: str, *, reason: str,
            at: datetime | None = None) -> ServiceRecord:
    """中止单: the 代办 pauses (e.g. the applicant must fetch a document); reason required."""
    return _with_reason(engine, actor, number, "service.suspend", "suspend", reason, at)


def terminate(engine: Engine, actor: Staff, number: str, *, reason: str,
              at: datetime | None = None) -> ServiceRecord:
    """终止单: the 代办 ends without result (withdrawn, not eligible …); reason required."""
    return _with_reason(engine, actor, number, "service.terminate", "terminate", reason, at)


def _with_reason(engine: Engine, actor: Staff, number: str, action: str, form: str,
                 reason: str, at: datetime | None) -> ServiceRecord:
    reason = (reason or "").strip()
    _fail({"reason": "请填写原因"} if not reason
          else {"reason": f"原因不超过 {MAX_TEXT} 字"} if len(reason) > MAX_TEXT else {})
    with service_action(engine, actor, number, action, at=at) as f:
        target = _begin(f, actor, action)
        _form(f, action, form, {"reason": reason}, reason)
        f.move(target)
        if target == "terminated":
            f.record.outcome, f.record.outcome_note, f.record.ended_at = "not_done", reason, f.act.at
    return f.record


def deliver(engine: Engine, actor: Staff, number: str, *, items: str, received_by: str,
            at: datetime | None = None) -> ServiceRecord:
    """办结单: what was handed back to the applicant, and who signed for it."""
    items, received_by = (items or "").strip(), (received_by or "").strip()
    errors = {}
    if not items:
        errors["items"] = "请列明交还申请人的证照、材料或结果"
    elif len(items) > MAX_TEXT:
        errors["items"] = f"交还内容不超过 {MAX_TEXT} 字"
    if not received_by:
        errors["received_by"] = "请填写签收人"
    elif len(received_by) > 64:
        errors["received_by"] = "签收人不超过 64 字"
    _fail(errors)
    with service_action(engine, actor, number, "service.deliver", at=at) as f:
        target = _begin(f, actor, "service.deliver")
        case = f.session.get(Case, f.record.case_id) if f.record.case_id else None
        if case is not None and case.state not in FINISHED_CASE:
            label = CASE_STATES.get(case.state, case.state)
            raise IllegalTransition(f"关联办件 {case.number} 当前为「{label}」，办件办结后才能出具办结单")
        _form(f, "service.deliver", "deliver", {"items": items, "received_by": received_by},
              f"送达：{items}")
        f.move(target)
        f.record.outcome, f.record.ended_at = "done", f.act.at
    return f.record


def create_case(engine: Engine, actor: Staff, number: str, *, pseudonym_key: bytes,
                at: datetime | None = None) -> Case:
    """代办 creates its case (issue 12 §1): through the normal intake path
    (:func:`outlet.intake.create_case`, service mode 代办 — its own ``case.create`` entry,
    authorized with the 代办 scope, the 授权委托书 added to the checklist) for the record's
    applicant and matter; then ``service.case`` links it to the record. Only the owner of
    an entrusted 代办 without a case may do it (refusals audited). Raises IllegalTransition
    (409), NotOwner (403), the intake's refusals, InvalidInput (422)."""
    from sqlmodel import Session

    from outlet.intake import NewCase
    from outlet.intake import create_case as intake_create

    with Session(reader_of(engine)) as s:  # what to create; re-checked locked below
        ref = load_service(s, actor, number)
    rec, applicant = ref.record, ref.applicant
    problem = _case_problem(rec, actor)
    if problem is None and rec.owner_id != actor.id:
        problem = "仅首问责任人可以新建办件"  # _require_owner below names the owner (NotOwner)
    if problem is None and (applicant is None or rec.matter_id is None):
        problem = "代办记录缺少委托人或事项，不能新建办件"
    if problem is not None:  # refused before anything is made, and recorded
        with service_action(engine, actor, number, "service.case", at=at) as f:
            _check_case_step(f, actor)
            raise IllegalTransition(problem)
    assert applicant is not None
    case = intake_create(engine, actor, NewCase(
        matter_id=rec.matter_id, applicant_kind=applicant.kind, applicant_name=applicant.name,
        id_number=applicant.id_number, phone=applicant.phone,
        legal_representative=applicant.legal_representative, service_mode="代办",
    ), pseudonym_key=pseudonym_key, at=at)
    with service_action(engine, actor, number, "service.case", at=at) as f:
        _check_case_step(f, actor)
        f.record.case_id = case.id
        f.session.add(f.record)
        f.step("service.case", note=f"代办新建办件 {case.number}")
    return case


def _case_problem(rec: ServiceRecord, actor: Staff) -> str | None:
    if rec.kind != "代办":
        return "只有代办服务可以新建代办办件"
    if rec.state != "entrusted":
        return f"代办当前状态为「{STATE_LABELS.get(rec.state, rec.state)}」，签订委托书并受理后才能新建办件"
    if rec.case_id is not None:
        return "该代办已关联办件"
    return None


def _check_case_step(f: ServiceFrame, actor: Staff) -> None:
    _require_owner(f, actor, "新建办件")
    problem = _case_problem(f.record, actor)
    if problem is not None:
        raise IllegalTransition(problem)


def form_step(engine: Engine, record_id: int, form_number: str) -> ServiceStep | None:
    from sqlmodel import Session

    with Session(engine) as s:
        return s.exec(select(ServiceStep).where(
            ServiceStep.record_id == record_id, col(ServiceStep.form_number) == form_number)).first()
