"""The rows behind a number on the dashboard: ``/figures/rows/{kind}`` lists the cases,
tickets, ratings or assist requests that figure ``?figure=KEY`` counts for the period
(``from``, ``to``) and the viewer's scope (``outlet`` narrows it, 404 outside the view;
``matter`` narrows cases and assist requests). Which rows a figure counts is
:func:`outlet.figures.rows_behind` — the figure's own definition — so the list and the
number agree. No personal data is shown (case numbers, matters, outlets, states, times);
outlet staff get a link to the case page, which checks their scope again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.cases import is_outlet_user
from outlet.clock import local_day
from outlet.figures import FIGURES, Scope, rows_behind
from outlet.models import Case
from outlet.queue.models import QueueLine, Ticket
from outlet.queue.tickets import STATE_LABELS as TICKET_STATES
from outlet.ratings.models import Rating
from outlet.ratings.rules import LEVELS, STAGES
from outlet.states import STATE_LABELS as CASE_STATES
from partners.models import Matter, MatterVersion, Outlet, Staff, utcnow
from remote_assist.models import KIND_LABELS, REQUEST_STATUS_LABELS, AssistRequest
from web.auth import requires_roles
from web.db import reader
from web.params import int_param
from web.routes.case_views import actor_of, page_param, render
from web.routes.figures import ROLES, BadPeriod, date_range, resolve_scope, scope_title

PER_PAGE = 50
KINDS = {"cases": "办件", "tickets": "号票", "ratings": "评价", "assist": "视频帮办请求"}


def _matter_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(
        select(Matter.id, MatterVersion.name)
        .join(MatterVersion, (col(MatterVersion.matter_id) == Matter.id)
              & (col(MatterVersion.version) == Matter.current_version))
        .where(col(Matter.id).in_(ids))
    ).all()
    return {i: str(n) for i, n in rows if i is not None}


def _outlet_names(session: Session, ids: set[int]) -> dict[int, str]:
    rows = session.exec(select(Outlet.id, Outlet.name).where(col(Outlet.id).in_(ids))).all() if ids else []
    return {i: str(n) for i, n in rows if i is not None}


def _staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    rows = session.exec(select(Staff.id, Staff.display_name).where(col(Staff.id).in_(ids))).all() if ids else []
    return {i: str(n) for i, n in rows if i is not None}


def load_rows(session: Session, kind: str, ids: list[int], scope: Scope) -> list[dict[str, Any]]:
    """The rows ``ids`` of ``kind`` in the given order, as display dicts. Rows outside
    ``scope.outlet_ids`` are dropped (a second check behind :func:`rows_behind`)."""
    model: Any = {"cases": Case, "tickets": Ticket, "ratings": Rating, "assist": AssistRequest}[kind]
    stmt = select(model).where(col(model.id).in_(ids))
    if scope.outlet_ids is not None:
        stmt = stmt.where(col(model.outlet_id).in_(scope.outlet_ids))
    found = {r.id: r for r in session.exec(stmt).all()}
    records = [found[i] for i in ids if i in found]
    outlets = _outlet_names(session, {r.outlet_id for r in records})
    out: list[dict[str, Any]] = []
    if kind == "cases":
        matters = _matter_names(session, {r.matter_id for r in records})
        for c in records:
            out.append({"number": c.number, "matter": matters.get(c.matter_id, ""), "outlet": outlets.get(c.outlet_id, ""),
                        "state": CASE_STATES.get(c.state, c.state), "accepted_at": c.accepted_at, "due_on": c.due_on,
                        "completed_at": c.completed_at, "created_at": c.created_at})
    elif kind == "tickets":
        lines = dict(session.exec(select(QueueLine.id, QueueLine.name).where(
            col(QueueLine.id).in_({t.line_id for t in records}))).all()) if records else {}
        for t in records:
            out.append({"number": t.number, "day": t.day, "line": lines.get(t.line_id, ""), "outlet": outlets.get(t.outlet_id, ""),
                        "state": TICKET_STATES.get(t.state, t.state), "issued_at": t.issued_at, "called_at": t.called_at})
    elif kind == "ratings":
        staff = _staff_names(session, {r.staff_id for r in records if r.staff_id})
        for r in records:
            out.append({"id": r.id, "outlet": outlets.get(r.outlet_id, ""), "level": f"{r.level} {LEVELS.get(r.level, '')}",
                        "stage": STAGES.get(r.stage, r.stage), "staff": staff.get(r.staff_id or 0, ""),
                        "created_at": getattr(r, "created_at", None)})
    else:
        matters = _matter_names(session, {r.matter_id for r in records if r.matter_id})
        for a in records:
            out.append({"id": a.id, "kind": KIND_LABELS.get(a.kind, a.kind), "outlet": outlets.get(a.outlet_id, ""),
                        "matter": matters.get(a.matter_id or 0, a.topic), "status": REQUEST_STATUS_LABELS.get(a.status, a.status),
                        "created_at": a.created_at, "wait_seconds": a.wait_seconds, "handle_seconds": a.handle_seconds})
    return out


@requires_roles(*ROLES)
async def rows_page(request: Request) -> Response:
    """The list; unknown kind or figure, or a figure of another kind: 404; bad dates: 400."""
    kind = str(request.path_params["kind"])
    key = request.query_params.get("figure", "")
    defs = {f.key: f for f in FIGURES}
    if kind not in KINDS or key not in defs or defs[key].list_kind != kind:
        raise HTTPException(404, "未找到该列表")
    today = local_day(utcnow())
    try:
        period = date_range(request.query_params.get("from"), request.query_params.get("to"), today)
    except BadPeriod as exc:
        raise HTTPException(400, str(exc)) from None
    raw_outlet, raw_matter = request.query_params.get("outlet", ""), request.query_params.get("matter", "")
    outlet_id = int_param(raw_outlet) if raw_outlet else None
    matter_id = int_param(raw_matter) if raw_matter else None
    if (raw_outlet and outlet_id is None) or (raw_matter and (matter_id is None or kind == "tickets")):
        raise HTTPException(404, "未找到该列表")
    page = page_param(request)
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            seen = resolve_scope(s, actor, outlet_id)
            ids = rows_behind(s, seen.scope, period, key, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE,
                              matter_id=matter_id)
            more = len(ids) > PER_PAGE
            rows = load_rows(s, kind, ids[:PER_PAGE], seen.scope)
            matter = _matter_names(s, {matter_id}).get(matter_id, "") if matter_id else ""
            return {"rows": rows, "more": more, "seen": seen, "matter": matter}

    ctx = await run_in_threadpool(load)
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    ctx.update(kind=kind, kind_label=KINDS[kind], figure=defs[key], period=period, page=page,
               base_query=urlencode(params),
               case_links=is_outlet_user(actor), back=_back_link(params),
               scope_label=scope_title(ctx["seen"]))
    return render(request, "figures/rows.html", ctx)


def _back_link(params: dict[str, str]) -> str:
    keep = {"period": "custom", "from": params.get("from", ""), "to": params.get("to", ""),
            "outlet": params.get("outlet", ""), "figure": params.get("figure", "")}
    return "/figures/?" + urlencode({k: v for k, v in keep.items() if v})



routes = [Route("/rows/{kind}", rows_page, name="rows")]
