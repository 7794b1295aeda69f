"""The queue on the floor, without a staff login: the kiosk (取号机, a paired ``kiosk``
device), the hall display (叫号显示屏, a paired ``hall_display`` device) and the ticket's
public pages (live position, 80 mm print layout) reached through the ticket's QR code.

An unknown, revoked or foreign device token answers 403 before anything is issued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import segno
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from outlet import status
from outlet.devices import Device
from outlet.errors import CaseError
from outlet.notices import NOTICE_KINDS, qr_svg
from outlet.queue import board, bookings, counters, defaults, selfprint, tickets
from outlet.queue.errors import IssuingClosed, QueueError, QueueInputError, QueueNotFound
from outlet.queue.hours import hours_label, self_service_open, staffed_at
from partners.models import Outlet, utcnow
from web import throttle
from web.db import reader
from web.params import int_param
from web.routes import queue_live
from web.routes.case_views import render
from web.routes.devices import request_device
from web.security import csp_with_connect, is_write

T = TypeVar("T")


async def kiosk_render(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> Response:
    """Render a kiosk page with the center's idle wipe (``idle`` then ``countdown`` seconds,
    :mod:`outlet.queue.defaults`) on its ``#kiosk-main``."""
    center = await run_in_threadpool(defaults.read, reader(request.app.state))
    ctx.setdefault("idle", center.idle_seconds)
    ctx.setdefault("countdown", center.countdown_seconds)
    return render(request, name, ctx, status_code=status_code)


async def guarded(request: Request, scope: str, target: str, call: Callable[[], T]) -> T:
    """Run ``call`` (which checks a guessable secret: check code, booking code) under
    :mod:`web.throttle`: refused while throttled, a wrong secret counted, a right one clears."""
    await throttle.check(request, scope, target)
    try:
        result = await run_in_threadpool(call)
    except (CaseError, QueueNotFound):
        await throttle.record_failure(request, scope, target)
        raise
    await throttle.record_success(request, scope, target)
    return result


def _kiosk_context(engine: Any, device: Device, **extra: Any) -> dict[str, Any]:
    with Session(engine) as s:
        outlet = s.get(Outlet, device.outlet_id)
        assert outlet is not None
        lines = counters.lines_of(s, device.outlet_id, active_only=True)
        snapshot = board.board(s, device.outlet_id)
    waiting = {w["line"]: w["count"] for w in snapshot["waiting"]}
    ctx: dict[str, Any] = {
        "outlet": outlet, "lines": lines, "waiting": waiting, "staffed": staffed_at(outlet, utcnow()),
        "self_service": self_service_open(outlet, utcnow()),
        "hours": hours_label(outlet), "priorities": {k: tickets.PRIORITY_LABELS[k] for k in tickets.WALK_IN_PRIORITIES},
        "error": None, "values": {}, "ratings": False,
    }
    ctx.update(extra)
    return ctx


async def kiosk(request: Request) -> Response:
    """The kiosk's home screen: 取号 per line (with the 绿色通道 choice); outside staffed hours
    only what needs no staff (24-hour outlets) or a closed notice."""
    device = await request_device(request, "kiosk")
    ctx = await run_in_threadpool(_kiosk_context, reader(request.app.state), device, ratings=has_ratings(request))
    return await kiosk_render(request, "queue/kiosk.html", ctx)


async def kiosk_ticket(request: Request) -> Response:
    """取号 at the kiosk: issue, then show the ticket (printed by the kiosk's printer)."""
    device = await request_device(request, "kiosk")
    form = await request.form()
    raw_line, priority = str(form.get("line_id", "")), str(form.get("priority", "") or "")[:16]
    engine = request.app.state.engine
    try:
        if (line_id := int_param(raw_line)) is None:
            raise QueueInputError("请选择业务类型")
        t = await run_in_threadpool(lambda: tickets.issue(
            engine, outlet_id=device.outlet_id, line_id=line_id, priority=priority,
            hub=request.app.state.hub, device_id=device.id))
    except QueueError as exc:
        ctx = await run_in_threadpool(_kiosk_context, reader(request.app.state), device, error=exc.message,
                                      values={"line_id": raw_line, "priority": priority})
        return await kiosk_render(request, "queue/kiosk.html", ctx, status_code=exc.status_code)
    ctx = await run_in_threadpool(_ticket_context, request, t.public_code)
    return render(request, "queue/kiosk_ticket.html", ctx, status_code=201)


def ticket_qr(url: str) -> str:
    """The ticket's QR code (inline SVG, strict-CSP safe). Data mask fixed: ISO/IEC 18004 lets
    a code use any of its 8 masks, and scoring all 8 to pick one took ~5× the rest of making
    the code — on every ticket issued at the kiosk (bench/queue_bench.py)."""
    return str(segno.make(url, error="m", mask=TICKET_QR_MASK).svg_inline(scale=3, dark="#000"))


