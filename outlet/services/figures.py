"""Figures of services (SQL aggregates): counts per kind, outlet, staff, matter and day over
a period of Beijing calendar days, home visits done on time (finished by their due date in
working days) and the average visit length (arrive → leave, minutes). Visits use the
phone's clock: a visit done offline is synced later, and the server time of the sync says
nothing about when the agent was at the door (both times are kept on the visit).

Home visits count as services of their kind (their record has ``home`` set), so 咨询 at home
and at the counter add up in one figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from outlet.clock import local_day, utc_bounds
from outlet.services.models import HomeVisit, ServiceRecord
from partners.models import MatterVersion, Outlet, Staff

GROUPS = ("kind", "outlet", "staff", "matter", "day")


@dataclass(frozen=True)
class VisitFigures:
    done: int  # visits finished in the period
    on_time: int  # … on or before their due date
    open_overdue: int  # visits still open whose due date has passed (as of ``end``)
    average_minutes: float | None  # mean arrive → leave of the finished ones
    unassigned: int = 0  # requests waiting now for the point's lead or the center (待派单)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.done if self.done else None


def _bounds(start: date, end: date) -> tuple[object, object]:
    return utc_bounds(start)[0], utc_bounds(end)[1]


def service_counts(session: Session, outlet_ids: Iterable[int] | None, start: date, end: date,
                   by: str, *, staff_id: int | None = None) -> list[tuple[str, int]]:
    """``[(label, count)]`` of records started in ``[start, end]`` (Beijing days, inclusive),
    grouped ``by`` kind / outlet / staff (who opened it: 首问) / matter / day, largest first
    (days in order). ``outlet_ids`` None means every outlet (the center); ``staff_id`` keeps
    only the records that staff member opened (a teller's or block agent's own figures)."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    lo, hi = _bounds(start, end)
    where = [col(ServiceRecord.started_at) >= lo, col(ServiceRecord.started_at) < hi]
    if outlet_ids is not None:
        where.append(col(ServiceRecord.outlet_id).in_(list(outlet_ids)))
    if staff_id is not None:
        where.append(col(ServiceRecord.opened_by) == staff_id)
    n = func.count(col(ServiceRecord.id))
    if by == "day":
        rows = session.exec(select(ServiceRecord.started_at).where(*where)).all()
        per_day: dict[str, int] = {}
        for t in rows:
            key = local_day(t).isoformat()
            per_day[key] = per_day.get(key, 0) + 1
        return sorted(per_day.items())
    if by == "kind":
        stmt = select(ServiceRecord.kind, n).where(*where).group_by(ServiceRecord.kind)
    elif by == "outlet":
        stmt = (select(Outlet.name, n).join(Outlet, col(Outlet.id) == ServiceRecord.outlet_id)
                .where(*where).group_by(Outlet.name))
    elif by == "staff":
        stmt = (select(Staff.display_name, n).join(Staff, col(Staff.id) == ServiceRecord.opened_by)
                .where(*where).group_by(Staff.display_name))
    else:
        label = func.coalesce(MatterVersion.name, "（未涉及具体事项）")
        stmt = (select(label, n).select_from(ServiceRecord)
                .outerjoin(MatterVersion, col(MatterVersion.id) == ServiceRecord.matter_version_id)
                .where(*where).group_by(label))
    return sorted(((str(k), int(c)) for k, c in session.exec(stmt).all()), key=lambda r: (-r[1], r[0]))


def visit_figures(session: Session, outlet_ids: Iterable[int] | None, start: date,
                  end: date, *, staff_id: int | None = None) -> VisitFigures:
    """Home visits finished in ``[start, end]`` by the phone's clock (the day the agent left
    the home, not the day the phone synced): how many, how many on time, mean length; plus
    visits still open and already past due at ``end``, and (without ``staff_id``) the requests
    waiting now to be assigned (待派单). ``staff_id``: that agent's visits."""
    lo, hi = _bounds(start, end)
    stmt = select(HomeVisit).where(col(HomeVisit.left_phone_at) >= lo, col(HomeVisit.left_phone_at) < hi)
    late_stmt = select(func.count(col(HomeVisit.id))).where(HomeVisit.state != "done",
                                                            col(HomeVisit.due_on) < end)
    if outlet_ids is not None:
        ids = list(outlet_ids)
        stmt = stmt.where(col(HomeVisit.outlet_id).in_(ids))
        late_stmt = late_stmt.where(col(HomeVisit.outlet_id).in_(ids))
    waiting = 0
    if staff_id is not None:
        stmt = stmt.where(col(HomeVisit.assignee_id) == staff_id)
        late_stmt = late_stmt.where(col(HomeVisit.assignee_id) == staff_id)
    else:  # nobody's own figure: the point's (or the center's) queue to dispatch
        wait_stmt = select(func.count(col(HomeVisit.id))).where(HomeVisit.state == "unassigned")
        if outlet_ids is not None:
            wait_stmt = wait_stmt.where(col(HomeVisit.outlet_id).in_(list(outlet_ids)))
        waiting = int(session.exec(wait_stmt).one())
    done = [v for v in session.exec(stmt).all() if v.left_phone_at and v.arrived_phone_at]
    on_time = sum(1 for v in done if v.left_phone_at and local_day(v.left_phone_at) <= v.due_on)
    minutes = [(v.left_phone_at - v.arrived_phone_at).total_seconds() / 60 for v in done
               if v.left_phone_at and v.arrived_phone_at]
    return VisitFigures(
        done=len(done), on_time=on_time, open_overdue=int(session.exec(late_stmt).one()),
        average_minutes=round(sum(minutes) / len(minutes), 1) if minutes else None,
        unassigned=waiting,
    )
