"""好差评 for staff (mounted at ``/ratings``): the outlet lead's page (today's ratings, the
month's figures, work orders with their deadlines), each work order's page and steps, the
teller's own ratings and appeals, and the rating of an expert after a video session.
The center's pages are in :mod:`web.routes.ratings_center` (``/ratings/center``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from outlet import pii
from outlet.clock import local_day
from outlet.errors import CaseNotFound, UploadRejected
from outlet.figures import Period, Scope
from outlet.figures import ratings as rating_figures
from outlet.files import ALLOWED_NOTE, read_chunks
from outlet.ratings import appeals, padlink, submit, views
from outlet.ratings import workorders as wo
from outlet.ratings.models import Rating, RatingAppeal
from outlet.ratings.rules import (
    RatingError,
    RatingNotFound,
    RatingRefused,
    current_reasons,
    parse_form,
    reasons_of_version,
)
from outlet.workdays import WorkCalendar
from partners.models import Outlet, Staff, utcnow
from web.auth import requires_roles
from web.db import reader
from web.params import MAX_INDEX, int_param
from web.routes import ratings_center
from web.routes.case_views import actor_of, fail, render, see_other
from web.routes.ratings_public import form_context, kept_values, labels
from web.security import is_write

OUTLET = ("teller", "block_agent", "outlet_lead")


ORDERS_PER_PAGE = 50  # rows per page of the lead's work-order lists


def _home(engine: Any, actor: Staff, query: Any = None) -> dict[str, Any]:
    now = utcnow()
    today = local_day(now)
    start = today.replace(day=1)  # the month so far
    lead = "outlet_lead" in actor.role_set
    with Session(engine) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        reason_labels = {r["code"]: r["label"] for r in current_reasons(s)[1]}
        ctx: dict[str, Any] = {
            "outlet": outlet, "today": today, "month": start, "lead": lead,
            "reason_labels": reason_labels, **labels(),
            "today_ratings": views.ratings_on(s, actor, today, mine=not lead),
            # a lead: the outlet; a teller: their own there; an expert: their own everywhere
            "figures": rating_figures.cards(s, Scope(
                outlet_ids=frozenset({actor.outlet_id}) if actor.outlet_id else None,
                staff_id=None if lead else actor.id), Period(start, today), today=today)[1],
        }
        if lead:
            pages = query or {}
            per = ORDERS_PER_PAGE
            ctx["query"] = pages
            ctx["orders"] = views.orders_page(s, actor, today, pages.get("page", 1), per,
                                              unit="outlet")
            # due soon first, then overdue: one list, paged; the counts are SQL counts
            ctx["due"] = views.orders_page(s, actor, today, pages.get("due_page", 1), per,
                                           unit="outlet", deadline="any")
            ctx["overdue_count"] = views.count_orders(s, actor, today, unit="outlet",
                                                      deadline="overdue")
            ctx["due_soon_count"] = views.count_orders(s, actor, today, unit="outlet",
                                                       deadline="due_soon")
        else:
            ctx["my_bad"] = views.my_bad_ratings(s, actor, today)
            ctx["sessions"] = views.rateable_sessions(s, actor, now)
    return ctx


@requires_roles(*OUTLET, "expert")
async def home(request: Request) -> Response:
    ctx = await run_in_threadpool(_home, reader(request.app.state), actor_of(request),
                                  {"page": ratings_center.query_page(request, "page"),
                                   "due_page": ratings_center.query_page(request, "due_page")})
    return render(request, "ratings/home.html", ctx)


@requires_roles("outlet_lead")
async def due_orders(request: Request) -> Response:
    """The lead's overdue / due-soon work orders (fragment for the 办件 home page)."""
    ctx = await run_in_threadpool(_home, reader(request.app.state), actor_of(request),
                                  {"due_page": ratings_center.query_page(request, "due_page")})
    return render(request, "ratings/_due_orders.html", ctx)


def _order(engine: Any, actor: Staff, order_id: int, pii_key: bytes) -> dict[str, Any]:
    with Session(engine) as s:
        row = views.order_detail(s, actor, order_id, local_day(utcnow()))
        names = {k: (st.display_name if (st := s.get(Staff, v)) else "—") for k, v in (
            ("owner", row.order.owner_id), ("backup", row.order.backup_id),
            ("staff", row.rating.staff_id)) if v}
        reasons = {r["code"]: r["label"] for r in reasons_of_version(s, row.rating.reasons_version)}
        appeal = s.exec(select(RatingAppeal).where(RatingAppeal.rating_id == row.rating.id)).first()
        can_act = wo.refusal_for(s, actor, row.order, row.rating) is None
        cal = WorkCalendar.load(s)
    opened = local_day(row.order.opened_at)
    # a deadline in a year whose holidays are not yet published is counted on weekends only
    estimated = {"callback": cal.estimated(opened, row.order.callback_due),
                 "rectify": cal.estimated(opened, row.order.rectify_due)}
    steps = {a.removeprefix("rating."): row.order.state in t for a, t in wo.TRANSITIONS.items()}
    phone = pii.unseal(pii_key, row.rating.contact_phone, column=submit.PHONE_COLUMN)
    return {"row": row, "order": row.order, "rating": row.rating, "names": names,
            "phone_masked": pii.mask_phone(phone),
            "reason_labels": reasons, "appeal": appeal, "steps": steps if can_act else {},
            "running": wo.running_deadline(row.order), "estimated": estimated,
            "errors": {}, "error": None, "values": {}, "note_max": wo.NOTE_MAX, **labels()}


