"""视频帮办 / 远程勘验 figures, from the request rows (``AssistRequest``) and the inspections.

Each count belongs to the period (Beijing days, inclusive) of its own step: a request to the
day it was made, an answer to the day an expert accepted, a call's length to the day it
ended, an inspection to the day its conclusion was recorded. ``staff``: requests made or
answered by that person, inspections they concluded; grouped ``by="staff"``: the expert who
answered. Requests, answers and inspections are ``assist.request`` / ``assist.accept`` /
``assist.conclude`` entries, so ``audit stats`` recomputes them; waiting time, call length
and escalation are not steps of the log (the log does not link a walk-in request to its
answer, and routing up a level is a timer, not an action).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from outlet.figures.base import (
    FigureDef,
    Number,
    Period,
    Scope,
    Value,
    avg,
    local_date,
    n_if,
    rate,
    sum_if,
)
from partners.models import Outlet
from remote_assist.models import AssistInspection, AssistRequest, AssistSession

F = "video"


def _d(key: str, label: str, unit: str, doc: str, verifiable: bool = True) -> FigureDef:
    return FigureDef(key, label, F, unit, doc, "assist", verifiable)


DEFS: tuple[FigureDef, ...] = (
    _d("assist_requests", "视频帮办请求数", "count",
       "视频帮办请求数 = requests for 视频帮办 or 远程勘验 made in the period (assist.request)."),
    _d("assist_answered", "专家接听数", "count",
       "专家接听数 = requests an expert accepted in the period (assist.accept)."),
    _d("assist_avg_wait", "平均接听等待", "seconds",
       "平均接听等待 = mean seconds from request to acceptance, of the requests accepted in "
       "the period.", False),
    _d("assist_avg_call", "平均通话时长", "seconds",
       "平均通话时长 = mean seconds from acceptance to the end of the call, of the calls that "
       "ended in the period.", False),
    _d("assist_escalations", "逐级上转数", "count",
       "逐级上转数 = requests of the period routed up at least one level (town → district → "
       "city) because nobody answered.", False),
    _d("inspections", "远程勘验数", "count",
       "远程勘验数 = inspections whose conclusion was recorded in the period (assist.conclude)."),
    _d("inspection_pass_rate", "勘验通过率", "ratio",
       "勘验通过率 = inspections concluded 通过 ÷ 远程勘验数."),
)


def _key(session: Session, by: str | None, at: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    r = AssistRequest
    if by is None:
        return None, []
    if by == "outlet":
        return col(r.outlet_id), []
    if by == "partner":
        return col(Outlet.partner_id), [(Outlet, col(Outlet.id) == r.outlet_id)]
    if by == "matter":
        return col(r.matter_id), []
    if by == "domain":
        return col(r.domain), []
    if by == "staff":
        return col(r.accepted_by), []
    if by == "day":
        return local_date(session, at), []
    raise ValueError(f"unknown grouping {by!r}")


def _run(session: Session, scope: Scope, period: Period, by: str | None, at: Any,
         cols: list[Any], names: tuple[str, ...], joins: list[tuple[Any, Any]], staff: Any,
         out: dict[Any, dict[str, Number]]) -> None:
    t0, t1 = period.utc
    key, kjoins = _key(session, by, at)
    q = select(*([key] if key is not None else []), *cols).select_from(AssistRequest)
    for entity, on in [*joins, *kjoins]:
        q = q.join(entity, on)
    q = q.where(at >= t0, at < t1)
    if scope.outlet_ids is not None:
        q = q.where(col(AssistRequest.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(staff == scope.staff_id) if not isinstance(staff, tuple) else \
            q.where(or_(*(s == scope.staff_id for s in staff)))  # fmt: skip
    if key is not None:
        q = q.group_by(key)
    for row in session.execute(q).all():
        g, vals = (row[0], row[1:]) if key is not None else (None, row)
        c = out.setdefault(g, {})
        for n, v in zip(names, vals, strict=True):
            c[n] = c.get(n, 0) + (v or 0)


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    """Four grouped aggregates: by request, acceptance, call end and conclusion time."""
    r, i = AssistRequest, AssistInspection
    people = (col(r.requested_by), col(r.accepted_by))
    out: dict[Any, dict[str, Number]] = {}
    yes = col(r.id).is_not(None)
    _run(session, scope, period, by, col(r.created_at),
         [n_if(yes), n_if(col(r.escalated_at).is_not(None))], ("requests", "escalated"), [], people, out)
    _run(session, scope, period, by, col(r.accepted_at),
         [n_if(yes), sum_if(col(r.wait_seconds).is_not(None), col(r.wait_seconds)),
          n_if(col(r.wait_seconds).is_not(None))], ("answered", "sum_wait", "n_wait"), [], people, out)
    _run(session, scope, period, by, col(r.ended_at),
         [sum_if(col(r.handle_seconds).is_not(None), col(r.handle_seconds)),
          n_if(and_(col(r.handle_seconds).is_not(None)))], ("sum_call", "n_call"), [], people, out)
    joins = [(AssistSession, col(AssistSession.request_id) == r.id),
             (i, col(i.session_id) == AssistSession.id)]
    _run(session, scope, period, by, col(i.concluded_at),
         [n_if(col(i.conclusion).is_not(None)), n_if(col(i.conclusion) == "通过")],
         ("inspections", "passed"), joins, col(i.concluded_by), out)
    return out


def derive(c: dict[str, Number]) -> dict[str, Value]:
    g = c.get
    return {
        "assist_requests": g("requests", 0), "assist_answered": g("answered", 0),
        "assist_avg_wait": avg(g("sum_wait", 0), g("n_wait", 0)),
        "assist_avg_call": avg(g("sum_call", 0), g("n_call", 0)),
        "assist_escalations": g("escalated", 0), "inspections": g("inspections", 0),
        "inspection_pass_rate": rate(g("passed", 0), g("inspections", 0)),
    }  # fmt: skip


def rows(session: Session, scope: Scope, period: Period, key: str, *, limit: int = 50,
         offset: int = 0, matter_id: int | None = None) -> list[int]:
    """Assist request ids behind figure ``key``, newest step first, each by the time of its
    own step (as :func:`counts`): made (请求数, 逐级上转数 — those routed up), accepted
    (接听数, 平均接听等待), ended (平均通话时长), inspection concluded (勘验数, 通过率)."""
    t0, t1 = period.utc
    r, i = AssistRequest, AssistInspection
    q: Any = select(col(r.id))
    if key in ("inspections", "inspection_pass_rate"):
        at: Any = col(i.concluded_at)
        q = q.join(AssistSession, col(AssistSession.request_id) == r.id).join(
            i, col(i.session_id) == AssistSession.id).where(col(i.conclusion).is_not(None))
        people: Any = (col(i.concluded_by),)
    else:
        at = {"assist_answered": col(r.accepted_at), "assist_avg_wait": col(r.accepted_at),
              "assist_avg_call": col(r.ended_at)}.get(key, col(r.created_at))
        people = (col(r.requested_by), col(r.accepted_by))
        if key == "assist_escalations":
            q = q.where(col(r.escalated_at).is_not(None))
        if key == "assist_avg_call":
            q = q.where(col(r.handle_seconds).is_not(None))
    q = q.where(at >= t0, at < t1)
    if scope.outlet_ids is not None:
        q = q.where(col(r.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(or_(*(p == scope.staff_id for p in people)))
    if matter_id is not None:
        q = q.where(col(r.matter_id) == matter_id)
    q = q.order_by(at.desc(), col(r.id).desc())
    return [int(x) for x in session.execute(q.limit(limit).offset(offset)).scalars().all()]
