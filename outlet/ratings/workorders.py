"""The 差评 work order (整改工单): 核实/回访 → 整改 (or 解释说明) → 反馈 → 销号.

Every step is a delegated action of the order's unit — the outlet lead (or their AB角
backup covering the outlet), or for a 差评 of a video-session expert the center unit
(:func:`refusal_for`) — authorized and audited in one transaction with the change; the leaf points at the
rating's ``rating.submit`` entry (``"rating": {"entry": <index>}``). Refusals (wrong
state, closing a real-name 差评 that was never called back) are audited too.

Deadlines (working days, the holiday calendar, ``RatingPolicy``): 回访 within 1, 整改 within
5. Past a deadline the order is overdue; :func:`escalate_overdue` records one
``rating.escalate`` per order (actor ``system``) and the center admin's list shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, case, null, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.db import reader_of
from outlet.models import Applicant, Case
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import FEEDBACK_VIEWS, RatingError, RatingNotFound, RatingRefused
from outlet.workdays import WorkCalendar
from partners.authorize import local_day
from partners.delegation import ActionContext, delegated_action, unattended_action
from partners.models import Outlet, Staff, utcnow

STATE_LABELS = {"open": "待回访", "called_back": "待整改", "rectified": "待反馈",
                "feedback": "待销号", "closed": "已销号", "void": "已作废（申诉成立）"}
# No deadline runs in these states; "void" is set by an upheld appeal (appeals.py).
FINISHED = ("closed", "void")
# action → {state it may start from: state it leads to}. A call-back may also be recorded
# after the rectification (the rater could not be reached earlier); it moves nothing then.
TRANSITIONS: dict[str, dict[str, str]] = {
    "rating.callback": {"open": "called_back", "called_back": "called_back",
                        "rectified": "rectified", "feedback": "feedback"},
    "rating.rectify": {"open": "rectified", "called_back": "rectified"},
    "rating.feedback": {"rectified": "feedback"},
    "rating.close": {"rectified": "closed", "feedback": "closed"},
}
NOTE_MAX = 500


@dataclass
class Step:
    act: ActionContext
    order: RatingWorkOrder
    rating: Rating


@contextmanager
def _step(engine: Engine, actor: Staff, order_id: int, action: str,
          at: datetime | None) -> Iterator[Step]:
    with Session(engine, expire_on_commit=False) as s:
        row = s.exec(select(RatingWorkOrder, Rating, Outlet)
                     .join(Rating, col(Rating.id) == RatingWorkOrder.rating_id)
                     .join(Outlet, col(Outlet.id) == RatingWorkOrder.outlet_id)
                     .where(RatingWorkOrder.id == order_id)).first()
        if row is None:
            raise RatingNotFound("未找到该整改工单")
        _order, rating, outlet = row
        case = s.get(Case, rating.case_id) if rating.case_id else None
        applicant = s.get(Applicant, case.applicant_id) if case else None
    with delegated_action(engine, actor, action, outlet=outlet,
                          case=case.number if case else None,
                          subject=applicant.pseudonym if applicant and rating.real_name else None,
                          at=at) as act:
        order = act.session.exec(select(RatingWorkOrder).where(RatingWorkOrder.id == order_id)
                                 .with_for_update()).one()
        act.extra["rating"] = {"entry": rating.audit_index or 0}
        why = refusal_for(act.session, actor, order, rating)
        if why is not None:
            raise RatingRefused(why, code="not_responsible")
        target = TRANSITIONS[action].get(order.state)
        if target is None:
            raise RatingRefused(f"工单当前为「{STATE_LABELS[order.state]}」，不能执行该步骤",
                                code="illegal_transition")
        act.state = (order.state, target)
        order.state = target
        yield Step(act, order, rating)
        act.session.add(order)


def refusal_for(session: Session, actor: Staff, order: RatingWorkOrder,
                rating: Rating) -> str | None:
    """Why ``actor`` may not work ``order`` (Chinese), or None when they may. An outlet
    order is the outlet lead's (membership and AB角 cover are checked by ``authorize``); a
    center order (a 差评 of a video-session expert, issue 11 §2) is its owner's, its
    backup's, or any reviewer's of the expert's domain (reviewers are pooled by domain)."""
    if order.unit != "center":
        return None if "outlet_lead" in actor.role_set else "该工单由网点负责人处理"
    if actor.outlet_id is None and actor.id in (order.owner_id, order.backup_id):
        return None
    expert = session.get(Staff, rating.staff_id) if rating.staff_id else None
    domain = expert.domain if expert else None
    if (actor.outlet_id is None and "reviewer" in actor.role_set
            and (not actor.domain or actor.domain == domain)):
        return None
    if actor.outlet_id is None and "reviewer" in actor.role_set:
        return "该工单所涉专家不属于您负责的业务领域，请由该领域的复核人员处理"
    return "视频帮办专家的差评由中心负责处理，网点不能处理该工单"


