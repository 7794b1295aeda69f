"""The queue for staff: the outlet lead's lines and counters (``/queue/manage``) and the
counter panel (``/queue/``: sign in to a counter, 呼叫下一位, 重呼, 过号, 开始办理, 接续办理, 挂起,
转移, 完成). Mounted at ``/queue``; the kiosk, hall display and public ticket pages are in
``queue_floor``. The panel refreshes itself when the event hub says the outlet's queue changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from outlet.cases import visible_outlets
from outlet.clock import local_day
from outlet.errors import CaseError
from outlet.models import Case
from outlet.queue import board, bookings, casework, counters, defaults, figures, tickets
from outlet.queue.errors import QueueError, QueueInputError
from outlet.queue.models import QueueCounter, QueueLine
from partners.errors import ActionRefused
from partners.models import Outlet, utcnow
from web import throttle
from web.auth import requires_roles
from web.db import reader
from web.params import form_id, int_param, record_id
from web.routes import queue_booking, queue_floor, queue_live
from web.routes.case_views import actor_of, render, see_other

OUTLET = ("teller", "block_agent", "outlet_lead")


# --- the lead's page ---------------------------------------------------------------------


def _manage_context(request: Request, **extra: Any) -> dict[str, Any]:
    actor = actor_of(request)
    with Session(reader(request.app.state)) as s:  # a pure read: never behind writers
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        lines = counters.lines_of(s, actor.outlet_id or 0)
        ctrs = counters.counters_of(s, actor.outlet_id or 0)
        edit_line = s.get(QueueLine, int_param(request.query_params.get("line")) or 0)
        edit_counter = s.get(QueueCounter, int_param(request.query_params.get("counter")) or 0)
        days = 7 if request.query_params.get("days") != "1" else 1
        last = local_day(utcnow())
        figs = figures.figures(s, actor.outlet_id or 0, last - timedelta(days=days - 1), last)
        blocks = [(b, bookings.mask_phone(b.phone)) for b in bookings.blocks(s, actor.outlet_id or 0)]
        center = defaults.for_page(s)
    if edit_line is not None and edit_line.outlet_id != actor.outlet_id:
        edit_line = None
    if edit_counter is not None and edit_counter.outlet_id != actor.outlet_id:
        edit_counter = None
    ctx: dict[str, Any] = {
        "outlet": outlet, "lines": lines, "blocks": blocks, "counters": ctrs, "center": center,
        "line_names": {ln.id: ln.name for ln in lines},
        "edit_line": edit_line, "edit_counter": edit_counter, "line_values": {}, "counter_values": {},
        "errors": {}, "error": None, "figures": figs, "days": days,
    }
    ctx.update(extra)
    return ctx


@requires_roles("outlet_lead")
async def manage(request: Request) -> Response:
    """Lines and counters of the lead's outlet (GET)."""
    return render(request, "queue/manage.html", await run_in_threadpool(_manage_context, request))


@requires_roles("outlet_lead")
async def save_line(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "") or "") for k in ("prefix", "name", "daily_cap", "warn_minutes", "slot_capacity")}
    line_id = record_id(form, "line_id", "未找到该业务类型")
    data = counters.LineForm(**values, bookable=form.get("bookable") == "1", active=form.get("active", "1") == "1")
    try:
        await run_in_threadpool(counters.save_line, request.app.state.engine, actor_of(request), data, line_id=line_id)
    except QueueInputError as exc:
        ctx = await run_in_threadpool(_manage_context, request, line_values=values, errors=exc.errors,
                                      error=exc.message)
        return render(request, "queue/manage.html", ctx, status_code=exc.status_code)
    return see_other(request, "/queue/manage")


@requires_roles("outlet_lead")
async def save_counter(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "") or "") for k in ("number", "name")}
    line_ids = [i for i in (int_param(v) for v in form.getlist("line_ids")) if i is not None]
    counter_id = record_id(form, "counter_id", "未找到该窗口")
    try:
        await run_in_threadpool(lambda: counters.save_counter(
            request.app.state.engine, actor_of(request), number=values["number"], name=values["name"],
            line_ids=line_ids, is_open=form.get("open", "1") == "1", counter_id=counter_id))
    except QueueInputError as exc:
        ctx = await run_in_threadpool(_manage_context, request, counter_values={**values, "line_ids": line_ids},
                                      errors=exc.errors, error=exc.message)
        return render(request, "queue/manage.html", ctx, status_code=exc.status_code)
    return see_other(request, "/queue/manage")


@requires_roles("outlet_lead")
async def lift_block(request: Request) -> Response:
    """Lift a booking block (repeated no-shows); audited ``booking.block_lift``."""
    await run_in_threadpool(lambda: bookings.lift_block(
        request.app.state.engine, actor_of(request), int(request.path_params["block_id"]),
        pseudonym_key=request.app.state.pseudonym_key))
    return see_other(request, "/queue/manage")


@requires_roles("outlet_lead")
async def use_defaults(request: Request) -> Response:
    """Create the center's default lines (and a first counter) at the lead's outlet."""
    await run_in_threadpool(counters.use_defaults, request.app.state.engine, actor_of(request))
    return see_other(request, "/queue/manage")


# --- the counter panel -------------------------------------------------------------------


