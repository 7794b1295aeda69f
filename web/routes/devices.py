"""Paired devices (评价器, kiosks, hall displays): the outlet lead's list, pairing and
revoking, the activation link (shown once; valid until the device is revoked), and :func:`request_device` — the one way a device
page finds out which device is asking. Mounted at ``/devices``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from outlet import devices
from outlet.devices import KINDS, Device, DeviceRefused
from outlet.notices import qr_svg
from partners.models import Outlet, Staff
from web import refusals
from web.auth import requires_roles
from web.params import int_param
from web.routes.case_views import actor_of, render
from web.security import is_write

COOKIE = "sp_device"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Where a freshly activated device goes; other helpers add their kinds here.
DEVICE_HOMES: dict[str, str] = {"rating_pad": "/rate/pad", "kiosk": "/queue/kiosk",
                                 "hall_display": "/queue/display"}


def request_token(request: Request) -> str | None:
    """The device token of a request: ``?t=`` in the URL wins over the cookie."""
    return request.query_params.get("t") or request.cookies.get(COOKIE)


async def request_device(request: Request, kind: str | None, token: str | None = None) -> Device:
    """The paired device of ``kind`` (None: any) behind ``request`` (or ``token``), or
    :class:`DeviceRefused` (403) — audited as ``access.refused``
    (:func:`web.refusals.record_device_refusal`)."""
    engine, token = request.app.state.engine, token or request_token(request)
    try:
        return await run_in_threadpool(devices.resolve, engine, token, kind=kind)
    except DeviceRefused:
        await run_in_threadpool(refusals.record_device_refusal, request, token)
        raise


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    actor = actor_of(request)
    engine = request.app.state.engine
    with Session(engine) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        staff = list(s.exec(select(Staff).where(Staff.outlet_id == actor.outlet_id,
                                                col(Staff.active)).order_by(col(Staff.id))).all())
    names = {m.id: m.display_name for m in staff}
    return {"outlet": outlet, "devices": devices.devices_of(engine, actor.outlet_id or 0),
            "staff": staff, "names": names, "kinds": KINDS, "values": {}, "error": None,
            "paired": None, **extra}


@requires_roles("outlet_lead")
async def index(request: Request) -> Response:
    """The outlet's devices and the pairing form (GET); pair a device (POST)."""
    if not is_write(request):
        return render(request, "devices/index.html", await run_in_threadpool(_context, request))
    form = await request.form()
    values = {k: str(form.get(k, "") or "") for k in ("kind", "label", "counter", "staff_id")}
    raw_staff = values["staff_id"]
    try:
        device, token = await run_in_threadpool(
            lambda: devices.pair(request.app.state.engine, actor_of(request), kind=values["kind"],
                                 label=values["label"], counter=values["counter"],
                                 staff_id=int_param(raw_staff)))
    except devices.DeviceInputError as exc:
        ctx = await run_in_threadpool(_context, request, values=values, error=exc.message)
        return render(request, "devices/index.html", ctx, status_code=exc.status_code)
    path = request.url_for("devices:activate", token=token).path
    link = request.app.state.settings.public_link(path)
    ctx = await run_in_threadpool(_context, request, paired={"device": device, "link": link,
                                                              "qr": qr_svg(link, scale=4)})
    return render(request, "devices/index.html", ctx, status_code=201)


@requires_roles("outlet_lead")
async def revoke(request: Request) -> Response:
    raw = request.path_params["device_id"]
    await run_in_threadpool(lambda: devices.revoke(request.app.state.engine, actor_of(request), int(raw),
                                                   hub=getattr(request.app.state, "hub", None)))
    return RedirectResponse("/devices/", status_code=303)


async def activate(request: Request) -> Response:
    """Opened on the device: keep its token in a cookie and go to its page. Not single-use:
    the link is the device's token until it is revoked (README, docs/queue.md)."""
    token = request.path_params["token"]
    device = await request_device(request, None, token)
    target = DEVICE_HOMES.get(device.kind, "/devices/paired")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax",
                        secure=request.app.state.settings.https, path="/")
    return response


async def paired(request: Request) -> Response:
    device = await request_device(request, None)
    return render(request, "devices/paired.html", {"device": device, "kinds": KINDS})


routes = [
    Route("/", index, methods=["GET", "POST"], name="index"),
    Route("/{device_id:id}/revoke", revoke, methods=["POST"], name="revoke"),
    Route("/activate/{token}", activate, name="activate"),
    Route("/paired", paired, name="paired"),
]
