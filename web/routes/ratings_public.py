"""Rating pages without a staff login (mounted at ``/rate``):

* ``/rate/<case number>`` — the QR code on the 受理回执 and the status page: case number +
  check code; mobile first; a plain form, no JavaScript needed. Wrong check codes are
  throttled like the status page's (:mod:`web.throttle`, scope ``rating``: per client, per
  case number, growing delays, never a lock).
* ``/rate/pad`` — the 评价器 at a counter, identified by its device token (cookie set at
  pairing); big touch targets; resets after a rating (30 s) or when idle (120 s).

A new form carries a random ``nonce``: a replayed post is refused, nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from outlet import devices, pii
from outlet.devices import Device, DeviceRefused
from outlet.errors import CaseError, WrongCheckCode
from outlet.events import SubscriptionLost
from outlet.queue import defaults as queue_defaults
from outlet.ratings import padlink, submit
from outlet.ratings import workorders as wo
from outlet.ratings.rules import (
    CHANNELS,
    DIMENSIONS,
    FEEDBACK_VIEWS,
    LEVELS,
    OBJECTS,
    STAGES,
    TEXT_MAX,
    RatingError,
    RatingRefused,
    current_reasons,
    parse_form,
    policy,
)
from partners.models import Staff
from partners.numbers import ascii_digits, typed_code
from web import refusals, throttle
from web.routes.assist_rtc import _refuse, _same_origin  # one origin check for every socket
from web.routes.case_views import render
from web.routes.devices import COOKIE, request_token
from web.routes.queue_live import CLOSE_FORBIDDEN, CLOSE_LAGGING
from web.security import is_write

PAD_RESET_SECONDS = 30
PAD_IDLE_SECONDS = 120


mask_phone = pii.mask_phone  # ``139****1111``: a call-back number as the staff pages show it


def labels() -> dict[str, Any]:
    """Chinese labels every rating page uses."""
    return {"level_labels": LEVELS, "stage_labels": STAGES, "channel_labels": CHANNELS,
            "object_labels": OBJECTS, "order_states": wo.STATE_LABELS,
            "feedback_views": FEEDBACK_VIEWS, "mask_phone": mask_phone}


def form_context(engine: Any) -> dict[str, Any]:
    """What every rating form shows: levels, dimensions, the reason list in force."""
    with Session(engine) as s:
        version, reasons = current_reasons(s)
        window = policy(s).window_days
    return {"levels": LEVELS, "dimensions": DIMENSIONS, "stages": STAGES, "text_max": TEXT_MAX,
            "reasons_version": version, "good_reasons": [r for r in reasons if r["polarity"] == "good"],
            "bad_reasons": [r for r in reasons if r["polarity"] == "bad"], "reasons": reasons,
            "window_days": window, "nonce": secrets.token_urlsafe(16), "values": {},
            "picked": [], "errors": {}, "error": None, "done": None}


def kept_values(form: Any) -> tuple[dict[str, str], list[str]]:
    """The user's input, to re-render a refused form exactly as it was filled in."""
    keys = ("level", "stage", "text", "contact_phone", "check_code", *DIMENSIONS)
    return {k: str(form.get(k) or "") for k in keys}, [str(c) for c in form.getlist("reasons")]


async def rate_case(request: Request) -> Response:
    """The applicant's rating page for one case (QR code on the receipt / status page)."""
    number = request.path_params["number"][:48]
    engine = request.app.state.engine
    ctx = await run_in_threadpool(form_context, engine)
    ctx["number"] = number
    ctx["kiosk"] = request.query_params.get("from") == "kiosk"  # opened from the 自助 kiosk: idle wipe
    if ctx["kiosk"]:  # the center's kiosk idle wipe (outlet.queue.defaults)
        center = await run_in_threadpool(queue_defaults.read, engine)
        ctx["idle"], ctx["countdown"] = center.idle_seconds, center.countdown_seconds
    ctx["offered"] = submit.QR_STAGES  # both, whatever the case's state: the page never tells it
    if not is_write(request):
        return render(request, "ratings/rate_case.html", ctx)
    form = await request.form()
    ctx["values"], ctx["picked"] = kept_values(form)
    ctx["nonce"] = str(form.get("nonce") or ctx["nonce"])
    code = typed_code(ctx["values"]["check_code"])
    status = 200
    try:
        await throttle.check(request, "rating", number)
        if not ascii_digits(code, 6):
            raise RatingError("请输入回执上的6位查询码", field="check_code")
        if ctx["values"]["stage"] not in submit.QR_STAGES:  # 办事前 is rated at the 评价器 only
            raise RatingError("请选择页面上提供的评价阶段（办理中或办结后）", field="stage")
        data = parse_form(form, ctx["reasons"])
        rating = await run_in_threadpool(
            lambda: submit.submit_qr(engine, number, code, ctx["values"]["stage"], data,
                                     reasons_version=ctx["reasons_version"]))
        ctx["done"] = rating
    except throttle.Throttled as exc:
        ctx.update(error=exc.message, errors={"check_code": exc.message})
        status = exc.status_code
    except WrongCheckCode as exc:
        await throttle.record_failure(request, "rating", number)
        ctx.update(error=exc.message, errors={"check_code": exc.message})
        status = exc.status_code
    except (RatingError, RatingRefused, CaseError) as exc:
        ctx.update(error=exc.message, errors=getattr(exc, "errors", {}) or {})
        status = exc.status_code
    return render(request, "ratings/rate_case.html", ctx, status_code=status)