def _panel_context(request: Request, **extra: Any) -> dict[str, Any]:
    actor = actor_of(request)
    with Session(reader(request.app.state)) as s:  # a pure read: never behind writers
        counter = counters.signed_in_counter(s, actor.id or 0)
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        ctx: dict[str, Any] = {
            "outlet": outlet, "counter": counter, "panel": board.panel(s, counter) if counter else None,
            "all_counters": counters.counters_of(s, actor.outlet_id or 0) if counter is None else [],
            "state_labels": tickets.STATE_LABELS, "priority_labels": tickets.PRIORITY_LABELS,
            "max_recalls": defaults.for_page(s).max_recalls, "continued": None, "error": None, "values": {},
        }
        current = ctx["panel"].current if ctx["panel"] else None
        if current is not None and current.state == "serving" and current.case_id is None:
            newest = casework.newest_case_since(s, actor, current.called_at or current.issued_at)
            ctx["values"] = {"case_number": newest or ""}
        linked = s.get(Case, current.case_id) if current is not None and current.case_id else None
        # 接续办理 of another outlet's case: its page is not this teller's to open (404), so the
        # panel keeps showing the case's history instead of a dead link.
        ctx["case_openable"] = linked is not None and linked.outlet_id in visible_outlets(s, actor)
    if linked is not None and not ctx["case_openable"]:
        ctx["continued"] = casework.case_history(request.app.state.engine, linked.id or 0, actor.outlet_id or 0)
    ctx.update(extra)
    return ctx


def _panel(request: Request, ctx: dict[str, Any], status_code: int = 200) -> Response:
    """The whole page, or for htmx the ``#queue-panel`` fragment."""
    name = "queue/_panel.html" if request.headers.get("HX-Request") == "true" else "queue/counter.html"
    return render(request, name, ctx, status_code=status_code)


@requires_roles(*OUTLET)
async def counter_page(request: Request) -> Response:
    return _panel(request, await run_in_threadpool(_panel_context, request))


@requires_roles(*OUTLET)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    counter_id = int_param(form.get("counter_id"))
    if counter_id is None:
        raise QueueInputError("请选择窗口")
    await run_in_threadpool(counters.sign_in, request.app.state.engine, actor_of(request), counter_id)
    return see_other(request, "/queue/")


@requires_roles(*OUTLET)
async def sign_out(request: Request) -> Response:
    await run_in_threadpool(counters.sign_out, request.app.state.engine, actor_of(request))
    return see_other(request, "/queue/")


STEP_NAMES = ("recall", "no_show", "serve", "hold", "done", "cancel")


@requires_roles(*OUTLET)
async def act(request: Request) -> Response:
    """One button of the panel: ``call`` or a step on ``ticket_id``; answers the panel with
    the refusal's reason in place (the user's input kept) when a step is refused."""
    form = await request.form()
    name = request.path_params["step"]
    engine, actor, hub = request.app.state.engine, actor_of(request), request.app.state.hub
    ticket_id = int_param(form.get("ticket_id")) or 0
    values = {k: str(form.get(k, "") or "")[:64] for k in ("case_number", "check_code")}
    values["note"] = str(form.get("note", "") or "")[:1000]  # longer than MAX_NOTE: refused with its length
    extra: dict[str, Any] = {}
    try:
        if name == "call":
            await run_in_threadpool(lambda: tickets.call_next(engine, actor, hub=hub))
        elif name == "transfer":
            await run_in_threadpool(lambda: tickets.transfer(
                engine, actor, ticket_id, hub=hub, line_id=form_id(form, "line_id", "转往的业务类型无效"),
                counter_id=form_id(form, "counter_id", "转往的窗口无效"), note=values["note"]))
        elif name == "link":
            await run_in_threadpool(lambda: casework.link_new_case(
                engine, actor, ticket_id, values["case_number"].strip(), hub=hub))
        elif name == "continue":
            extra["continued"] = await queue_floor.guarded(
                request, "status", values["case_number"].strip(), lambda: casework.continue_case(
                    engine, actor, ticket_id, values["case_number"], values["check_code"], hub=hub))
        elif name == "checkin":
            code, phone = bookings.split_key(values["case_number"])  # a booking code or a phone (last 4)
            await run_in_threadpool(lambda: bookings.check_in(
                engine, outlet_id=actor.outlet_id or 0, code=code, phone=phone, hub=hub,
                pseudonym_key=request.app.state.pseudonym_key, staff=actor))
        elif name in STEP_NAMES:
            await run_in_threadpool(lambda: tickets.step(engine, actor, ticket_id, name, hub=hub))
        else:
            return Response(status_code=404)
    except (QueueError, CaseError, ActionRefused, throttle.Throttled) as exc:
        ctx = await run_in_threadpool(_panel_context, request, error=exc.message, values=values)
        return _panel(request, ctx, status_code=int(getattr(exc, "status_code", 429)))
    ctx = await run_in_threadpool(_panel_context, request, **extra)
    if request.headers.get("HX-Request") != "true" and not extra:
        return see_other(request, "/queue/")
    return _panel(request, ctx)


routes: list[BaseRoute] = [
    Route("/", counter_page, name="counter"),
    Route("/sign-in", sign_in, methods=["POST"], name="sign_in"),
    Route("/sign-out", sign_out, methods=["POST"], name="sign_out"),
    Route("/act/{step}", act, methods=["POST"], name="act"),
    Route("/manage", manage, name="manage"),
    Route("/manage/lines", save_line, methods=["POST"], name="save_line"),
    Route("/manage/counters", save_counter, methods=["POST"], name="save_counter"),
    Route("/manage/defaults", use_defaults, methods=["POST"], name="defaults"),
    Route("/manage/blocks/{block_id:id}/lift", lift_block, methods=["POST"], name="lift_block"),
    WebSocketRoute("/live", queue_live.panel_socket, name="live"),
    *queue_floor.routes,
    *queue_booking.routes,
]