@requires_roles(*OUTLET, "admin", "reviewer")
async def order_page(request: Request) -> Response:
    ctx = await run_in_threadpool(_order, reader(request.app.state), actor_of(request),
                                  request.path_params["order_id"],
                                  request.app.state.settings.pii_key())
    return render(request, "ratings/order.html", ctx)


def choice(form: Any, name: str, allowed: dict[str, Any], missing: str) -> Any:
    """The value of a required radio choice ``name`` (mapped through ``allowed``); a
    missing or unknown choice is a :class:`RatingError` (422) with ``missing`` — never a
    default (an unchosen 已联系上 is not 未联系上, an unchosen decision is not 不成立)."""
    raw = str(form.get(name) or "")
    if raw not in allowed:
        raise RatingError(missing, field=name)
    return allowed[raw]


STEP_CALLS = {
    "callback": lambda e, a, oid, f: wo.record_callback(
        e, a, oid, reached=choice(f, "reached", {"yes": True, "no": False}, "请选择是否已联系上评价人"),
        note=str(f.get("note") or "")),
    "rectify": lambda e, a, oid, f: wo.record_rectification(
        e, a, oid, kind=str(f.get("kind") or ""), note=str(f.get("note") or "")),
    "feedback": lambda e, a, oid, f: wo.record_feedback(
        e, a, oid, view=str(f.get("view") or ""), note=str(f.get("note") or "")),
    "close": lambda e, a, oid, f: wo.close(e, a, oid),
}


def _in_scope_order(engine: Any, actor: Staff, order_id: int) -> None:
    """:class:`RatingNotFound` (404, names nothing) unless the work order is in the actor's
    scope — the same answer a GET of the order page gives, checked before any step."""
    with Session(engine) as s:
        views.order_detail(s, actor, order_id, local_day(utcnow()))


@requires_roles("outlet_lead", "reviewer")
async def order_step(request: Request) -> Response:
    """One step of the work order; a refused or invalid step re-shows the page with the
    reason and the user's input."""
    order_id, step = request.path_params["order_id"], request.path_params["step"]
    call = STEP_CALLS.get(step)
    if call is None:
        raise RatingError("未知的处理步骤")
    engine, actor = request.app.state.engine, actor_of(request)
    await run_in_threadpool(_in_scope_order, engine, actor, order_id)  # 404 as the GET
    form = await request.form()
    try:
        await run_in_threadpool(call, engine, actor, order_id, form)
    except (RatingError, RatingRefused) as exc:
        ctx = await run_in_threadpool(_order, engine, actor, order_id,
                                      request.app.state.settings.pii_key())
        ctx.update(error=exc.message, errors={step: exc.message},
                   values={k: str(v) for k, v in form.items() if isinstance(v, str)})
        return render(request, "ratings/order.html", ctx, status_code=exc.status_code)
    return see_other(request, f"/ratings/orders/{order_id}")


def _appeal_ctx(engine: Any, actor: Staff, rating_id: int, **extra: Any) -> dict[str, Any]:
    """The appeal page of one of the actor's own 差评 (else 404)."""
    with Session(engine) as s:
        rating = s.get(Rating, rating_id)
        if rating is None or rating.staff_id != actor.id:
            raise RatingNotFound("未找到该评价")
        reasons = {r["code"]: r["label"] for r in reasons_of_version(s, rating.reasons_version)}
        appeal = s.exec(select(RatingAppeal).where(RatingAppeal.rating_id == rating_id)).first()
    return {"rating": rating, "appeal": appeal, "reason_labels": reasons, "values": {},
            "errors": {}, "error": None, "allowed_note": ALLOWED_NOTE, **labels(), **extra}


