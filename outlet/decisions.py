"""Decisions and hand-offs at the outlet: 受理, 容缺受理, 不予受理, 转报, 补正后重新转报,
即办件当场办结, 出件, 撤回, and the audited reveal of an applicant's full ID number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine

from outlet import states
from outlet.cases import Frame, case_action
from outlet.clock import local_day
from outlet.errors import InvalidInput
from outlet.models import Case, CaseMaterial
from outlet.notices import issue, received_items
from outlet.workdays import DueDate, WorkCalendar
from partners.errors import ScopeNotGranted
from partners.models import Staff


def _due_dates(f: Frame) -> tuple[DueDate, DueDate]:
    cal = WorkCalendar.load(f.session)
    v = f.ref.version
    return cal.add_workdays(f.today, v.committed_days), cal.add_workdays(f.today, v.statutory_days)


def _set_accepted(f: Frame, committed: DueDate, statutory: DueDate) -> None:
    f.case.accepted_at = f.act.at
    f.act.extra["terms"] = {"received": (f.case.received_on or f.today).isoformat(),
                            "due": committed.day.isoformat()}
    f.case.due_on = committed.day
    f.case.statutory_due_on = statutory.day
    f.case.due_estimated = committed.estimated
    f.case.statutory_due_estimated = statutory.estimated


def set_completed(f: Frame) -> None:
    """办结 (approve, reject, on-site): completion time and Beijing date, working days since
    acceptance (``WorkCalendar.workdays_between``), and the audit entry's ``terms`` — the
    acceptance and committed dates, those working days and the 补正 rounds — so
    ``audit stats`` can recompute 按期办结率 and handling time from the log alone."""
    c = f.case
    c.completed_at, c.completed_on = f.act.at, f.today
    accepted = local_day(c.accepted_at) if c.accepted_at else f.today
    c.handling_workdays = WorkCalendar.load(f.session).workdays_between(accepted, f.today)
    terms: dict[str, object] = {"accepted": accepted.isoformat(), "workdays": c.handling_workdays,
                                "corrections": c.corrections}
    if c.due_on is not None:
        terms["due"] = c.due_on.isoformat()
    f.act.extra["terms"] = terms


def _move(f: Frame, action: str, actor: Staff, *, target: str | None = None,
          note: str | None = None, **params: object) -> None:
    assert actor.id is not None
    t = states.apply(f.guard_input(**params), action, actor_id=actor.id, target=target, note=note)
    f.moved(t.source, t.target)


def accept(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None,
           expected_revision: int | None = None) -> Case:
    """受理: all required materials received → accepted, deadlines set, 受理回执 issued."""
    with case_action(engine, actor, number, "case.accept", at=at,
                     expected_revision=expected_revision) as f:
        _move(f, "case.accept", actor)
        _set_accepted(f, *_due_dates(f))
        issue(f.session, f.case, "receipt", actor_id=actor.id or 0, at=f.act.at,
              items=received_items(f.guard_input().materials))
    return f.case


def accept_rongque(
    engine: Engine, actor: Staff, number: str, *, deadline: date | None, commitment_signed: bool,
    commitment_text: str = "", at: datetime | None = None, expected_revision: int | None = None,
) -> Case:
    """容缺受理: only 容缺后补 materials missing; the applicant's signed commitment is
    recorded; the supply deadline may not pass the committed completion date."""
    with case_action(engine, actor, number, "case.accept_rongque", at=at,
                     expected_revision=expected_revision) as f:
        committed, statutory = _due_dates(f)
        _move(f, "case.accept_rongque", actor, deadline=deadline,
              commitment_signed=commitment_signed, due_on=committed.day,
              note=f"容缺受理，补齐期限 {deadline}")
        assert f.case.id is not None
        deferred: list[CaseMaterial] = []
        for m in f.guard_input().materials:
            if m.necessity == "容缺后补" and m.status != "received":
                m.status, m.updated_at = "deferred", f.act.at
                f.session.add(m)
                deferred.append(m)
        _set_accepted(f, committed, statutory)
        f.case.rongque_commitment = (commitment_text or "").strip() or "申请人已签署容缺受理书面承诺"
        f.case.rongque_deadline = deadline
        items = [{"key": m.key, "name": m.name, "form": m.form, "copies": m.copies} for m in deferred]
        issue(f.session, f.case, "receipt", actor_id=actor.id or 0, at=f.act.at,
              items=received_items(f.guard_input().materials))
        issue(f.session, f.case, "rongque", actor_id=actor.id or 0, at=f.act.at, items=items,
              deadline=deadline)
    return f.case


def refuse(engine: Engine, actor: Staff, number: str, *, reason: str,
           at: datetime | None = None) -> Case:
    """不予受理 with a reason and a dated 不予受理通知书."""
    reason = (reason or "").strip()
    with case_action(engine, actor, number, "case.refuse", at=at) as f:
        _move(f, "case.refuse", actor, reason=reason, note=reason)
        f.case.refused_reason = reason
        issue(f.session, f.case, "refusal", actor_id=actor.id or 0, at=f.act.at,
              items=[{"reason": reason}])
    return f.case


def forward(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None) -> Case:
    """转报: send an accepted (or 容缺-accepted) case to the center for review."""
    with case_action(engine, actor, number, "case.forward", at=at) as f:
        _move(f, "case.forward", actor)
        f.case.forwarded_at = f.act.at
    return f.case


def resubmit(engine: Engine, actor: Staff, number: str, *, note: str = "",
             at: datetime | None = None) -> Case:
    """补正后重新转报: every 必要 material fixed → back to the center."""
    with case_action(engine, actor, number, "case.resubmit", at=at) as f:
        _move(f, "case.resubmit", actor, note=note.strip() or None)
        f.case.forwarded_at = f.act.at
    return f.case


def complete_onsite(engine: Engine, actor: Staff, number: str, *, outcome: str = "approved",
                    reason: str = "", at: datetime | None = None) -> Case:
    """即办件当场办结 when the grant's scope includes 即办."""
    if outcome not in ("approved", "rejected"):
        raise InvalidInput("办结结果无效", field="outcome")
    with case_action(engine, actor, number, "case.complete_onsite", at=at) as f:
        if "即办" not in (f.act.grant.scopes if f.act.grant else []):
            raise ScopeNotGranted("本网点未获「即办」授权，不能当场办结")
        _move(f, "case.complete_onsite", actor, target=outcome, outcome=outcome,
              reason=reason, note=reason.strip() or None)
        set_completed(f)
        f.case.review_comment = reason.strip() or None
    return f.case


def deliver(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None) -> Case:
    """出件: hand the result to the applicant."""
    with case_action(engine, actor, number, "case.deliver", at=at) as f:
        _move(f, "case.deliver", actor)
        f.case.delivered_at = f.act.at
    return f.case


def withdraw(engine: Engine, actor: Staff, number: str, *, reason: str,
             at: datetime | None = None) -> Case:
    """撤回 at the applicant's request (reason required)."""
    reason = (reason or "").strip()
    with case_action(engine, actor, number, "case.withdraw", at=at) as f:
        _move(f, "case.withdraw", actor, reason=reason, note=reason)
        f.case.withdrawn_reason = reason
    return f.case


@dataclass(frozen=True)
class Revealed:
    id_number: str
    agent_id_number: str | None
    phone: str


def reveal_pii(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None) -> Revealed:
    """The applicant's full ID number (and agent's), recorded as an audited action."""
    with case_action(engine, actor, number, "case.reveal_pii", at=at) as f:
        applicant = f.ref.applicant
        result = Revealed(applicant.id_number, f.case.agent_id_number, applicant.phone)
    return result

