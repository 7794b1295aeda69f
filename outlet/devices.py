"""Paired devices at an outlet: the 评价器 (counter rating pad), kiosks and hall displays.

A device is a browser with no staff login. The outlet lead pairs it (an audited
``device.pair``): the server makes a random token, stores only its SHA-256, and shows the
pairing link once. Opening the link on the device stores the token in a cookie; from then
on every request of the device presents the token (cookie, or ``?t=`` in the URL) and
:func:`resolve` turns it into the :class:`Device` — or refuses with 403 when it is unknown,
revoked (``device.revoke``, audited), of another kind, or of another outlet.

Used by ``outlet/ratings`` (the 评价器) and by the queue (kiosks, hall displays).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import NaiveDatetime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from outlet.cases import visible_outlets
from partners.delegation import delegated_action
from partners.errors import ActionRefused
from partners.models import Outlet, Staff, utcnow

if TYPE_CHECKING:
    from outlet.events import Hub

KINDS = {"rating_pad": "评价器", "kiosk": "取号机", "hall_display": "叫号显示屏"}
TOKEN_BYTES = 32
# last_seen is refreshed at most this often, so a polling display does not write every request
SEEN_RESOLUTION = timedelta(minutes=1)


class Device(SQLModel, table=True):
    """A paired device. ``token_sha256`` is the only trace of the token on the server."""

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    kind: str = Field(max_length=16)  # rating_pad / kiosk / hall_display
    label: str = Field(max_length=64)
    counter: str = Field(default="", max_length=32)  # 窗口号, e.g. "3号窗口"
    staff_id: int | None = Field(default=None, foreign_key="staff.id")  # who serves there
    token_sha256: str = Field(unique=True, max_length=64)
    created_by: int = Field(foreign_key="staff.id")
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    revoked_at: NaiveDatetime | None = None
    revoked_by: int | None = Field(default=None, foreign_key="staff.id")
    last_seen: NaiveDatetime | None = None


class DeviceRefused(ActionRefused):
    """The presented token does not name a usable device here (HTTP 403)."""

    code = "device_refused"
    status_code = 403
    message = "该终端未配对或已停用，请联系网点负责人重新配对"


class DeviceNotFound(ActionRefused):
    """No such device in the actor's outlets (HTTP 404): an unknown id and another outlet's
    device get the same answer, so ids cannot be probed; the web layer audits it as
    ``access.refused`` / ``not_found`` (:mod:`web.refusals`)."""

    code = "not_found"
    status_code = 404
    message = "未找到该终端"


class DeviceInputError(ActionRefused):
    """Bad pairing form input (checked before the transaction, so not audited)."""

    code = "invalid_input"
    status_code = 422
    message = "终端信息填写有误"


def token_digest(token: str) -> str:
    """SHA-256 hex of a device token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def pair(
    engine: Engine, actor: Staff, *, kind: str, label: str, counter: str = "",
    staff_id: int | None = None, outlet_id: int | None = None, at: datetime | None = None,
) -> tuple[Device, str]:
    """Pair a new device at ``outlet_id`` (default: the actor's outlet) and return it with
    its token — the only time the token exists in clear. Audited as ``device.pair``.
    Raises :class:`DeviceInputError` (bad kind/label/staff) or a delegation refusal."""
    label, counter = (label or "").strip(), (counter or "").strip()
    oid = outlet_id if outlet_id is not None else actor.outlet_id
    with Session(engine) as s:
        outlet = s.get(Outlet, oid) if oid is not None else None
        served = s.get(Staff, staff_id) if staff_id is not None else None
    if outlet is None:
        raise DeviceInputError("未找到该网点")
    if kind not in KINDS:
        raise DeviceInputError("请选择终端类型")
    if not label or len(label) > 64 or len(counter) > 32:
        raise DeviceInputError("请填写终端名称（64字以内），窗口号32字以内")
    if staff_id is not None and (served is None or served.outlet_id != outlet.id):
        raise DeviceInputError("所选服务人员不属于本网点")
    if kind == "rating_pad" and staff_id is None:
        raise DeviceInputError("评价器须绑定在该窗口服务的人员")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with delegated_action(engine, actor, "device.pair", outlet=outlet, at=at) as act:
        device = Device(outlet_id=outlet.id or 0, kind=kind, label=label, counter=counter,
                        staff_id=staff_id, token_sha256=token_digest(token),
                        created_by=actor.id or 0, created_at=act.at)
        act.session.add(device)
        act.state = (None, "paired")
    return device, token


def revoke(engine: Engine, actor: Staff, device_id: int, *, at: datetime | None = None,
           hub: Hub | None = None) -> Device:
    """Revoke a device (its token stops working at once). Audited as ``device.revoke``; with
    ``hub``, ``device.revoked`` is published in the same transaction so that the device's
    live connections (the hall display's socket) close in every process. A device outside
    the actor's outlets (own + AB角 cover) or an unknown id: :class:`DeviceNotFound` (404)
    alike."""
    with Session(engine) as s:
        device = s.get(Device, device_id)
        outlet = s.get(Outlet, device.outlet_id) if device else None
        if device is None or outlet is None or device.outlet_id not in visible_outlets(s, actor):
            raise DeviceNotFound()
    with delegated_action(engine, actor, "device.revoke", outlet=outlet, at=at) as act:
        row = act.session.get(Device, device_id)
        assert row is not None
        if row.revoked_at is not None:
            raise DeviceRefused("该终端已停用")
        row.revoked_at, row.revoked_by = act.at, actor.id
        act.session.add(row)
        act.state = ("paired", "revoked")
        if hub is not None:
            hub.publish_in(act.session, "device.revoked", {"device": device_id})
    return row


def resolve(engine: Engine, token: str | None, *, kind: str | None, outlet_id: int | None = None,
            at: datetime | None = None) -> Device:
    """The device a request's token names; :class:`DeviceRefused` when there is no token,
    it is unknown or revoked, the device is of another ``kind`` (None: any kind), or (when
    ``outlet_id`` is given) of another outlet. Refreshes ``last_seen`` (at most once a minute)."""
    if not token or len(token) > 128:
        raise DeviceRefused()
    now = at or utcnow()
    digest = token_digest(token)
    with Session(engine, expire_on_commit=False) as s:
        device = s.exec(select(Device).where(Device.token_sha256 == digest)).first()
        if device is None or device.revoked_at is not None or kind not in (None, device.kind):
            raise DeviceRefused()
        if outlet_id is not None and device.outlet_id != outlet_id:
            raise DeviceRefused()
        if device.last_seen is None or now - device.last_seen > SEEN_RESOLUTION:
            device.last_seen = now
            s.add(device)
            s.commit()
    return device


def token_owner(engine: Engine, token: str | None) -> int | None:
    """The id of the device ``token`` names, revoked or of any kind (who a refused device
    request came from), or None for no token or an unknown one."""
    if not token or len(token) > 128:
        return None
    with Session(engine) as s:
        return s.exec(select(Device.id).where(Device.token_sha256 == token_digest(token))).first()


def devices_of(engine: Engine, outlet_id: int) -> list[Device]:
    """The outlet's devices, active first, newest first."""
    with Session(engine, expire_on_commit=False) as s:
        return list(s.exec(
            select(Device).where(Device.outlet_id == outlet_id)
            .order_by(col(Device.revoked_at).is_not(None), col(Device.id).desc())
        ).all())
