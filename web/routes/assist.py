"""Remote help pages: the teller's request and waiting page, the expert's live queue, the
call page and its side panel (materials, consent, checklist, conclusion). Mounted at
``/assist``. WebSockets, ICE, the recorder and media files live in ``assist_rtc``.

One URL serves the page or, for htmx, its fragment (``#assist-queue``, ``#assist-status``,
``#assist-panel``). Domain errors become a Chinese message with the right status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from outlet.models import Case
from partners.catalog import delegated_matters
from partners.models import MatterVersion, Outlet, Staff, utcnow
from remote_assist import inspections, queue
from remote_assist.errors import AssistError, InvalidInput, NotFound
from remote_assist.models import KIND_LABELS, REQUEST_STATUS_LABELS, AssistCallback, AssistSession
from remote_assist.models import LEVEL_LABELS as ASSIST_LEVELS
from remote_assist.runtime import runtime_for
from web.auth import current_user, requires_roles
from web.params import int_param, record_id
from web.routes import assist_rtc
from web.routes.assist_panel import panel_context, render

OUTLET = ("teller", "block_agent", "outlet_lead")
EXPERT = ("expert",)

Handler = Callable[[Request], Awaitable[Response]]


def me(request: Request) -> Staff:
    user = current_user(request)
    assert user is not None  # guarded by requires_roles
    return user


def see_other(request: Request, url: str) -> Response:
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


# --- home: the teller's requests or the expert's queue ------------------------------------

@requires_roles(*OUTLET, *EXPERT)
async def index(request: Request) -> Response:
    user = me(request)
    runtime = runtime_for(request.app)
    await runtime.start()
    if "expert" in user.role_set:
        ctx = await run_in_threadpool(_queue_context, request, user)
        template = "assist/_queue.html" if request.headers.get("HX-Request") == "true" else "assist/queue.html"
        return render(request, template, ctx)
    ctx = await run_in_threadpool(_teller_home, request, user)
    return render(request, "assist/home.html", ctx)


def _queue_context(request: Request, user: Staff) -> dict[str, Any]:
    runtime = runtime_for(request.app)
    with Session(request.app.state.engine) as s:
        items = queue.expert_queue(s, user, utcnow(), runtime.cfg)
        mine = s.exec(select(AssistSession).where(
            AssistSession.expert_id == user.id, AssistSession.state == "active")).first()
    return {"items": items, "active_call": mine, "kind_labels": KIND_LABELS, "level_labels": ASSIST_LEVELS}


def _teller_home(request: Request, user: Staff, values: dict[str, Any] | None = None,
                 error: AssistError | None = None) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        outlet = s.get(Outlet, user.outlet_id) if user.outlet_id else None
        matters = [m for m in delegated_matters(s, outlet, utcnow()) if m.scopes & {"视频办", "帮办"}] if outlet else []
        reqs = queue.outlet_requests(s, user)
        cases = {c.id: c for c in s.exec(select(Case).where(
            col(Case.id).in_([r.case_id for r in reqs if r.case_id]))).all()}
    return {"matters": matters, "requests": reqs, "cases": cases, "kind_labels": KIND_LABELS,
            "status_labels": REQUEST_STATUS_LABELS, "values": values or {}, "error": error}


# --- a new request ------------------------------------------------------------------------

@requires_roles(*OUTLET)
async def new_request(request: Request) -> Response:
    """From a case (``?case=<id>``): choose 视频帮办 or 远程勘验 and see the checklist."""
    user = me(request)
    case_id = int_param(request.query_params.get("case"))
    ctx = await run_in_threadpool(_new_context, request, user, case_id)
    return render(request, "assist/new.html", ctx)


def _new_context(request: Request, user: Staff, case_id: int | None, values: dict[str, Any] | None = None,
                 error: AssistError | None = None) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        case = s.get(Case, case_id) if case_id else None
        if case is None or case.outlet_id != user.outlet_id:
            raise NotFound("未找到该办件")
        version = s.get(MatterVersion, case.matter_version_id)
    return {"case": case, "version": version, "kind_labels": KIND_LABELS, "values": values or {},
            "error": error}


@requires_roles(*OUTLET)
async def create_request(request: Request) -> Response:
    user = me(request)
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("kind", "case_id", "matter_id", "topic")}
    case_id = record_id(values, "case_id", "未找到该办件")  # "²" is no case, not "without a case"
    matter_id = int_param(values["matter_id"])
    engine = request.app.state.engine
    try:
        req = await run_in_threadpool(lambda: queue.create_request(
            engine, user, kind=values["kind"], case_id=case_id, matter_id=matter_id, topic=values["topic"]))
    except InvalidInput as exc:
        if case_id:
            ctx = await run_in_threadpool(_new_context, request, user, case_id, values, exc)
            return render(request, "assist/new.html", ctx, status_code=422)
        ctx = await run_in_threadpool(_teller_home, request, user, values, exc)
        return render(request, "assist/home.html", ctx, status_code=422)
    await runtime_for(request.app).events.queue_changed({req.domain})
    return see_other(request, f"/assist/requests/{req.id}")


# --- the waiting page -----------------------------------------------------------------------

@requires_roles(*OUTLET, *EXPERT)
async def request_page(request: Request) -> Response:
    user = me(request)
    rid = int(request.path_params["rid"])
    ctx = await run_in_threadpool(_request_context, request, user, rid)
    if ctx["call"] is not None and ctx["call"].state == "active" and user.id in (
            ctx["call"].teller_id, ctx["call"].expert_id) and request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": f"/assist/sessions/{ctx['call'].id}"})
    template = "assist/_status.html" if request.headers.get("HX-Request") == "true" else "assist/request.html"
    return render(request, template, ctx)


def _request_context(request: Request, user: Staff, rid: int, error: AssistError | None = None) -> dict[str, Any]:
    runtime = runtime_for(request.app)
    now = utcnow()
    with Session(request.app.state.engine) as s:
        domain = queue.load_request(s, user, rid).domain
    # Its own read: on SQLite every transaction holds the process' write lock (BEGIN IMMEDIATE).
    online = runtime.events.experts_online(domain)
    with Session(request.app.state.engine) as s:
        req = queue.load_request(s, user, rid)
        version = s.get(MatterVersion, req.matter_version_id) if req.matter_version_id else None
        case = s.get(Case, req.case_id) if req.case_id else None
        call = s.exec(select(AssistSession).where(AssistSession.request_id == req.id)).first()
        waiting = req.status == "waiting"
        cb = s.exec(select(AssistCallback).where(AssistCallback.request_id == req.id)).first()
        return {
            "req": req, "version": version, "case": case, "call": call, "callback": cb,
            "position": queue.position_of(s, req) if waiting else None,
            "eta": queue.estimated_wait(s, req, online, runtime.cfg) if waiting else None,
            "slots": queue.callback_slots(s, req.domain, now, runtime.cfg) if waiting else [],
            "kind_labels": KIND_LABELS, "status_labels": REQUEST_STATUS_LABELS,
            "level_labels": ASSIST_LEVELS, "error": error, "is_outlet": user.outlet_id is not None,
            "experts_online": online,
        }


@requires_roles(*OUTLET)
async def cancel(request: Request) -> Response:
    user = me(request)
    rid = int(request.path_params["rid"])
    req = await run_in_threadpool(queue.cancel, request.app.state.engine, user, rid)
    await runtime_for(request.app).events.queue_changed({req.domain})
    return see_other(request, f"/assist/requests/{rid}")


@requires_roles(*OUTLET)
async def book_callback(request: Request) -> Response:
    user = me(request)
    rid = int(request.path_params["rid"])
    form = await request.form()
    try:
        slot = datetime.fromisoformat(str(form.get("slot", "")))
        await run_in_threadpool(queue.book_callback, request.app.state.engine, user, rid, slot)
    except (ValueError, InvalidInput) as exc:
        err = exc if isinstance(exc, InvalidInput) else InvalidInput("请选择回拨时段", field="slot")
        ctx = await run_in_threadpool(_request_context, request, user, rid, err)
        return render(request, "assist/request.html", ctx, status_code=422)
    await runtime_for(request.app).events.queue_changed(None)
    return see_other(request, f"/assist/requests/{rid}")


@requires_roles(*EXPERT)
async def accept(request: Request) -> Response:
    user = me(request)
    rid = int(request.path_params["rid"])
    runtime = runtime_for(request.app)
    call = await run_in_threadpool(
        lambda: queue.accept(request.app.state.engine, user, rid, cfg=runtime.cfg))
    url = f"/assist/sessions/{call.id}"
    await runtime.events.to_user(call.teller_id, {"type": "accepted", "request": rid, "url": url})
    await runtime.events.queue_changed(None)
    return see_other(request, url)


# --- the call page --------------------------------------------------------------------------

@requires_roles(*OUTLET, *EXPERT)
async def call_page(request: Request) -> Response:
    user = me(request)
    sid = int(request.path_params["sid"])
    runtime = runtime_for(request.app)
    await runtime.start()
    ctx = await run_in_threadpool(panel_context, request, user, sid)
    if request.headers.get("HX-Request") == "true":
        return render(request, "assist/_panel.html", ctx)
    return render(request, "assist/call.html", ctx)


@requires_roles(*OUTLET, *EXPERT, "reviewer", "auditor")
async def case_fragment(request: Request) -> Response:
    """Remote help and the inspection result of a case (for the case page)."""
    user = me(request)
    case_id = int(request.path_params["case_id"])

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            case = s.get(Case, case_id)
            if case is None or not assist_rtc.may_see_case(s, user, case):
                raise NotFound("未找到该办件")
            summary = inspections.case_summary(s, case_id)
            return {"case": case, "summary": summary, "kind_labels": KIND_LABELS,
                    "status_labels": REQUEST_STATUS_LABELS,
                    "gate": inspections.inspection_gate_reason(s, case)}

    ctx = await run_in_threadpool(load)
    template = "assist/_case.html" if request.headers.get("HX-Request") == "true" else "assist/case.html"
    return render(request, template, ctx)


routes: list[BaseRoute] = [
    Route("/", index, name="index"),
    Route("/new", new_request, name="new"),
    Route("/requests", create_request, methods=["POST"], name="create"),
    Route("/requests/{rid:id}", request_page, name="request"),
    Route("/requests/{rid:id}/cancel", cancel, methods=["POST"], name="cancel"),
    Route("/requests/{rid:id}/callback", book_callback, methods=["POST"], name="callback"),
    Route("/requests/{rid:id}/accept", accept, methods=["POST"], name="accept"),
    Route("/sessions/{sid:id}", call_page, name="call"),
    Route("/cases/{case_id:id}", case_fragment, name="case"),
    *assist_rtc.routes,
]
