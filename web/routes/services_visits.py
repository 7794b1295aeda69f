"""上门办: the visit request queue (counter) and the block agent's phone pages, plus the
endpoint the phone's outbox posts to. Mounted under ``/services/visits``.

The phone pages are plain HTML + ``/static/js/visit.js`` (strict CSP). Only the visit page
allows geolocation (its own Permissions-Policy); camera capture goes through a file input.
``POST /services/visits/{number}/submit`` answers JSON and is idempotent by ``client_id``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from outlet import pii
from outlet.cases import visible_outlets
from outlet.clock import local_day
from outlet.errors import CaseError, ServiceNotFound
from outlet.services import visits
from outlet.services.evidence import CHINA_BOUNDS, MAX_ACCURACY_M, NO_GPS_REASONS
from outlet.services.records import OUTCOMES
from outlet.services.visits import (
    VISIT_CHANNELS,
    VISIT_KINDS,
    VISIT_REASONS,
    VISIT_STATES,
    NewVisit,
)
from partners.errors import ActionRefused
from partners.models import Outlet, Staff, utcnow
from web.auth import current_user, requires_roles
from web.inputs import keeps_form
from web.params import form_id
from web.refusals import record_refusal
from web.routes.case_views import actor_of, fail, render
from web.security import SECURITY_HEADERS

OUTLET = ("teller", "block_agent", "outlet_lead")
VISIT_FIELDS = ("kind", "contact_name", "contact_phone", "address", "reason", "reason_note",
                "preferred", "matter_id", "channel", "assignee_id", "outlet_id")
# The visit page, and only it, may ask for the phone's position.
GEO_POLICY = SECURITY_HEADERS["permissions-policy"].replace("geolocation=()", "geolocation=(self)")


def _queue_context(request: Request) -> dict[str, Any]:
    actor = actor_of(request)
    now = utcnow()
    center = actor.outlet_id is None
    with Session(request.app.state.engine) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        queue = visits.visit_queue(s, actor, include_done_on=local_day(now))
        names = {st.id: st.display_name for st in s.exec(select(Staff))}
        points = visits.visit_points(s, now)
        agents_of: dict[int, list[Staff]] = {}
        for agent, point in visits.street_agents(s):
            agents_of.setdefault(point.id or 0, []).append(agent)
        leads = visible_outlets(s, actor) if "outlet_lead" in actor.role_set else set()
        matters = {dm.matter.id: dm for p in points for dm in p.matters}
        return {
            "outlet": outlet, "queue": queue, "names": names, "today": local_day(now),
            "points": points, "outlet_names": {o.id: o.name for o in s.exec(select(Outlet))},
            # staff of a street point (and the center) may name the agent at once
            "agents": [(a, None) for a in agents_of.get(actor.outlet_id, [])] if actor.outlet_id
            else visits.street_agents(s),
            "agents_of": agents_of, "center": center,
            # 派单 / 改派: the serving point's lead or the center, until the agent arrives
            "assignable": {v.number for v in queue if v.state in ("unassigned", "assigned")
                           and (center and "admin" in actor.role_set or v.outlet_id in leads)},
            "matters": sorted(matters.values(), key=lambda d: (d.version.domain, d.version.name)),
            "visit_kinds": VISIT_KINDS, "visit_reasons": VISIT_REASONS, "visit_channels": VISIT_CHANNELS,
            "visit_states": VISIT_STATES, "values": {}, "errors": {}, "error": None,
            "assign_error": None,
        }


@requires_roles(*OUTLET, "admin")
async def queue(request: Request) -> Response:
    ctx = await run_in_threadpool(_queue_context, request)
    ctx["flash"] = request.session.pop("flash", None)
    return render(request, "services/visits.html", ctx)


@keeps_form
@requires_roles(*OUTLET, "admin")
async def create(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "") or "").strip() for k in VISIT_FIELDS}
    try:
        actor = actor_of(request)  # first: it refuses a form that carried a control character
        data = NewVisit(
            kind=values["kind"], contact_name=values["contact_name"], address=values["address"],
            reason=values["reason"], contact_phone=values["contact_phone"],
            reason_note=values["reason_note"], preferred=values["preferred"],
            matter_id=form_id(values, "matter_id", "所选事项不存在"),
            channel=values["channel"] or "窗口",
            assignee_id=form_id(values, "assignee_id", "只能指派该服务站在岗的网格帮办代办员"),
            outlet_id=form_id(values, "outlet_id", "请选择服务站"),
        )
        visit = await run_in_threadpool(lambda: visits.request_visit(
            request.app.state.engine, actor, data,
            pii_key=request.app.state.settings.pii_key()))
    except (ActionRefused, CaseError) as exc:
        ctx = await run_in_threadpool(_queue_context, request)
        ctx.update(values=values, error=exc.message, errors=getattr(exc, "errors", {}) or {})
        return render(request, "services/visits.html", ctx, status_code=exc.status_code)
    then = "请在" if visit.assignee_id else "待服务站负责人派单，应在"
    request.session["flash"] = f"已登记上门服务 {visit.number}，{then} {visit.due_on.isoformat()} 前上门"
    return RedirectResponse("/services/visits/", status_code=303)


@keeps_form
@requires_roles(*OUTLET, "admin")  # authorize decides (and records) who may dispatch
async def assign(request: Request) -> Response:
    """派单 / 改派 (``visits.assign``): back to the queue, or the queue with the reason
    beside that visit and the chosen agent kept."""
    number = request.path_params["number"]
    form = await request.form()
    raw = str(form.get("assignee_id", "") or "").strip()

    def run() -> str:
        visit = visits.assign(request.app.state.engine, actor_of(request), number,
                              form_id({"assignee_id": raw}, "assignee_id", "请选择该服务站在岗的网格帮办代办员"))
        with Session(request.app.state.engine) as s:
            agent = s.get(Staff, visit.assignee_id)
            return agent.display_name if agent else ""

    try:
        agent_name = await run_in_threadpool(run)
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    except (ActionRefused, CaseError) as exc:
        ctx = await run_in_threadpool(_queue_context, request)
        ctx.update(assign_error={"number": number, "message": exc.message, "assignee_id": raw})
        return render(request, "services/visits.html", ctx, status_code=exc.status_code)
    request.session["flash"] = f"上门服务 {number} 已派给{agent_name}，网格员在手机「今日上门」中可见"
    return RedirectResponse("/services/visits/", status_code=303)


@requires_roles(*OUTLET)
async def today(request: Request) -> Response:
    """The block agent's phone: visits assigned to me, due first, and today's finished ones."""
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            return {"visits": visits.visit_queue(s, actor, assignee_only=True,
                                                 include_done_on=local_day(utcnow())),
                    "today": local_day(utcnow()), "visit_states": VISIT_STATES}

    return render(request, "services/phone_today.html", await run_in_threadpool(load))


@requires_roles(*OUTLET, "admin")
async def visit_page(request: Request) -> Response:
    number = request.path_params["number"]
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            v = visits.load_visit(s, actor, number)
            phone = visits.contact_phone(v, request.app.state.settings.pii_key())
            mine = v.assignee_id == actor.id
            agent = s.get(Staff, v.assignee_id) if v.assignee_id else None
            point = s.get(Outlet, v.outlet_id)
            return {"visit": v, "agent": agent, "point": point, "contact_phone": phone if mine else pii.mask_phone(phone), "visit_states": VISIT_STATES, "outcomes": OUTCOMES,
                    "no_gps_reasons": NO_GPS_REASONS, "mine": v.assignee_id == actor.id,
                    # the phone's outbox and 今日上门 are the block agent's, not the counter's
                    "agent_view": "block_agent" in actor.role_set,
                    "today": local_day(utcnow()), "max_photos": visits.MAX_PHOTOS,
                    "max_accuracy": MAX_ACCURACY_M, "bounds": CHINA_BOUNDS,
                    "max_note": visits.MAX_NOTE}

    try:
        ctx = await run_in_threadpool(load)
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    response = render(request, "services/phone_visit.html", ctx)
    response.headers["permissions-policy"] = GEO_POLICY
    return response


async def submit(request: Request) -> Response:
    """The outbox's endpoint answers JSON only, so the phone can tell apart "log in again"
    (401: the items stay on the phone) from a definite answer about the item."""
    if current_user(request) is None:
        return JSONResponse({"ok": False, "login": True,
                             "error": "登录已过期，请重新登录后同步（数据仍保存在手机上）"}, status_code=401)
    return await _submit(request)


@requires_roles(*OUTLET)
async def _submit(request: Request) -> Response:
    """One outbox submission (multipart): ``client_id``, ``kind`` (arrive / complete),
    ``phone_time``, positions or no-GPS reasons, outcome, ``photos`` files, ``signature``."""
    number = request.path_params["number"]
    settings = request.app.state.settings
    try:
        form = await request.form(max_files=visits.MAX_PHOTOS + 2, max_fields=30)
    except (MultiPartException, HTTPException):  # too many files or fields (Starlette: 400)
        return JSONResponse({"ok": False, "field": "photos",
                             "error": f"提交的文件过多：每次上门最多 {visits.MAX_PHOTOS} 张照片和 1 个签名",
                             "errors": {"photos": f"最多上传 {visits.MAX_PHOTOS} 张照片"}},
                            status_code=413)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    photos: list[bytes] = []
    for item in form.getlist("photos"):
        if isinstance(item, UploadFile) and item.filename is not None:
            photos.append(await item.read(settings.max_upload_bytes + 1))
    sig = form.get("signature")
    signature = await sig.read(settings.max_upload_bytes + 1) if isinstance(sig, UploadFile) else b""
    try:
        answer = await run_in_threadpool(
            visits.submit, request.app.state.engine, actor_of(request), number,
            fields.get("kind", ""), fields.get("client_id", ""), fields, photos=photos,
            signature=signature, store=settings.file_store(),
            max_bytes=settings.max_upload_bytes,
        )
    except (ActionRefused, CaseError) as exc:
        if isinstance(exc, ServiceNotFound):  # audited like every 404 page (web/refusals.py)
            await run_in_threadpool(record_refusal, request, exc.status_code)
        # code: e.g. "not_assigned" — the phone offers no 修改后重发 for what no edit fixes
        return JSONResponse({"ok": False, "error": exc.message, "field": getattr(exc, "field", None),
                             "code": getattr(exc, "code", None),
                             "errors": getattr(exc, "errors", {}) or {}},
                            status_code=exc.status_code)
    return JSONResponse(answer.body, status_code=answer.status_code)


submit.required_roles = _submit.required_roles  # type: ignore[attr-defined]


SW_FILE = Path(__file__).resolve().parent.parent / "static" / "js" / "visit-sw.js"


async def service_worker(request: Request) -> Response:
    """The phone pages' service worker (offline visit pages). Served here, not under
    /static, because a worker controls only pages below its own path; revalidated on every
    load so a new version takes over at once. Static code, no personal data: no login."""
    body = await run_in_threadpool(SW_FILE.read_bytes)
    return Response(body, media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/services/visits/"})


routes = [
    Route("/visits/sw.js", service_worker, name="visit_sw"),
    Route("/visits/", queue, name="visits"),
    Route("/visits/new", create, methods=["POST"], name="visit_create"),
    Route("/visits/today", today, name="visits_today"),
    Route("/visits/{number}", visit_page, name="visit"),
    Route("/visits/{number}/submit", submit, methods=["POST"], name="visit_submit"),
    Route("/visits/{number}/assign", assign, methods=["POST"], name="visit_assign"),
]
