"""Read side of 好差评 for the pages: lists scoped to what the viewer may see.

Outlet staff see their own outlet (plus outlets they cover as an AB角 backup); tellers see
their own ratings only; the center (admin, reviewer) sees everything. Anything outside the
scope raises :class:`RatingError` 404 — never the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, true
from sqlmodel import Session, col, select

from outlet.cases import visible_outlets
from outlet.clock import local_day, utc_bounds
from outlet.models import Case
from outlet.ratings import workorders as wo
from outlet.ratings.appeals import appeal_last_day
from outlet.ratings.models import Rating, RatingAppeal, RatingWorkOrder
from outlet.ratings.rules import RatingNotFound, policy
from outlet.ratings.workorders import (
    deadline_status,
    due_soon_condition,
    next_due,
    overdue_condition,
    running_due_column,
)
from outlet.workdays import WorkCalendar
from partners.models import CENTER_ROLES, Outlet, Staff
from partners.paging import Page
from remote_assist.models import AssistRequest, AssistSession


@dataclass
class OrderRow:
    order: RatingWorkOrder
    rating: Rating
    outlet_name: str
    case_number: str | None
    deadline: str  # overdue / due_soon / ok
    due: date | None
    estimated: bool = False  # ``due`` lies in a year whose holidays are not yet published


def is_center(actor: Staff) -> bool:
    return actor.outlet_id is None and bool(actor.role_set & CENTER_ROLES)


def scope_outlets(session: Session, actor: Staff) -> set[int] | None:
    """Outlet ids the actor may see; ``None`` = all (center)."""
    return None if is_center(actor) else visible_outlets(session, actor)


def _in_scope(column: object, outlets: set[int] | None) -> ColumnElement[bool]:
    return true() if outlets is None else col(column).in_(outlets)  # type: ignore[call-overload]


def _row(cal: WorkCalendar, today: date, order: RatingWorkOrder, rating: Rating,
         outlet_name: str, case_number: str | None) -> OrderRow:
    due = next_due(order)
    return OrderRow(order, rating, outlet_name, case_number, deadline_status(cal, today, order), due,
                    due is not None and cal.estimated(local_day(order.opened_at), due))


def _order_conditions(session: Session, actor: Staff, today: date, cal: WorkCalendar, *,
                      state: str | None = None, outlet_id: int | None = None,
                      partner_id: int | None = None, overdue: bool = False,
                      escalated: bool = False, unit: str | None = None,
                      deadline: str | None = None,
                      unfinished: bool = False) -> list[ColumnElement[bool]]:
    w = RatingWorkOrder
    conds: list[ColumnElement[bool]] = [_in_scope(w.outlet_id, scope_outlets(session, actor))]
    if state:
        conds.append(col(w.state) == state)
    if outlet_id:
        conds.append(col(w.outlet_id) == outlet_id)
    if partner_id:
        conds.append(col(Outlet.partner_id) == partner_id)
    if unit:
        conds.append(col(w.unit) == unit)
    if overdue or deadline == "overdue":
        conds.append(overdue_condition(today))
    if deadline == "due_soon":
        conds.append(due_soon_condition(cal, today))
    if deadline == "any":  # overdue or due soon: the lead's deadline list
        conds.append(running_due_column() <= cal.due_soon_cutoff(today))
    if escalated:
        conds.append(and_(col(w.escalated_at).is_not(None), col(w.state).not_in(wo.FINISHED)))
    if unfinished:
        conds.append(col(w.state).not_in(wo.FINISHED))
    return conds


def orders(session: Session, actor: Staff, today: date, *, limit: int = 100, offset: int = 0,
           cal: WorkCalendar | None = None, **filters: Any) -> list[OrderRow]:
    """Work orders visible to ``actor``, filtered (``state``, ``outlet_id``, ``partner_id``,
    ``overdue``, ``escalated``, ``unit``: "outlet" / "center" — who handles them,
    ``deadline``: "overdue" / "due_soon" / "any" of both, ``unfinished``: not closed or
    void). Order: with ``deadline`` due soon first, then overdue, each nearest deadline
    first; otherwise nearest 回访 deadline first, closed last. ``limit`` / ``offset``: rows;
    ``cal``: the holiday calendar when already loaded."""
    cal = cal or WorkCalendar.load(session)
    w = RatingWorkOrder
    conds = _order_conditions(session, actor, today, cal, **filters)
    order: list[Any] = [col(w.state).in_(wo.FINISHED), col(w.callback_due), col(w.id)]
    if filters.get("deadline"):
        due = running_due_column()
        order = [due < today, due, col(w.id)]
    rows = session.exec(
        select(w, Rating, Outlet.name, Case.number)
        .join(Rating, col(Rating.id) == w.rating_id)
        .join(Outlet, col(Outlet.id) == w.outlet_id)
        .outerjoin(Case, col(Case.id) == Rating.case_id)
        .where(*conds)
        .order_by(*order)
        .offset(offset).limit(limit)
    ).all()
    return [_row(cal, today, o, r, name, number) for o, r, name, number in rows]


def count_orders(session: Session, actor: Staff, today: date, *,
                 cal: WorkCalendar | None = None, **filters: Any) -> int:
    """How many work orders :func:`orders` would list with these filters, all pages (an
    SQL count — never the length of a cut list)."""
    conds = _order_conditions(session, actor, today, cal or WorkCalendar.load(session), **filters)
    return int(session.exec(
        select(func.count()).select_from(RatingWorkOrder)
        .join(Outlet, col(Outlet.id) == RatingWorkOrder.outlet_id)
        .where(*conds)).one())


def orders_page(session: Session, actor: Staff, today: date, page: int, per_page: int,
                **filters: Any) -> Page[OrderRow]:
    """Page ``page`` (1-based, past the last: the last) of :func:`orders` with the SQL count
    of all of them (:class:`partners.paging.Page`)."""
    cal = WorkCalendar.load(session)
    total = count_orders(session, actor, today, cal=cal, **filters)
    page = min(max(1, page), max(1, -(-total // per_page)))
    rows = orders(session, actor, today, limit=per_page, offset=(page - 1) * per_page, cal=cal,
                  **filters)
    return Page(rows, page, per_page, total)


def order_detail(session: Session, actor: Staff, order_id: int, today: date) -> OrderRow:
    """One work order within the actor's scope, else :class:`RatingError` (404)."""
    w = RatingWorkOrder
    row = session.exec(
        select(w, Rating, Outlet.name, Case.number)
        .join(Rating, col(Rating.id) == w.rating_id)
        .join(Outlet, col(Outlet.id) == w.outlet_id)
        .outerjoin(Case, col(Case.id) == Rating.case_id)
        .where(col(w.id) == order_id, _in_scope(w.outlet_id, scope_outlets(session, actor)))
    ).first()
    if row is None:
        raise RatingNotFound("未找到该整改工单")
    return _row(WorkCalendar.load(session), today, *row)


