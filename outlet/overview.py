"""The outlet lead's overview (网点负责人): who is on duty today (AB角 cover included), how
many cases are in each state, and how many are overdue or due soon.

A fixed number of queries whatever the number of staff or cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from outlet.cases import deadline_cases
from outlet.clock import utc_bounds
from outlet.models import Case, CaseEvent
from partners.models import BackupAssignment, Outlet, Staff


@dataclass(frozen=True)
class StaffLine:
    """One person of the outlet today."""

    staff: Staff
    on_duty: bool
    covered_by: str = ""  # AB角: who holds the post while this person is away
    actions_today: int = 0  # case actions recorded today (intake, materials, decisions …)


@dataclass
class OutletOverview:
    outlet: Outlet
    today: date
    staff: list[StaffLine]
    covering: list[tuple[Staff, Staff]]  # (backup from elsewhere, the holder they cover here)
    by_state: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    due_soon: int = 0
    created_today: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def on_duty(self) -> int:
        return sum(1 for s in self.staff if s.on_duty) + len(self.covering)


def outlet_overview(session: Session, lead: Staff, today: date) -> OutletOverview:
    """The overview of ``lead``'s own outlet on ``today`` (Beijing date). Staff away under a
    backup assignment in force are not on duty; backups from other outlets covering a post
    here are listed as covering."""
    assert lead.outlet_id is not None
    outlet = session.get(Outlet, lead.outlet_id)
    assert outlet is not None
    staff = list(session.exec(
        select(Staff).where(Staff.outlet_id == outlet.id, Staff.active).order_by(col(Staff.id))
    ).all())
    in_force = (col(BackupAssignment.valid_from) <= today) & or_(
        col(BackupAssignment.valid_to).is_(None), col(BackupAssignment.valid_to) >= today)
    holder, backup = Staff.__table__.alias("holder"), Staff.__table__.alias("backup")  # type: ignore[attr-defined]
    rows = session.exec(
        select(holder.c.id, holder.c.outlet_id, backup.c.id, backup.c.outlet_id)
        .select_from(BackupAssignment)
        .join(holder, holder.c.id == BackupAssignment.holder_id)
        .join(backup, backup.c.id == BackupAssignment.backup_id)
        .where(in_force, or_(holder.c.outlet_id == outlet.id, backup.c.outlet_id == outlet.id))
    ).all()
    ids = {i for r in rows for i in (r[0], r[2])}
    people = {s.id: s for s in session.exec(select(Staff).where(col(Staff.id).in_(ids))).all()} if ids else {}
    away = {h: people[b].display_name for h, h_outlet, b, _b_outlet in rows if h_outlet == outlet.id}
    covering = [(people[b], people[h]) for h, h_outlet, b, b_outlet in rows
                if h_outlet == outlet.id and b_outlet != outlet.id]
    start, end = utc_bounds(today)
    acted = dict(session.exec(
        select(CaseEvent.actor_id, func.count())
        .join(Case, col(Case.id) == CaseEvent.case_id)
        .where(Case.outlet_id == outlet.id, col(CaseEvent.at) >= start, col(CaseEvent.at) < end)
        .group_by(col(CaseEvent.actor_id))
    ).all())
    lines = [StaffLine(s, s.id not in away, away.get(s.id or 0, ""), int(acted.get(s.id or 0, 0)))
             for s in staff]
    by_state = {state: int(n) for state, n in session.exec(
        select(Case.state, func.count()).where(Case.outlet_id == outlet.id).group_by(col(Case.state))
    ).all()}
    created_today = session.exec(
        select(func.count()).select_from(Case)
        .where(Case.outlet_id == outlet.id, col(Case.created_at) >= start, col(Case.created_at) < end)
    ).one()
    overdue, soon = deadline_cases(session, lead, today)
    mine = [r for r in overdue + soon if r.case.outlet_id == outlet.id]
    return OutletOverview(
        outlet=outlet, today=today, staff=lines, covering=covering, by_state=by_state,
        overdue=sum(1 for r in mine if r.deadline == "overdue"),
        due_soon=sum(1 for r in mine if r.deadline == "due_soon"), created_today=int(created_today),
    )