def _pad_context(engine: Any, device: Device, stage: str = "during") -> dict[str, Any]:
    """``stage`` of a rating without a linked case: "during" (办理中, the counter's
    service) or "before" (办事前, the waiting and the place)."""
    ctx = form_context(engine)
    with Session(engine) as s:
        staff = s.get(Staff, device.staff_id) if device.staff_id else None
        linked = padlink.current(s, device)
    ctx.update(device=device, staff=staff, reset_seconds=PAD_RESET_SECONDS,
               idle_seconds=PAD_IDLE_SECONDS, linked=linked,
               pad_stage="before" if stage == "before" and linked is None else "during")
    return ctx


def _pad_request(engine: Any, token: str | None, form: Any | None,
                 pii_key: bytes, stage: str = "during") -> tuple[dict[str, Any], int]:
    """Everything one 评价器 request needs, in one worker-thread hop (resolving the device,
    the page context, and for a post the rating itself): each hop costs a thread switch,
    which on a busy server is most of a rating's time (bench/ratings_bench.py)."""
    device = devices.resolve(engine, token, kind="rating_pad")
    if form is not None:
        stage = str(form.get("stage") or "during")
    ctx = _pad_context(engine, device, stage)
    if form is None:
        return ctx, 200
    ctx["values"], ctx["picked"] = kept_values(form)
    ctx["nonce"] = str(form.get("nonce") or ctx["nonce"])
    link = str(form.get("link") or "")[:64]
    try:
        data = parse_form(form, ctx["reasons"])
        ctx["done"] = submit.submit_device(engine, device, stage, data,
                                           reasons_version=ctx["reasons_version"], link_token=link,
                                           pii_key=pii_key)
    except (RatingError, RatingRefused) as exc:
        ctx.update(error=exc.message, errors=getattr(exc, "errors", {}) or {})
        return ctx, exc.status_code
    return ctx, 200


async def rate_pad(request: Request) -> Response:
    """The 评价器 page of the paired device (403 without a valid device token);
    ``?stage=before`` offers the 办事前 rating (the waiting and the place) instead of the
    办理中 one, unless a case is linked."""
    form = await request.form() if request.method == "POST" else None
    try:
        ctx, status = await run_in_threadpool(_pad_request, request.app.state.engine,
                                              request_token(request), form,
                                              request.app.state.settings.pii_key(),
                                              request.query_params.get("stage", "during"))
    except devices.DeviceRefused:
        await run_in_threadpool(refusals.record_device_refusal, request, request_token(request))
        raise
    return render(request, "ratings/pad.html", ctx, status_code=status)


async def pad_socket(ws: WebSocket) -> None:
    """The 评价器's live feed (device token): one ``linked`` message whenever the teller
    links a case to this pad, so the page reloads with the matter name on it."""
    if not _same_origin(ws):
        return await _refuse(ws, CLOSE_FORBIDDEN, "无权订阅")
    token = ws.query_params.get("t") or ws.cookies.get(COOKIE)
    try:
        device = await run_in_threadpool(devices.resolve, ws.app.state.engine, token,
                                         kind="rating_pad")
    except DeviceRefused:
        return await _refuse(ws, CLOSE_FORBIDDEN, "该终端未配对或已停用")
    assert device.id is not None
    sub = ws.app.state.hub.subscribe(padlink.topic(device.id))
    await ws.accept()

    async def pump() -> None:
        await ws.send_json({"type": "hello"})
        try:
            async for _ev in sub:
                await ws.send_json({"type": "linked"})
        except SubscriptionLost:
            await ws.close(code=CLOSE_LAGGING)

    async def drain() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sub.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


routes = [
    WebSocketRoute("/pad/live", pad_socket, name="pad_live"),
    Route("/pad", rate_pad, methods=["GET", "POST"], name="pad"),
    Route("/{number}", rate_case, methods=["GET", "POST"], name="case"),
]
