"""Partners, agreements (政银+ 协议) and outlets: validated create and update.

Functions work inside the caller's session; the admin UI wraps each call in
``delegated_action(engine, admin, "admin.partner.edit" | "admin.agreement.edit" |
"admin.outlet.edit")`` so every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlmodel import Session, select

from partners.errors import InvalidFields, RecordNotFound
from partners.models import PARTNER_KIND_LABELS, Agreement, Outlet, Partner
from partners.numbers import ascii_int

AGREEMENT_STATUS_LABELS = {"draft": "待生效", "active": "履行中", "terminated": "已终止"}
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")


def _text(data: Mapping[str, Any], key: str) -> str:
    return str(data.get(key) or "").strip()


def _date(data: Mapping[str, Any], key: str, errors: dict[str, str], label: str) -> date | None:
    value = data.get(key)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        errors[key] = f"请填写{label}（格式 2026-01-31）"
        return None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None or str(value).strip() == "":
        return None
    return float(str(value).strip())


def _unique(session: Session, model: Any, column: Any, value: str, own_id: int | None) -> bool:
    found = session.exec(select(model.id).where(column == value)).first()
    return found is None or found == own_id


# --- partners --------------------------------------------------------------------------
def save_partner(
    session: Session, data: Mapping[str, Any], partner: Partner | None = None
) -> Partner:
    """Create (``partner`` None) or update a partner. Raises InvalidFields."""
    errors: dict[str, str] = {}
    code = _text(data, "code").upper()
    name = _text(data, "name")
    kind = _text(data, "kind")
    if not CODE_RE.match(code):
        errors["code"] = "机构编码为 2–32 位大写字母、数字或 -"
    elif not _unique(session, Partner, Partner.code, code, partner.id if partner else None):
        errors["code"] = "机构编码已存在"
    if not name or len(name) > 120:
        errors["name"] = "请填写机构名称（不超过 120 字）"
    if kind not in PARTNER_KIND_LABELS:
        errors["kind"] = "请选择机构类型"
    if errors:
        raise InvalidFields(errors)
    partner = partner or Partner(code=code, name=name, kind=kind)
    partner.code, partner.name, partner.kind = code, name, kind
    partner.contact = _text(data, "contact")[:120]
    partner.active = _bool(data.get("active", True))
    session.add(partner)
    session.flush()
    return partner


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "on", "yes"}
    return bool(value)


# --- agreements ------------------------------------------------------------------------
def save_agreement(
    session: Session, data: Mapping[str, Any], agreement: Agreement | None = None
) -> Agreement:
    """Create or update a 政银+ agreement. Raises InvalidFields."""
    errors: dict[str, str] = {}
    number = _text(data, "number")
    parties = _text(data, "parties")
    status = _text(data, "status") or "active"
    partner_id = _int(data.get("partner_id"))
    if not number or len(number) > 64:
        errors["number"] = "请填写协议编号（不超过 64 字）"
    elif not _unique(
        session, Agreement, Agreement.number, number, agreement.id if agreement else None
    ):
        errors["number"] = "协议编号已存在"
    if partner_id is None or session.get(Partner, partner_id) is None:
        errors["partner_id"] = "请选择合作机构"
    if not parties or len(parties) > 255:
        errors["parties"] = "请填写协议各方（不超过 255 字）"
    signed_on = _date(data, "signed_on", errors, "签订日期")
    valid_from = _date(data, "valid_from", errors, "生效日期")
    valid_to = _date(data, "valid_to", errors, "到期日期")
    if valid_from and valid_to and valid_to < valid_from:
        errors["valid_to"] = "到期日期不能早于生效日期"
    if signed_on and valid_from and signed_on > valid_from:
        errors["signed_on"] = "签订日期不能晚于生效日期"
    if status not in AGREEMENT_STATUS_LABELS:
        errors["status"] = "协议状态无效"
    if errors:
        raise InvalidFields(errors)
    assert partner_id is not None and signed_on and valid_from and valid_to
    values = dict(
        number=number,
        partner_id=partner_id,
        parties=parties,
        signed_on=signed_on,
        valid_from=valid_from,
        valid_to=valid_to,
        status=status,
    )
    if agreement is None:
        agreement = Agreement(**values)  # type: ignore[arg-type]
    else:
        for key, value in values.items():
            setattr(agreement, key, value)
    session.add(agreement)
    session.flush()
    return agreement


def _int(value: Any) -> int | None:
    return ascii_int(value)


# --- outlets ---------------------------------------------------------------------------
OUTLET_PHONE_RE = re.compile(r"^[0-9+\-() ]{7,32}$")


def save_outlet(session: Session, data: Mapping[str, Any], outlet: Outlet | None = None) -> Outlet:
    """Create or update an outlet. Raises InvalidFields."""
    errors: dict[str, str] = {}
    code = _text(data, "code").upper()
    name = _text(data, "name")
    address = _text(data, "address")
    kind = _text(data, "kind")
    partner_id = _int(data.get("partner_id"))
    if not CODE_RE.match(code):
        errors["code"] = "网点编码为 2–32 位大写字母、数字或 -"
    elif not _unique(session, Outlet, Outlet.code, code, outlet.id if outlet else None):
        errors["code"] = "网点编码已存在"
    partner = session.get(Partner, partner_id) if partner_id is not None else None
    if partner is None:
        errors["partner_id"] = "请选择所属合作机构"
    if not name or len(name) > 120:
        errors["name"] = "请填写网点名称（不超过 120 字）"
    if not address or len(address) > 255:
        errors["address"] = "请填写网点地址（不超过 255 字）"
    if kind not in PARTNER_KIND_LABELS:
        errors["kind"] = "请选择网点类型"
    lat = lon = None
    try:
        lat = _float(data, "latitude")
        if lat is not None and not -90 <= lat <= 90:
            errors["latitude"] = "纬度应在 -90 到 90 之间"
    except ValueError:
        errors["latitude"] = "纬度应为数字，如 35.9612"
    try:
        lon = _float(data, "longitude")
        if lon is not None and not -180 <= lon <= 180:
            errors["longitude"] = "经度应在 -180 到 180 之间"
    except ValueError:
        errors["longitude"] = "经度应为数字，如 120.1845"
    phone = _text(data, "phone")
    if phone and not OUTLET_PHONE_RE.match(phone):
        errors["phone"] = "联系电话格式不正确（如 0532-8619 1234）"
    hours = _text(data, "opening_hours")
    if len(hours) > 120:
        errors["opening_hours"] = "营业时间不超过 120 字"
    if errors:
        raise InvalidFields(errors)
    assert partner is not None and partner.id is not None
    outlet = outlet or Outlet(
        code=code, partner_id=partner.id, name=name, address=address, kind=kind
    )
    outlet.code, outlet.partner_id, outlet.name = code, partner.id, name
    outlet.address, outlet.kind, outlet.phone = address, kind, phone
    outlet.latitude, outlet.longitude = lat, lon
    outlet.opening_hours = hours
    outlet.self_service_24h = _bool(data.get("self_service_24h", False))
    outlet.active = _bool(data.get("active", True))
    session.add(outlet)
    session.flush()
    return outlet


def get_or_404(session: Session, model: Any, record_id: int, label: str) -> Any:
    row = session.get(model, record_id)
    if row is None:
        raise RecordNotFound(f"{label}不存在")
    return row