def _note(text: str, label: str, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise RatingError(f"请填写{label}", field="note")
    if len(text) > NOTE_MAX:
        raise RatingError(f"{label}不超过{NOTE_MAX}字", field="note")
    return text


def record_callback(engine: Engine, actor: Staff, order_id: int, *, reached: bool, note: str,
                    at: datetime | None = None) -> RatingWorkOrder:
    """核实/回访: one call-back attempt (reached or not, what was said)."""
    text = _note(note, "回访情况")
    with _step(engine, actor, order_id, "rating.callback", at) as st:
        st.order.callback_at, st.order.callback_reached = st.act.at, reached
        st.order.callback_note = text
    return st.order


def record_rectification(engine: Engine, actor: Staff, order_id: int, *, kind: str, note: str,
                         at: datetime | None = None) -> RatingWorkOrder:
    """整改 (what was changed) or 解释说明 (the rating is not about a real fault)."""
    if kind not in ("rectify", "explain"):
        raise RatingError("请选择整改或解释说明", field="kind")
    text = _note(note, "整改措施" if kind == "rectify" else "解释说明")
    with _step(engine, actor, order_id, "rating.rectify", at) as st:
        st.order.rectify_kind, st.order.rectify_note = kind, text
        st.order.rectified_at = st.act.at
    return st.order


VIEW_CODES = {"满意": "satisfied", "基本满意": "basic", "不满意": "unsatisfied"}


def record_feedback(engine: Engine, actor: Staff, order_id: int, *, view: str, note: str = "",
                    at: datetime | None = None) -> RatingWorkOrder:
    """反馈: the rater was told the outcome; their view 满意 / 基本满意 / 不满意."""
    if view not in FEEDBACK_VIEWS:
        raise RatingError("请选择评价人对处理结果的意见", field="view")
    text = _note(note, "反馈情况", required=False)
    with _step(engine, actor, order_id, "rating.feedback", at) as st:
        st.order.feedback_view, st.order.feedback_note = view, text or None
        st.act.extra["rating"]["view"] = VIEW_CODES[view]  # the figures' 回访整改满意率
        st.order.feedback_at = st.act.at
    return st.order


def close(engine: Engine, actor: Staff, order_id: int, *,
          at: datetime | None = None) -> RatingWorkOrder:
    """销号. A real-name 差评 needs a recorded call-back attempt first (DOMAIN.md)."""
    with _step(engine, actor, order_id, "rating.close", at) as st:
        if st.rating.real_name and st.order.callback_at is None:
            raise RatingRefused("实名差评须先记录回访，方可销号", code="callback_missing")
        st.order.closed_at, st.order.closed_by = st.act.at, actor.id
    return st.order


def running_deadline(order: RatingWorkOrder) -> str | None:
    """Which deadline runs now: "callback" (回访) until called back or rectified, then
    "rectify" (整改) until rectified; None once rectified or finished."""
    if order.state in FINISHED or order.rectified_at is not None:
        return None
    return "callback" if order.callback_at is None else "rectify"


def next_due(order: RatingWorkOrder) -> date | None:
    """The date of the deadline now running (:func:`running_deadline`), or None."""
    running = running_deadline(order)
    if running is None:
        return None
    return order.callback_due if running == "callback" else order.rectify_due


def running_due_column():  # type: ignore[no-untyped-def]
    """SQL twin of :func:`next_due`: the date of the deadline now running, NULL when none."""
    w = RatingWorkOrder
    return case((or_(col(w.state).in_(FINISHED), col(w.rectified_at).is_not(None)), null()),
                (col(w.callback_at).is_(None), col(w.callback_due)),
                else_=col(w.rectify_due))


def overdue_condition(today: date):  # type: ignore[no-untyped-def]
    """SQL: an open order whose running deadline (回访, then 整改) passed before ``today`` —
    :func:`deadline_status` "overdue"."""
    return running_due_column() < today


def due_soon_condition(cal: WorkCalendar, today: date):  # type: ignore[no-untyped-def]
    """SQL: an open order whose running deadline is ``today`` or at most
    :data:`outlet.workdays.DUE_SOON_DAYS` working days ahead — :func:`deadline_status`
    "due_soon" (the calendar turns working days into a last calendar date)."""
    due = running_due_column()
    return and_(due >= today, due <= cal.due_soon_cutoff(today))


def escalate_overdue(engine: Engine, *, at: datetime | None = None) -> int:
    """Escalate every overdue order not yet escalated to the center (one audited
    ``rating.escalate`` each, actor ``system``). Idempotent; returns how many."""
    now = at or utcnow()
    today = local_day(now)
    with Session(reader_of(engine)) as s:  # decides nothing: each order is re-checked locked
        ids = list(s.exec(select(RatingWorkOrder.id).where(
            overdue_condition(today), col(RatingWorkOrder.escalated_at).is_(None))).all())
    done = 0

    class AlreadyEscalated(Exception):
        """Another worker escalated it meanwhile: roll back, nothing to audit."""

    for order_id in ids:
        with Session(engine, expire_on_commit=False) as s:
            order = s.get(RatingWorkOrder, order_id)
            rating = s.get(Rating, order.rating_id) if order else None
            outlet = s.get(Outlet, order.outlet_id) if order else None
            case = s.get(Case, rating.case_id) if rating and rating.case_id else None
        assert order is not None and rating is not None
        try:
            with unattended_action(engine, actor_id=0, role="system", action="rating.escalate",
                                   outlet=outlet, case=case.number if case else None,
                                   at=now) as act:
                row = act.session.exec(select(RatingWorkOrder)
                                       .where(RatingWorkOrder.id == order_id)
                                       .with_for_update()).one()
                if row.escalated_at is not None:
                    raise AlreadyEscalated()
                row.escalated_at = now
                act.session.add(row)
                act.extra["rating"] = {"entry": rating.audit_index or 0}
                act.state = (row.state, row.state)
            done += 1
        except AlreadyEscalated:
            continue
    return done


def deadline_status(cal: WorkCalendar, today: date, order: RatingWorkOrder) -> str:
    return cal.deadline_status(today, next_due(order))