def ratings_on(session: Session, actor: Staff, day: date, *, mine: bool = False,
               limit: int = 200) -> list[tuple[Rating, str | None]]:
    """Ratings given on ``day`` (Beijing) at the actor's outlets, with the rated staff name;
    ``mine``: only ratings of the actor."""
    start, end = utc_bounds(day)
    conds = [col(Rating.created_at) >= start, col(Rating.created_at) < end,
             _in_scope(Rating.outlet_id, scope_outlets(session, actor))]
    if mine:
        conds.append(col(Rating.staff_id) == actor.id)
    rows = session.exec(select(Rating, Staff.display_name)
                        .outerjoin(Staff, col(Staff.id) == Rating.staff_id)
                        .where(*conds).order_by(col(Rating.id).desc()).limit(limit)).all()
    return [(r, n) for r, n in rows]


def my_bad_ratings(session: Session, actor: Staff, today: date,
                   limit: int = 50) -> list[tuple[Rating, RatingAppeal | None, bool]]:
    """The actor's own 差评 with their appeal, newest first (the teller's page), and whether
    an appeal may still be filed on ``today`` (none yet, within the appeal window of
    :func:`outlet.ratings.appeals.appeal_last_day`; the POST checks the same rule)."""
    cal, pol = WorkCalendar.load(session), policy(session)
    rows = session.exec(select(Rating, RatingAppeal)
                        .outerjoin(RatingAppeal, col(RatingAppeal.rating_id) == Rating.id)
                        .where(col(Rating.staff_id) == actor.id, col(Rating.level) <= 2)
                        .order_by(col(Rating.id).desc()).limit(limit)).all()
    return [(r, a, a is None and today <= appeal_last_day(cal, pol, r)) for r, a in rows]


def pending_appeals(session: Session) -> list[tuple[RatingAppeal, Rating, str, str]]:
    """Appeals waiting for the center, oldest first, with outlet and staff names."""
    rows = session.exec(select(RatingAppeal, Rating, Outlet.name, Staff.display_name)
                        .join(Rating, col(Rating.id) == RatingAppeal.rating_id)
                        .join(Outlet, col(Outlet.id) == Rating.outlet_id)
                        .join(Staff, col(Staff.id) == RatingAppeal.staff_id)
                        .where(col(RatingAppeal.state) == "pending")
                        .order_by(col(RatingAppeal.id))).all()
    return [(a, r, o, s) for a, r, o, s in rows]


def session_rated(session: Session, session_id: int) -> bool:
    """Whether the video session ``session_id`` already has its one expert rating."""
    return session.exec(select(Rating.id).where(
        col(Rating.assist_session_id) == session_id)).first() is not None


def rateable_sessions(session: Session, teller: Staff, now: datetime,
                      days: int = 3) -> list[tuple[AssistSession, str]]:
    """Ended video sessions of this teller (last ``days`` days) not rated yet, with the
    expert's name: the call page's "请申请人评价专家" entries."""
    rated = select(Rating.assist_session_id).where(col(Rating.assist_session_id).is_not(None))
    rows = session.exec(select(AssistSession, Staff.display_name)
                        .join(Staff, col(Staff.id) == AssistSession.expert_id)
                        .join(AssistRequest, col(AssistRequest.id) == AssistSession.request_id)
                        .where(col(AssistSession.teller_id) == teller.id,
                               col(AssistSession.ended_at).is_not(None),
                               col(AssistSession.ended_at) >= now - timedelta(days=days),
                               col(AssistSession.id).not_in(rated))
                        .order_by(col(AssistSession.id).desc()).limit(20)).all()
    return [(s, n) for s, n in rows]