TICKET_QR_MASK = 4


def _ticket_context(request: Request, code: str) -> dict[str, Any]:
    with Session(reader(request.app.state)) as s:
        pos = board.position(s, code)
    if pos is None:
        raise QueueError("未找到该号票", code="not_found")
    url = f"{request.app.state.settings.public_url}/queue/t/{code}"  # printed: never from the request
    return {"pos": pos, "code": code, "url": url, "qr": ticket_qr(url),
            "priority_labels": tickets.PRIORITY_LABELS}


async def _ticket_response(request: Request, template: str) -> Response:
    try:
        ctx = await run_in_threadpool(_ticket_context, request, request.path_params["code"])
    except QueueError:
        return render(request, "error.html", {"status": 404, "message": "未找到该号票"}, status_code=404)
    return render(request, template, ctx)


async def ticket_page(request: Request) -> Response:
    """A ticket's public live position (the QR code on the printed ticket)."""
    return await _ticket_response(request, "queue/ticket.html")


async def ticket_print(request: Request) -> Response:
    """The 80 mm thermal-printer layout of a ticket (print CSS)."""
    return await _ticket_response(request, "queue/ticket_print.html")


async def kiosk_checkin(request: Request) -> Response:
    """预约签到 at the kiosk: booking code or phone number → a priority ticket. Refused like
    the other self-service pages outside the hours the kiosk serves (:func:`self_service_device`):
    nothing about a booking is revealed at night on a kiosk without a 24-hour area."""
    device = await self_service_device(request)
    engine = request.app.state.engine
    if not is_write(request):
        return await kiosk_render(request, "queue/kiosk_checkin.html", {"values": {}, "error": None})
    form = await request.form()
    values = {k: str(form.get(k, "") or "")[:16] for k in ("code", "phone")}
    try:
        target = values["code"].strip().upper() or f"{device.outlet_id}:{values['phone'].strip()}"
        _b, t = await guarded(request, "booking", target, lambda: bookings.check_in(
            engine, outlet_id=device.outlet_id, code=values["code"], phone=values["phone"],
            hub=request.app.state.hub, pseudonym_key=request.app.state.pseudonym_key, device_id=device.id))
    except throttle.Throttled as exc:
        return await kiosk_render(request, "queue/kiosk_checkin.html", {"values": values, "error": exc.message}, status_code=429)
    except QueueError as exc:
        return await kiosk_render(request, "queue/kiosk_checkin.html", {"values": values, "error": exc.message},
                      status_code=exc.status_code)
    ctx = await run_in_threadpool(_ticket_context, request, t.public_code)
    return render(request, "queue/kiosk_ticket.html", ctx, status_code=201)


async def kiosk_status(request: Request) -> Response:
    """办件查询 at the kiosk (needs no staff, so also at night): case number + check code →
    the public status (no personal data), printable."""
    await self_service_device(request)
    if not is_write(request):
        return await kiosk_render(request, "queue/kiosk_status.html", {"values": {}, "error": None, "found": None})
    form = await request.form()
    values = {k: str(form.get(k, "") or "")[:48] for k in ("number", "check_code")}
    try:
        found = await guarded(request, "status", values["number"],
                              lambda: status.lookup(request.app.state.engine, values["number"], values["check_code"]))
    except throttle.Throttled as exc:
        return await kiosk_render(request, "queue/kiosk_status.html", {"values": values, "error": exc.message, "found": None},
                      status_code=429)
    except CaseError as exc:
        return await kiosk_render(request, "queue/kiosk_status.html", {"values": values, "error": exc.message, "found": None},
                      status_code=exc.status_code)
    return await kiosk_render(request, "queue/kiosk_status.html", {"values": {}, "error": None, "found": found,
                                                       "ratings": has_ratings(request)})


def _bridge(request: Request) -> tuple[str, dict[str, str]]:
    """The ID-card reader bridge of the kiosk pages (its URL, "" for none) and the CSP
    header that lets the page connect to exactly that origin besides its own."""
    settings = request.app.state.settings
    origin = settings.idcard_bridge_origin
    if not origin:
        return "", {}
    return settings.idcard_bridge.strip(), {"content-security-policy": csp_with_connect(origin)}