@requires_roles(*OUTLET, "expert")
async def appeal(request: Request) -> Response:
    """The rated staff member appeals a 差评 (reason; optional evidence file: PDF, JPEG or
    PNG, checked as case scans are, :mod:`outlet.files`; 3 working days). A refused or
    invalid appeal re-shows the form with the reason kept."""
    engine, actor = request.app.state.engine, actor_of(request)
    rating_id = request.path_params["rating_id"]
    if not is_write(request):
        return render(request, "ratings/appeal.html",
                      await run_in_threadpool(_appeal_ctx, engine, actor, rating_id))
    await run_in_threadpool(_appeal_ctx, engine, actor, rating_id)  # 404 as the GET
    settings = request.app.state.settings
    reason, file = "", None
    try:
        length = int_param(request.headers.get("content-length"), high=MAX_INDEX) or 0
        if length > settings.max_upload_bytes + 64 * 1024:
            raise UploadRejected(f"证据文件超过大小上限（{settings.max_upload_bytes // (1024 * 1024)} MB）",
                                 status_code=413, field="evidence")
        form = await request.form(max_files=1, max_fields=10)
        reason = str(form.get("reason") or "")
        file = form.get("evidence")
        stored = None
        if not (reason or "").strip():
            raise RatingError("请填写申诉理由", field="reason")
        if isinstance(file, UploadFile) and file.filename and not await run_in_threadpool(
                appeals.appeal_refused, engine, actor, rating_id):  # a refused appeal stores nothing
            upload = file
            stored = await run_in_threadpool(lambda: settings.file_store().save(
                read_chunks(upload.file), claimed_name=upload.filename or "",
                max_bytes=settings.max_upload_bytes))
        await run_in_threadpool(lambda: appeals.file_appeal(
            engine, actor, rating_id, reason=reason, evidence_file=stored))
    except (RatingError, RatingRefused, UploadRejected) as exc:
        field = "evidence" if isinstance(exc, UploadRejected) else (getattr(exc, "field", None) or "reason")
        ctx = await run_in_threadpool(_appeal_ctx, engine, actor, rating_id)
        ctx.update(error=exc.message, errors={field: exc.message}, values={"reason": reason})
        return render(request, "ratings/appeal.html", ctx, status_code=exc.status_code)
    finally:
        if isinstance(file, UploadFile):
            await file.close()
    return see_other(request, "/ratings/")


@requires_roles(*OUTLET)
async def pad_link(request: Request) -> Response:
    """The teller links the case being served to their counter's 评价器 (pushed to the pad
    through the event hub); back to the case page with a note, or the reason it failed."""
    form = await request.form()
    number = str(form.get("case") or "")[:48]
    try:
        device = await run_in_threadpool(
            lambda: padlink.link_case(request.app.state.engine, request.app.state.hub,
                                      actor_of(request), number))
    except (RatingError, RatingRefused, CaseNotFound) as exc:
        return fail(request, exc.status_code, exc.message)
    request.session["flash"] = (f"已推送到评价器「{device.counter or device.label}」，"
                                "请申请人在评价器上评价本办件")
    return see_other(request, f"/cases/{number}")


@requires_roles(*OUTLET)
async def pad_unlink(request: Request) -> Response:
    """The teller withdraws the case from their counter's 评价器 (the pad reloads to the
    plain rating); back to the case page with a note."""
    form = await request.form()
    number = str(form.get("case") or "")[:48]
    try:
        removed = await run_in_threadpool(
            lambda: padlink.unlink_case(request.app.state.engine, request.app.state.hub,
                                        actor_of(request), number))
    except CaseNotFound as exc:
        return fail(request, exc.status_code, exc.message)
    request.session["flash"] = ("已从评价器撤回本办件，评价器恢复为普通评价" if removed
                                else "评价器上没有本办件，无需撤回")
    return see_other(request, f"/cases/{number}")


@requires_roles(*OUTLET)
async def rate_assist(request: Request) -> Response:
    """After a video session: the applicant rates the expert on the teller's screen."""
    engine, actor = request.app.state.engine, actor_of(request)
    session_id = request.path_params["session_id"]
    await run_in_threadpool(submit.session_of_teller, engine, actor, session_id)  # else 404
    ctx = await run_in_threadpool(form_context, engine)
    ctx["session_id"] = session_id
    if not is_write(request):
        return render(request, "ratings/rate_assist.html", ctx)
    form = await request.form()
    ctx["values"], ctx["picked"] = kept_values(form)
    ctx["nonce"] = str(form.get("nonce") or ctx["nonce"])
    try:
        data = parse_form(form, ctx["reasons"])
        ctx["done"] = await run_in_threadpool(lambda: submit.submit_call(
            engine, actor, session_id, data, reasons_version=ctx["reasons_version"],
            pii_key=request.app.state.settings.pii_key()))
    except (RatingError, RatingRefused) as exc:
        ctx.update(error=exc.message, errors=getattr(exc, "errors", {}) or {})
        return render(request, "ratings/rate_assist.html", ctx, status_code=exc.status_code)
    return render(request, "ratings/rate_assist.html", ctx)


routes = [
    Route("/", home, name="home"),
    Route("/due", due_orders, name="due"),
    Route("/orders/{order_id:id}", order_page, name="order"),
    Route("/orders/{order_id:id}/{step}", order_step, methods=["POST"], name="order_step"),
    Route("/{rating_id:id}/appeal", appeal, methods=["GET", "POST"], name="appeal"),
    Route("/pad/link", pad_link, methods=["POST"], name="pad_link"),
    Route("/pad/unlink", pad_unlink, methods=["POST"], name="pad_unlink"),
    Route("/assist/{session_id:id}", rate_assist, methods=["GET", "POST"], name="assist"),
    Mount("/center", routes=ratings_center.routes, name="center"),
]
