"""Starting service on a case: link the serving ticket to a new case of this outlet, or
接续办理 — find the applicant's unfinished case by case number + check code (from the 受理回执
or the 一次性告知书) and continue it at this counter, even in another outlet of the same
partner, with its earlier history shown.

The check code is verified by :func:`outlet.status.lookup`; the web layer throttles wrong
codes (``web.throttle``, scope "status", like the public status page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.cases import load_case
from outlet.clock import local_day
from outlet.events import Hub
from outlet.models import Case, CaseEvent
from outlet.queue.errors import QueueError
from outlet.queue.tickets import _own_ticket, at_counter, record
from outlet.states import ACTION_LABELS, STATE_LABELS, TERMINAL
from outlet.status import lookup
from partners.models import MatterVersion, Outlet, Staff


@dataclass(frozen=True)
class HistoryRow:
    day: date
    what: str
    outlet: str


@dataclass(frozen=True)
class ContinuedCase:
    """What the counter sees of a continued case: no personal data, the history by date."""

    number: str
    matter: str
    state_label: str
    outlet: str
    same_outlet: bool
    history: list[HistoryRow]


def _link(engine: Engine, actor: Staff, ticket_id: int, case: Case, *, hub: Hub | None,
          at: datetime | None, note: str) -> None:
    with at_counter(engine, actor, "link", at=at, case=case.number) as (act, counter):
        t, line = _own_ticket(act.session, counter, ticket_id, "link")
        if t.case_id is not None and t.case_id != case.id:
            raise QueueError(f"{t.number} 已关联其他办件")
        t.case_id = case.id
        record(act, hub, t, "link", line, counter, to_state="serving", staff_id=actor.id, note=note)


def link_new_case(engine: Engine, actor: Staff, ticket_id: int, number: str, *, hub: Hub | None,
                  at: datetime | None = None) -> None:
    """Link the serving ticket to case ``number`` of the actor's outlet (just taken in).
    Raises CaseNotFound for a case the actor may not see."""
    with Session(engine) as s:
        case = load_case(s, actor, number).case
    _link(engine, actor, ticket_id, case, hub=hub, at=at, note="新办件")


def continue_case(engine: Engine, actor: Staff, ticket_id: int, number: str, check_code: str, *,
                  hub: Hub | None, at: datetime | None = None) -> ContinuedCase:
    """接续办理: find an unfinished case of the actor's partner by number + check code and
    link the serving ticket to it. Raises WrongCheckCode / StatusLookupLocked (wrong or
    unknown, indistinguishable), or QueueError for a finished case or another partner's."""
    lookup(engine, number, check_code)  # raises on a wrong code (the web layer throttles guesses)
    with Session(engine) as s:
        case = s.exec(select(Case).where(Case.number == number.strip())).one()
        home = s.get(Outlet, case.outlet_id)
        mine = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        if home is None or mine is None or home.partner_id != mine.partner_id:
            raise QueueError("该办件不属于本机构的网点，不能接续办理")
        if case.state in TERMINAL:
            raise QueueError(f"该办件状态为「{STATE_LABELS.get(case.state, case.state)}」，不能接续办理")
    _link(engine, actor, ticket_id, case, hub=hub, at=at, note="接续办理")
    return case_history(engine, case.id or 0, mine.id or 0)


def newest_case_since(session: Session, actor: Staff, since: datetime) -> str | None:
    """The number of the newest case ``actor`` took in at or after ``since`` (what the
    panel offers to link after 新建办件), or None."""
    return session.exec(select(Case.number).where(Case.created_by == actor.id, Case.created_at >= since)
                        .order_by(col(Case.id).desc())).first()


def case_history(engine: Engine, case_id: int, here_outlet_id: int) -> ContinuedCase:
    """A case's matter, state and dated steps (with the outlet of each) — no applicant data."""
    with Session(engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        matter = s.get(MatterVersion, case.matter_version_id)
        outlets = {o.id: o.name for o in s.exec(select(Outlet)).all()}
        events = s.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id))).all()
        history = [HistoryRow(local_day(e.at), ACTION_LABELS.get(e.action, e.action), outlets.get(case.outlet_id, ""))
                   for e in events]
    return ContinuedCase(case.number, matter.name if matter else "", STATE_LABELS.get(case.state, case.state),
                         outlets.get(case.outlet_id, ""), case.outlet_id == here_outlet_id, history)
