"""Read-only views of an outlet's queue: the hall display's board, a counter's panel and a
ticket's public live position. No personal data exists in the queue to leak."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from outlet.clock import local_day
from outlet.queue.counters import counters_of, lines_of
from outlet.queue.models import QueueCounter, QueueLine, Ticket, TicketEvent
from outlet.queue.tickets import STATE_LABELS, call_order, served_by
from partners.models import Outlet, utcnow

RECENT = 6  # calls shown under the current ones on the hall display


def board(session: Session, outlet_id: int, at: datetime | None = None) -> dict[str, Any]:
    """The hall display's state as JSON-able data: ``calls`` (tickets being called, newest
    first, with counter number and name), ``recent`` (the last 6 calls), ``waiting``
    (per active line: prefix, name, count)."""
    day = local_day(at or utcnow())
    counters = {c.id: c for c in counters_of(session, outlet_id)}
    calls = session.exec(select(Ticket).where(Ticket.outlet_id == outlet_id, Ticket.day == day,
                                              Ticket.state == "called")
                         .order_by(col(Ticket.called_at).desc())).all()
    recent = session.exec(
        select(Ticket.number, TicketEvent.counter_id).join(TicketEvent, col(TicketEvent.ticket_id) == Ticket.id)
        .where(Ticket.outlet_id == outlet_id, Ticket.day == day, col(TicketEvent.kind).in_(("call", "recall")))
        .order_by(col(TicketEvent.id).desc()).limit(RECENT)).all()
    counts = dict(session.exec(select(Ticket.line_id, func.count()).where(
        Ticket.outlet_id == outlet_id, Ticket.day == day, Ticket.state == "waiting").group_by(col(Ticket.line_id))).all())

    def where(cid: int | None) -> dict[str, Any]:
        c = counters.get(cid or 0)
        return {"counter": c.number if c else None, "counter_name": c.name if c else ""}

    return {
        "calls": [{"ticket": t.number, **where(t.counter_id)} for t in calls],
        "recent": [{"ticket": n, **where(cid)} for n, cid in recent],
        "waiting": [{"line": ln.prefix, "name": ln.name, "count": int(counts.get(ln.id or 0, 0))}
                    for ln in lines_of(session, outlet_id, active_only=True)],
    }


def _ahead(session: Session, t: Ticket) -> int:
    """Waiting tickets that will be called before ``t`` (same line or counter; priority first,
    then arrival)."""
    earlier = or_(col(Ticket.issued_at) < t.issued_at,
                  and_(col(Ticket.issued_at) == t.issued_at, col(Ticket.id) < (t.id or 0)))
    priority = col(Ticket.priority) != ""
    rank_first = and_(priority, earlier) if t.priority else or_(priority, earlier)
    scope = (col(Ticket.for_counter_id) == t.for_counter_id) if t.for_counter_id else (col(Ticket.line_id) == t.line_id)
    return int(session.exec(select(func.count()).select_from(Ticket).where(
        Ticket.outlet_id == t.outlet_id, Ticket.day == t.day, Ticket.state == "waiting", scope,
        col(Ticket.id) != t.id, rank_first)).one())


def ticket_outlet(session: Session, public_code: str) -> int:
    """The outlet of the ticket whose QR code is ``public_code`` (0 when unknown)."""
    return int(session.exec(select(Ticket.outlet_id).where(Ticket.public_code == public_code[:24])).first() or 0)


@dataclass
class Position:
    """A ticket's public page (the QR code on the printed ticket)."""

    number: str
    line: str
    outlet: str
    state: str
    state_label: str
    ahead: int
    counter: str
    issued_at: datetime
    day: date


def position(session: Session, public_code: str) -> Position | None:
    """The live position of the ticket whose QR code is ``public_code`` (None: unknown)."""
    t = session.exec(select(Ticket).where(Ticket.public_code == public_code[:24])).first()
    if t is None:
        return None
    line = session.get(QueueLine, t.line_id)
    outlet = session.get(Outlet, t.outlet_id)
    counter = session.get(QueueCounter, t.counter_id) if t.counter_id else None
    return Position(t.number, line.name if line else "", outlet.name if outlet else "", t.state,
                    STATE_LABELS.get(t.state, t.state), _ahead(session, t) if t.state == "waiting" else 0,
                    counter.name if counter else "", t.issued_at, t.day)


@dataclass
class Panel:
    """A counter's panel: its current ticket, its held tickets and what waits for it."""

    counter: QueueCounter
    current: Ticket | None
    held: list[Ticket]
    waiting: list[Ticket]
    lines: dict[int, QueueLine]
    counters: list[QueueCounter]
    waiting_total: int = 0
    case_numbers: dict[int, str] = field(default_factory=dict)


def panel(session: Session, counter: QueueCounter, at: datetime | None = None, limit: int = 12) -> Panel:
    from outlet.models import Case

    day = local_day(at or utcnow())
    mine = session.exec(select(Ticket).where(Ticket.counter_id == counter.id, Ticket.day == day,
                                             col(Ticket.state).in_(("called", "serving", "hold")))
                        .order_by(col(Ticket.called_at))).all()
    current = next((t for t in mine if t.state in ("called", "serving")), None)
    base = select(Ticket).where(Ticket.outlet_id == counter.outlet_id, Ticket.day == day,
                                Ticket.state == "waiting", served_by(counter))
    waiting = session.exec(base.order_by(*call_order()).limit(limit)).all()
    total = int(session.exec(select(func.count()).select_from(base.subquery())).one())
    lines = {ln.id or 0: ln for ln in lines_of(session, counter.outlet_id)}
    case_ids = [t.case_id for t in mine if t.case_id]
    numbers = {c.id or 0: c.number for c in session.exec(select(Case).where(col(Case.id).in_(case_ids))).all()} if case_ids else {}
    return Panel(counter, current, [t for t in mine if t.state == "hold"], list(waiting), lines,
                 counters_of(session, counter.outlet_id), total, numbers)
