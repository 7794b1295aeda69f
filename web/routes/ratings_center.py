"""好差评 at the center (mounted at ``/ratings/center``): every work order with filters
(outlet, partner, state, overdue), the escalated ones, appeals to decide, the month's
figures per outlet, and the admin's reason list and deadline editor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.clock import local_day
from outlet.errors import FileNotFound
from outlet.figures import Period, Scope
from outlet.figures import ratings as rating_figures
from outlet.files import KINDS
from outlet.ratings import appeals, settings, views
from outlet.ratings import workorders as wo
from outlet.ratings.models import RatingAppeal
from outlet.ratings.rules import (
    EXCLUDE_CATEGORIES,
    RatingError,
    RatingNotFound,
    RatingRefused,
    current_reasons,
    policy,
)
from partners.models import Outlet, Partner, utcnow
from partners.paging import MAX_PAGE
from web import errors
from web.auth import requires_roles
from web.db import reader
from web.params import int_param
from web.routes.case_views import actor_of, fail, render, see_other
from web.routes.ratings_public import labels
from web.security import is_write, upload_headers

CENTER = ("admin", "reviewer")
ORDERS_PER_PAGE = 50  # rows per page of each work-order list


def query_page(request: Request, name: str) -> int:
    """A 1-based page number from query parameter ``name`` (:func:`web.params.int_param`,
    at most :data:`partners.paging.MAX_PAGE`); junk, "９" or missing → 1."""
    return int_param(request.query_params.get(name), low=1, high=MAX_PAGE) or 1


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params

    def num(key: str) -> int | None:
        return int_param(q.get(key))

    state = q.get("state", "")
    return {"outlet_id": num("outlet"), "partner_id": num("partner"),
            "state": state if state in wo.STATE_LABELS else None,
            "overdue": q.get("overdue") == "1"}


def _center(request: Request) -> dict[str, Any]:
    engine, actor = request.app.state.engine, actor_of(request)
    wo.escalate_overdue(engine)  # idempotent: one audited rating.escalate per overdue order
    today = local_day(utcnow())
    start = today.replace(day=1)  # the month so far
    flt, size = _filters(request), ORDERS_PER_PAGE
    with Session(reader(request.app.state)) as s:  # pure reads: never queue behind writers
        outlets = list(s.exec(select(Outlet).order_by(col(Outlet.id))).all())
        per, total = rating_figures.cards(s, Scope(), Period(start, today), "outlet", today=today)
        return {
            **labels(), "filters": flt, "month": start, "today": today,
            "query": {k: v for k, v in request.query_params.items()},
            "orders": views.orders_page(s, actor, today, query_page(request, "page"), size, **flt),
            "escalated": views.orders_page(s, actor, today, query_page(request, "esc_page"), size,
                                           escalated=True),
            "center_orders": views.orders_page(s, actor, today, query_page(request, "unit_page"),
                                               size, unit="center", unfinished=True),
            "appeals": views.pending_appeals(s), "categories": EXCLUDE_CATEGORIES,
            "outlets": outlets, "partners": list(s.exec(select(Partner)).all()),
            "per_outlet": [(o, per[o.id]) for o in outlets if o.id in per],
            "total": total, "is_admin": "admin" in actor.role_set,
            "decide_id": None, "decide_error": None, "decide_values": {},
        }


@requires_roles(*CENTER)
async def center(request: Request) -> Response:
    return render(request, "ratings/center.html", await run_in_threadpool(_center, request))


@requires_roles(*CENTER)
async def decide(request: Request) -> Response:
    """The center's decision on an appeal (申诉成立 with a category, or 不成立; a note).
    A missing choice or a refusal re-shows the center page with the reason beside that
    appeal's form and the input kept."""
    from web.routes.ratings import choice

    form = await request.form()
    appeal_id = request.path_params["appeal_id"]
    values = {k: str(form.get(k) or "") for k in ("decision", "category", "note")}
    try:
        upheld = choice(form, "decision", {"upheld": True, "rejected": False},
                        "请选择复核结论：申诉成立或申诉不成立")
        await run_in_threadpool(lambda: appeals.decide_appeal(
            request.app.state.engine, actor_of(request), appeal_id, upheld=upheld,
            category=values["category"], note=values["note"]))
    except (RatingError, RatingRefused) as exc:
        if isinstance(exc, RatingNotFound):
            raise
        ctx = await run_in_threadpool(_center, request)
        ctx.update(decide_id=appeal_id, decide_error=exc.message, decide_values=values)
        return render(request, "ratings/center.html", ctx, status_code=exc.status_code)
    return see_other(request, "/ratings/center/")


@requires_roles(*CENTER)
async def evidence(request: Request) -> Response:
    """An appeal's evidence file (content-typed by its sniffed bytes, never cached)."""
    settings = request.app.state.settings

    def load() -> tuple[str, RatingAppeal]:
        with Session(request.app.state.engine) as s:
            appeal = s.get(RatingAppeal, request.path_params["appeal_id"])
            if appeal is None or not appeal.evidence_sha256 or not appeal.evidence_type:
                raise FileNotFound()
            return str(settings.file_store().open(appeal.evidence_sha256)), appeal

    try:
        path, appeal = await run_in_threadpool(load)
    except FileNotFound as exc:
        return fail(request, 404, exc.message)
    ctype = appeal.evidence_type or "application/octet-stream"
    ext = KINDS.get(ctype, ("", (".bin",)))[1][0]
    return errors.stored_file(request, Path(path), ctype,
                              upload_headers(ctype, f"appeal-{appeal.id}{ext}"))


def _settings_ctx(engine: Any, **extra: Any) -> dict[str, Any]:
    with Session(engine) as s:
        version, items = current_reasons(s)
        pol = policy(s)
    return {"version": version, "reasons_text": settings.reason_text(items),
            "fields": settings.POLICY_FIELDS,
            "days": {k: str(getattr(pol, k)) for k in settings.POLICY_FIELDS},
            "error": None, "errors": {}, "saved": None, **extra}


@requires_roles("admin")
async def edit_settings(request: Request) -> Response:
    """The reason list (versioned) and the deadlines in working days."""
    engine = request.app.state.engine
    if not is_write(request):
        return render(request, "ratings/settings.html", await run_in_threadpool(_settings_ctx, engine))
    form = await request.form()
    text = str(form.get("reasons") or "")
    days = {k: str(form.get(k) or "") for k in settings.POLICY_FIELDS}
    try:
        version = await run_in_threadpool(lambda: settings.save(engine, actor_of(request),
                                                                 reasons=text, days=days))
    except RatingError as exc:
        ctx = await run_in_threadpool(_settings_ctx, engine, error=exc.message, errors=exc.errors)
        ctx.update(reasons_text=text, days=days)
        return render(request, "ratings/settings.html", ctx, status_code=exc.status_code)
    ctx = await run_in_threadpool(_settings_ctx, engine, saved=version)
    return render(request, "ratings/settings.html", ctx)


routes = [
    Route("/", center, name="index"),
    Route("/appeals/{appeal_id:id}", decide, methods=["POST"], name="decide"),
    Route("/appeals/{appeal_id:id}/evidence", evidence, name="evidence"),
    Route("/settings", edit_settings, methods=["GET", "POST"], name="settings"),
]
