"""Queue figures (排队叫号), from the append-only ticket events (``TicketEvent``), with the
definitions of the lead's queue page (``outlet/queue/figures.py``):

* a ticket belongs to its business day (Beijing date of issue);
* **wait** = first ``call`` − issue, in seconds (a transfer does not restart it);
* **service** = Σ of the ticket's serving spans: each ``serve`` until the ticket leaves 办理中
  (``hold``, ``transfer`` or ``done``; a ``link`` to a case keeps the span open; time on hold
  is not service);
* averages are means over the tickets that have the value; **P90** is the nearest-rank 90th
  percentile (the ⌈0.9·n⌉-th smallest value);
* **no-show rate** = tickets with a ``no_show`` step ÷ tickets called at least once.

``staff``: the tickets that person called or served (``Ticket.staff_id``). Tickets have no
matter: grouping by matter or domain gives nothing. Every ``ticket.*`` entry carries the
ticket number and its arrival time, so ``audit stats`` rebuilds the same tickets and times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, exists, func, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import literal_column
from sqlmodel import Session, col

from outlet.figures.base import FigureDef, Number, Period, Scope, Value, avg, rate, seconds_between
from outlet.queue.models import Ticket, TicketEvent
from partners.models import Outlet

F = "queue"
ADDITIVE = False  # percentiles: a week is computed, not summed from its days


def _d(key: str, label: str, unit: str, doc: str) -> FigureDef:
    return FigureDef(key, label, F, unit, doc, "tickets")


DEFS: tuple[FigureDef, ...] = (
    _d("tickets", "取号数", "count", "取号数 = tickets issued on the period's business days."),
    _d("wait_avg", "平均等候时长", "seconds", "平均等候时长 = mean of first call − issue (seconds)."),
    _d("wait_p90", "等候时长P90", "seconds",
       "等候时长P90 = nearest-rank 90th percentile of first call − issue (seconds)."),
    _d("service_avg", "平均窗口办理时长", "seconds",
       "平均窗口办理时长 = mean of the tickets' summed serving spans (serve → hold/transfer/done; "
       "a case link keeps the span open)."),
    _d("service_p90", "窗口办理时长P90", "seconds",
       "窗口办理时长P90 = nearest-rank 90th percentile of the summed serving spans."),
    _d("no_show_rate", "过号率", "ratio",
       "过号率 = tickets with a no_show step ÷ tickets called at least once."),
)


def _scoped(q: Any, scope: Scope, period: Period) -> Any:
    q = q.where(col(Ticket.day) >= period.start, col(Ticket.day) <= period.end)
    if scope.outlet_ids is not None:
        q = q.where(col(Ticket.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(col(Ticket.staff_id) == scope.staff_id)
    return q


def _key(by: str | None) -> tuple[Any, list[tuple[Any, Any]]]:
    if by is None:
        return literal_column("0"), []
    if by == "outlet":
        return col(Ticket.outlet_id), []
    if by == "partner":
        return col(Outlet.partner_id), [(Outlet, col(Outlet.id) == Ticket.outlet_id)]
    if by == "staff":
        return col(Ticket.staff_id), []
    if by == "day":
        return col(Ticket.day), []
    raise ValueError(f"unknown grouping {by!r}")


def per_ticket(session: Session, scope: Scope, period: Period, by: str | None) -> Any:
    """CTE: one row per ticket of the period that has steps — group key ``g``, ``wait``
    and ``service`` (seconds or NULL), ``called`` and ``no_show`` (0/1). Each ticket's values
    are correlated look-ups on its own steps (the ``ticket_id`` index): the first ``call``;
    each ``serve`` with the first later step of that ticket that leaves 办理中 (``LEAVES_SERVING``;
    a ``link`` in between keeps the span open)."""
    def step(kind: str) -> Any:
        e = aliased(TicketEvent)
        return col(e.ticket_id) == Ticket.id, col(e.kind) == kind, e

    from outlet.queue.tickets import LEAVES_SERVING  # here: outlet.models imports this module

    on, is_call, c = step("call")
    first_call = select(func.min(col(c.at))).where(on, is_call).scalar_subquery()
    on_serve, is_serve, sv = step("serve")
    x, end = aliased(TicketEvent), aliased(TicketEvent)
    end_id = (select(func.min(col(x.id)))
              .where(col(x.ticket_id) == sv.ticket_id, col(x.id) > sv.id, col(x.kind).in_(LEAVES_SERVING))
              .scalar_subquery())
    served = (select(func.sum(seconds_between(session, col(sv.at), col(end.at)))).select_from(sv)
              .join(end, col(end.id) == end_id).where(on_serve, is_serve).scalar_subquery())

    def has(kind: str) -> Any:
        on_k, is_k, _ = step(kind)
        return case((exists().where(on_k, is_k), 1), else_=0)

    any_step = aliased(TicketEvent)
    key, joins = _key(by)
    q = select(col(Ticket.id).label("tid"), key.label("g"),
               seconds_between(session, col(Ticket.issued_at), first_call).label("wait"),
               served.label("service"), has("call").label("called"), has("no_show").label("no_show"))
    for entity, on_ in joins:
        q = q.join(entity, on_)
    q = q.where(exists().where(col(any_step.ticket_id) == Ticket.id))
    # materialized: each ticket's look-ups run once, not at every use of wait/service above
    return _scoped(q, scope, period).cte("tickets").prefix_with("MATERIALIZED")


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    """Per group: tickets, sums and counts of wait and service, the P90s (not additive),
    called and no-show counts — one query, the tickets subquery evaluated once. P90 is the
    nearest rank ⌈0.9·n⌉ of the n non-NULL values (integer arithmetic: (9n + 9) div 10),
    ranked by window functions on both databases (NULLs ordered last)."""
    if by in ("matter", "domain"):
        return {}
    t = per_ticket(session, scope, period, by)

    def rank(v: Any) -> tuple[Any, Any]:
        return (func.row_number().over(partition_by=t.c.g, order_by=(v.is_(None), v)),
                func.count(v).over(partition_by=t.c.g))

    (rw, nw), (rs, ns) = rank(t.c.wait), rank(t.c.service)
    r = select(t.c.g, t.c.wait, t.c.service, t.c.called, t.c.no_show, rw.label("rw"), nw.label("nw"),
               rs.label("rs"), ns.label("ns")).subquery("ranked")

    def p90(v: Any, rn: Any, n: Any) -> Any:
        return func.max(case((and_(v.is_not(None), rn == (n * 9 + 9) // 10), v)))

    rows = session.execute(select(
        r.c.g, func.count(), func.coalesce(func.sum(r.c.wait), 0), func.count(r.c.wait),
        func.coalesce(func.sum(r.c.service), 0), func.count(r.c.service),
        func.coalesce(func.sum(r.c.called), 0), func.coalesce(func.sum(r.c.no_show * r.c.called), 0),
        p90(r.c.wait, r.c.rw, r.c.nw), p90(r.c.service, r.c.rs, r.c.ns),
    ).group_by(r.c.g)).all()
    out: dict[Any, dict[str, Number]] = {}
    for g, n, sw, nw_, ss, ns_, called, no_show, p_wait, p_service in rows:
        key = None if by is None else g
        out[key] = {"tickets": int(n), "sum_wait": float(sw), "n_wait": int(nw_), "sum_service": float(ss),
                    "n_service": int(ns_), "called": int(called), "no_show": int(no_show)}
        if p_wait is not None:
            out[key]["p90_wait"] = float(p_wait)
        if p_service is not None:
            out[key]["p90_service"] = float(p_service)
    return out


def derive(c: dict[str, Number]) -> dict[str, Value]:
    g = c.get
    return {
        "tickets": g("tickets", 0), "wait_avg": avg(g("sum_wait", 0), g("n_wait", 0)),
        "wait_p90": g("p90_wait"), "service_avg": avg(g("sum_service", 0), g("n_service", 0)),
        "service_p90": g("p90_service"), "no_show_rate": rate(g("no_show", 0), g("called", 0)),
    }  # fmt: skip


def buckets(period: Period, by: str) -> list[Period]:
    """The weeks (Monday first) or months of ``period``, clipped to it."""
    out: list[Period] = []
    day = period.start
    while day <= period.end:
        if by == "week":
            nxt = day - timedelta(days=day.weekday()) + timedelta(days=7)
        else:
            nxt = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        out.append(Period(day, min(nxt - timedelta(days=1), period.end)))
        day = nxt
    return out


def heatmap(session: Session, scope: Scope, period: Period) -> list[list[int]]:
    """Tickets issued per [weekday 0=Monday..6][hour 0..23], Beijing time."""
    at = col(Ticket.issued_at)
    wd: Any
    hr: Any
    if session.get_bind().dialect.name == "postgresql":
        local = at + literal_column("interval '8 hours'")
        wd, hr = func.extract("isodow", local) - 1, func.extract("hour", local)
    else:
        wd = (cast(func.strftime("%w", at, "+8 hours"), Integer) + 6) % 7
        hr = cast(func.strftime("%H", at, "+8 hours"), Integer)
    grid = [[0] * 24 for _ in range(7)]
    q = _scoped(select(wd, hr, func.count()).select_from(Ticket), scope, period).group_by(wd, hr)
    for w, h, n in session.execute(q).all():
        grid[int(w)][int(h)] += int(n)
    return grid



def rows(session: Session, scope: Scope, period: Period, key: str, *, limit: int = 50,
         offset: int = 0, matter_id: int | None = None) -> list[int]:
    """Ticket ids behind figure ``key``, newest first: the period's tickets; for 过号率 its
    denominator, the tickets called at least once. Tickets have no matter: ``matter_id``
    gives nothing."""
    if matter_id is not None:
        return []
    q: Any = _scoped(select(col(Ticket.id)), scope, period)
    if key == "no_show_rate":
        q = q.where(exists().where(col(TicketEvent.ticket_id) == Ticket.id, col(TicketEvent.kind) == "call"))
    q = q.order_by(col(Ticket.issued_at).desc(), col(Ticket.id).desc())
    return [int(i) for i in session.execute(q.limit(limit).offset(offset)).scalars().all()]