async def self_service_device(request: Request) -> Device:
    """The kiosk behind ``request`` for a no-staff function; outside the outlet's hours only
    where it has a 24-hour self-service area, else :class:`IssuingClosed` (409)."""
    device = await request_device(request, "kiosk")

    def load() -> Outlet | None:
        with Session(reader(request.app.state)) as s:
            return s.get(Outlet, device.outlet_id)

    outlet = await run_in_threadpool(load)
    if outlet is None or not self_service_open(outlet, utcnow()):
        raise IssuingClosed(f"当前为非营业时间（营业时间：{hours_label(outlet) if outlet else ''}），本网点夜间不提供自助服务")
    return device


def _headed(response: Response, headers: dict[str, str]) -> Response:
    response.headers.update(headers)
    return response


async def kiosk_print(request: Request) -> Response:
    """自助打印: case number + check code + the ID card of the applicant or agent (read by
    the ID-card reader or typed on the keypad) → the case's 受理回执 / 一次性告知书, each
    printable. Guesses are throttled (scope ``selfprint``); a lookup is audited."""
    device = await self_service_device(request)
    bridge, headers = _bridge(request)
    ctx: dict[str, Any] = {"values": {}, "error": None, "docs": None, "bridge": bridge}
    if not is_write(request):
        return _headed(await kiosk_render(request, "queue/kiosk_print.html", ctx), headers)
    form = await request.form()
    values = {k: str(form.get(k, "") or "")[:48] for k in ("number", "check_code", "id_number")}
    settings = request.app.state.settings
    try:
        docs = await guarded(request, "selfprint", values["number"].strip(), lambda: selfprint.documents(
            request.app.state.engine, device_id=device.id or 0, outlet_id=device.outlet_id,
            number=values["number"], check_code=values["check_code"], id_number=values["id_number"]))
    except throttle.Throttled as exc:
        return _headed(await kiosk_render(request, "queue/kiosk_print.html", {**ctx, "values": {"number": values["number"]},
                      "error": exc.message}, status_code=429), headers)
    except QueueError as exc:
        return _headed(await kiosk_render(request, "queue/kiosk_print.html", {**ctx, "values": {"number": values["number"]},
                      "error": exc.message}, status_code=exc.status_code), headers)
    status_url = settings.public_link(f"/status/{quote(docs.case.number)}")
    rate_url = settings.public_link(f"/rate/{quote(docs.case.number)}")
    ctx.update(selfprint.context(docs), docs=docs, titles={k: v[0] for k, v in NOTICE_KINDS.items()},
               status_url=status_url, qr=qr_svg(status_url), rate_url=rate_url, rate_qr=qr_svg(rate_url),
               ratings=has_ratings(request))
    return _headed(await kiosk_render(request, "queue/kiosk_print.html", ctx), headers)


def has_ratings(request: Request) -> bool:
    """Whether the 好差评 pages (``/rate``) are part of this app (issue 10 §4: the kiosk
    links to them when the ratings capability is present)."""
    return any(getattr(r, "name", None) == "rate" for r in request.app.routes)


async def kiosk_rate(request: Request) -> Response:
    """评价 at the kiosk: the case number, then the 好差评 page of that case (which asks for
    the check code), kept under the kiosk's idle wipe."""
    await self_service_device(request)
    if not has_ratings(request):
        return render(request, "error.html", {"status": 404, "message": "本终端未开通评价"}, status_code=404)
    number = (request.query_params.get("number") or "").strip()[:48]
    if number:
        return RedirectResponse(f"/rate/{quote(number)}?from=kiosk", status_code=303)
    return await kiosk_render(request, "queue/kiosk_rate.html", {})


async def display(request: Request) -> Response:
    """The hall display (1920×1080): filled and kept current by its WebSocket."""
    device = await request_device(request, "hall_display")

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            return {"outlet": s.get(Outlet, device.outlet_id), "board": board.board(s, device.outlet_id)}

    return render(request, "queue/display.html", await run_in_threadpool(load))


routes: list[BaseRoute] = [
    Route("/kiosk", kiosk, name="kiosk"),
    Route("/kiosk/ticket", kiosk_ticket, methods=["POST"], name="kiosk_ticket"),
    Route("/kiosk/checkin", kiosk_checkin, methods=["GET", "POST"], name="kiosk_checkin"),
    Route("/kiosk/status", kiosk_status, methods=["GET", "POST"], name="kiosk_status"),
    Route("/kiosk/print", kiosk_print, methods=["GET", "POST"], name="kiosk_print"),
    Route("/kiosk/rate", kiosk_rate, name="kiosk_rate"),
    Route("/display", display, name="display"),
    WebSocketRoute("/display/live", queue_live.display_socket, name="display_live"),
    Route("/t/{code}", ticket_page, name="ticket"),
    Route("/t/{code}/print", ticket_print, name="ticket_print"),
    WebSocketRoute("/t/{code}/live", queue_live.ticket_socket, name="ticket_live"),
]

