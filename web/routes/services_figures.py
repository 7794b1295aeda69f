"""服务统计 for the outlet lead: counts per kind, staff, matter and day, home visits on time
and the average visit length. ``GET /services/figures?period=today|week|month`` answers a
fragment to htmx (the lead's home page loads it) or a page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.cases import visible_outlets
from outlet.clock import local_day
from outlet.services import figures
from partners.models import utcnow
from web.auth import requires_roles
from web.routes.case_views import actor_of, is_htmx, render

PERIODS = {"today": ("今日", 0), "week": ("近 7 天", 6), "month": ("近 30 天", 29)}


@requires_roles("outlet_lead")
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
            outlets = visible_outlets(s, actor)
            return {
                "period": period, "period_label": label, "periods": PERIODS, "start": start, "end": end,
                "by_kind": figures.service_counts(s, outlets, start, end, "kind"),
                "by_staff": figures.service_counts(s, outlets, start, end, "staff"),
                "by_matter": figures.service_counts(s, outlets, start, end, "matter"),
                "by_day": figures.service_counts(s, outlets, start, end, "day"),
                "visits": figures.visit_figures(s, outlets, start, end),
            }

    ctx = await run_in_threadpool(load)
    ctx["total"] = sum(c for _k, c in ctx["by_kind"])
    name = "services/_figures.html" if is_htmx(request) else "services/figures.html"
    return render(request, name, ctx)


routes = [Route("/figures", figures_page, name="figures")]
