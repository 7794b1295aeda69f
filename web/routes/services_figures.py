"""服务统计: counts per kind, outlet, staff, matter and day, home visits on time and the
average visit length. ``GET /services/figures?period=today|week|month`` answers a fragment
to htmx (the lead's home page loads it) or a page. Who sees what is the figures' own rule
(:func:`partners.authorize.figure_view`): the center admin every outlet, a partner manager
their partner's outlets, an outlet lead their outlet (and AB角 cover), tellers and block
agents their own records and visits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.clock import local_day
from outlet.services import figures
from partners.authorize import FIGURE_ROLES, figure_view
from partners.errors import RoleLacksAction
from partners.models import utcnow
from web.auth import requires_roles
from web.routes.case_views import actor_of, is_htmx, render

PERIODS = {"today": ("今日", 0), "week": ("近 7 天", 6), "month": ("近 30 天", 29)}


@requires_roles(*FIGURE_ROLES)
async def figures_page(request: Request) -> Response:
    period = request.query_params.get("period", "today")
    if period not in PERIODS:
        period = "today"
    label, back = PERIODS[period]
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        end = local_day(utcnow())
        start = end - timedelta(days=back)
        with Session(request.app.state.engine) as s:
            view = figure_view(s, actor, utcnow())
            outlets, mine = view.outlet_ids, view.staff_id
            count = lambda by: figures.service_counts(s, outlets, start, end, by, staff_id=mine)  # noqa: E731
            return {
                "period": period, "period_label": label, "periods": PERIODS, "start": start, "end": end,
                "scope_label": view.label, "own": mine is not None,
                "by_kind": count("kind"), "by_staff": count("staff"), "by_matter": count("matter"),
                "by_day": count("day"),
                "by_outlet": count("outlet") if outlets is None or len(outlets) > 1 else [],
                "visits": figures.visit_figures(s, outlets, start, end, staff_id=mine),
            }

    try:
        ctx = await run_in_threadpool(load)
    except RoleLacksAction as exc:
        raise HTTPException(403, exc.message) from None
    ctx["total"] = sum(c for _k, c in ctx["by_kind"])
    name = "services/_figures.html" if is_htmx(request) else "services/figures.html"
    return render(request, name, ctx)


routes = [Route("/figures", figures_page, name="figures")]
