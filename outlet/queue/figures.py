"""Queue figures, computed from the append-only ticket events only (so each can be re-derived
from the audit log's ``ticket.*`` entries: same times, same steps).

Definitions (per ticket, times in seconds):

* **wait** = first ``call`` − ``issue`` (a transfer does not restart it: the arrival time stays);
* **service** = Σ of its serving spans: each ``serve`` until the ticket leaves 办理中
  (``hold``, ``transfer`` or ``done``; a ``link`` to a case keeps the span open; time on hold
  is not service);
* **no-show rate** = tickets ending ``no_show`` ÷ tickets called at least once;
* **tickets per day** = tickets issued per Asia/Shanghai business day;
* **bookings honoured** = bookings checked in ÷ (checked in + no-show), by slot day;
* averages are arithmetic means; **P90** is the nearest-rank 90th percentile
  (the ⌈0.9·n⌉-th smallest value).

Grouped per outlet (the caller's), per line (prefix at issue), per counter (the counter that
first called it, for wait; that served it, for service) and per hour of day (Beijing hour of
issue).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from outlet.clock import utc_bounds
from outlet.queue.models import Booking, QueueCounter, QueueLine, Ticket, TicketEvent
from outlet.queue.tickets import LEAVES_SERVING

CHINA = timedelta(hours=8)


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)), 1) - 1]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Stat:
    """Count, mean and P90 (seconds) of one group."""

    key: str
    count: int
    avg: float | None
    p90: float | None

    @classmethod
    def of(cls, key: str, values: list[float]) -> Stat:
        return cls(key, len(values), mean(values), p90(values))


@dataclass
class TicketTimes:
    number: str
    line: str
    hour: int
    day: date
    wait: float | None = None
    service: float | None = None
    call_counter: str | None = None
    serve_counter: str | None = None
    called: bool = False
    no_show: bool = False


@dataclass
class Figures:
    first: date
    last: date
    tickets: int
    per_day: dict[date, int]
    wait_all: Stat
    service_all: Stat
    wait_by_line: list[Stat]
    service_by_line: list[Stat]
    wait_by_counter: list[Stat]
    service_by_counter: list[Stat]
    wait_by_hour: list[Stat]
    no_show_rate: float | None
    bookings_checked_in: int = 0
    bookings_no_show: int = 0

    @property
    def bookings_honoured(self) -> float | None:
        total = self.bookings_checked_in + self.bookings_no_show
        return self.bookings_checked_in / total if total else None


def ticket_times(session: Session, outlet_id: int, first: date, last: date) -> list[TicketTimes]:
    """Per-ticket durations of the outlet's tickets of business days ``first``..``last``."""
    lines = {ln.id: ln.prefix for ln in session.exec(select(QueueLine).where(QueueLine.outlet_id == outlet_id))}
    counters = {c.id: c.name for c in session.exec(select(QueueCounter).where(QueueCounter.outlet_id == outlet_id))}
    start, _ = utc_bounds(first)
    _, end = utc_bounds(last)
    rows = session.exec(
        select(TicketEvent, col(Ticket.number), col(Ticket.day)).join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .where(Ticket.outlet_id == outlet_id, Ticket.day >= first, Ticket.day <= last,
               TicketEvent.at >= start, TicketEvent.at < end + timedelta(days=1))
        .order_by(col(TicketEvent.ticket_id), col(TicketEvent.id))).all()
    out: dict[int, TicketTimes] = {}
    issued: dict[int, datetime] = {}
    serving_since: dict[int, datetime] = {}
    for ev, number, day in rows:
        tid = ev.ticket_id
        if ev.kind == "issue":
            issued[tid] = ev.at
            out[tid] = TicketTimes(number, lines.get(ev.line_id, "?"), (ev.at + CHINA).hour, day)
            continue
        t = out.get(tid)
        if t is None:
            continue
        if ev.kind == "call" and not t.called:
            t.called, t.wait = True, (ev.at - issued[tid]).total_seconds()
            t.call_counter = counters.get(ev.counter_id)
        elif ev.kind == "serve":
            serving_since[tid] = ev.at
            t.serve_counter = counters.get(ev.counter_id)
        elif ev.kind in LEAVES_SERVING and tid in serving_since:
            t.service = (t.service or 0.0) + (ev.at - serving_since.pop(tid)).total_seconds()
        elif ev.kind == "no_show":
            t.no_show = True
    return list(out.values())


def _grouped(times: list[TicketTimes], key: str, value: str) -> list[Stat]:
    groups: dict[str, list[float]] = defaultdict(list)
    for t in times:
        k, v = getattr(t, key), getattr(t, value)
        if k is not None and v is not None:
            groups[str(k)].append(v)
    return [Stat.of(k, vs) for k, vs in sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0]))]


def figures(session: Session, outlet_id: int, first: date, last: date) -> Figures:
    """All queue figures of an outlet for business days ``first``..``last`` (inclusive)."""
    times = ticket_times(session, outlet_id, first, last)
    done = [t for t in times if t.service is not None and t.serve_counter is not None]
    called = [t for t in times if t.called]
    per_day: dict[date, int] = defaultdict(int)
    for t in times:
        per_day[t.day] += 1
    waits = [t.wait for t in times if t.wait is not None]
    return Figures(
        first=first, last=last, tickets=len(times), per_day=dict(sorted(per_day.items())),
        wait_all=Stat.of("全部", waits), service_all=Stat.of("全部", [t.service for t in done if t.service is not None]),
        wait_by_line=_grouped(times, "line", "wait"), service_by_line=_grouped(done, "line", "service"),
        wait_by_counter=_grouped(times, "call_counter", "wait"),
        service_by_counter=_grouped(done, "serve_counter", "service"),
        wait_by_hour=_grouped(times, "hour", "wait"),
        no_show_rate=(sum(t.no_show for t in called) / len(called)) if called else None,
        **_bookings(session, outlet_id, first, last),
    )


def _bookings(session: Session, outlet_id: int, first: date, last: date) -> dict[str, int]:
    rows = dict(session.exec(select(Booking.state, func.count()).where(
        Booking.outlet_id == outlet_id, Booking.day >= first, Booking.day <= last,
        col(Booking.state).in_(("checked_in", "no_show"))).group_by(col(Booking.state))).all())
    return {"bookings_checked_in": int(rows.get("checked_in", 0)), "bookings_no_show": int(rows.get("no_show", 0))}
