"""The matter catalog (事项实施清单): validation of the national field set, versioning,
and the matters delegated to an outlet.

A matter's identity is its codes; everything else lives in numbered versions. Editing adds
version ``current_version + 1`` and moves the pointer; old versions are never modified, so a
case keeps the exact checklist, limits and materials it was taken in under.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from partners.authorize import as_utc_naive, local_day
from partners.errors import InvalidFields, PartnersError, RecordNotFound
from partners.models import (
    Agreement,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
    Partner,
    Scope,
)
from partners.numbers import ascii_int

MATTER_TYPES = {
    "01": "行政许可",
    "02": "行政处罚",
    "03": "行政强制",
    "04": "行政征收",
    "05": "行政给付",
    "06": "行政检查",
    "07": "行政确认",
    "08": "行政奖励",
    "09": "行政裁决",
    "10": "其他行政权力",
    "11": "行政备案",
    "20": "公共服务",
}
DOMAINS = (
    "社保",
    "医保",
    "公积金",
    "商事登记",
    "不动产",
    "民政",
    "税务",
    "市场监管",
    "户政",
    "交通",
)
CASE_KINDS = ("即办件", "承诺件")
MATERIAL_FORMS = ("纸质", "电子", "纸质+电子")
NECESSITIES = ("必要", "非必要", "容缺后补")
SERVICE_OBJECTS = (
    "自然人",
    "企业法人",
    "事业法人",
    "社会组织法人",
    "非法人企业",
    "行政机关",
    "其他组织",
)
SCOPES = tuple(s.value for s in Scope)

CODE_RE = re.compile(r"^[0-9A-Z]+$")
BASIC_CODE_LENGTH = 12
# 实施编码: 实施主体统一社会信用代码 (18) + 基本编码 (12) + 业务办理项 (1, or 3 with a suffix)
IMPLEMENTATION_CODE_LENGTHS = (31, 33)

VERSION_FIELDS = (
    "name",
    "matter_type",
    "domain",
    "case_kind",
    "statutory_days",
    "committed_days",
    "fee",
    "fee_basis",
    "service_object",
    "acceptance_conditions",
    "materials",
    "inspection_required",
    "inspection_checklist",
    "recording_required",
    "service_modes",
)


def _int(value: Any) -> int | None:
    """A whole number from a form or an imported JSON value (:func:`ascii_int`)."""
    return None if isinstance(value, bool) else ascii_int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "on", "yes", "是"}
    return bool(value)


def validate_codes(session: Session, basic_code: str, implementation_code: str) -> tuple[str, str]:
    """Normalize and check the two codes; raise InvalidFields."""
    basic = basic_code.strip().upper()
    impl = implementation_code.strip().upper()
    errors: dict[str, str] = {}
    if len(basic) != BASIC_CODE_LENGTH or not CODE_RE.match(basic):
        errors["basic_code"] = f"基本编码应为 {BASIC_CODE_LENGTH} 位数字或大写字母"
    if len(impl) not in IMPLEMENTATION_CODE_LENGTHS or not CODE_RE.match(impl):
        errors["implementation_code"] = "实施编码应为 31 位（或带办理项后缀 33 位）数字或大写字母"
    elif session.exec(select(Matter.id).where(Matter.implementation_code == impl)).first():
        errors["implementation_code"] = "该实施编码已存在"
    if errors:
        raise InvalidFields(errors)
    return basic, impl


def validate_version(
    data: Mapping[str, Any], *, used_keys: set[str] | None = None
) -> dict[str, Any]:
    """Check and normalize the versioned fields; raise InvalidFields listing every problem.

    Materials without a ``key`` get a new one never used before in this matter
    (``used_keys``), so a key always means the same material across versions.
    """
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    name = str(data.get("name") or "").strip()
    if not name:
        errors["name"] = "请填写事项名称"
    elif len(name) > 200:
        errors["name"] = "事项名称不能超过 200 个字"
    out["name"] = name

    matter_type = str(data.get("matter_type") or "").strip()
    if matter_type not in MATTER_TYPES:
        errors["matter_type"] = "事项类型应为 01–11 或 20（公共服务）"
    out["matter_type"] = matter_type

    domain = str(data.get("domain") or "").strip()
    if domain not in DOMAINS:
        errors["domain"] = "请选择业务领域"
    out["domain"] = domain

    case_kind = str(data.get("case_kind") or "").strip()
    if case_kind not in CASE_KINDS:
        errors["case_kind"] = "办件类型应为即办件或承诺件"
    out["case_kind"] = case_kind

    statutory = _int(data.get("statutory_days"))
    committed = _int(data.get("committed_days"))
    if statutory is None or statutory < 0:
        errors["statutory_days"] = "法定办结时限应为不小于 0 的整数（工作日）"
    if committed is None or committed < 0:
        errors["committed_days"] = "承诺办结时限应为不小于 0 的整数（工作日）"
    elif statutory is not None and statutory >= 0 and committed > statutory:
        errors["committed_days"] = "承诺办结时限不能长于法定办结时限"
    elif case_kind == "即办件" and committed != 0:
        errors["committed_days"] = "即办件当场办结，承诺办结时限应为 0"
    elif case_kind == "承诺件" and committed == 0:
        errors["committed_days"] = "承诺件的承诺办结时限至少为 1 个工作日"
    out["statutory_days"] = statutory
    out["committed_days"] = committed

    out["fee"] = str(data.get("fee") or "不收费").strip()[:120]
    out["fee_basis"] = str(data.get("fee_basis") or "").strip()[:255]
    if out["fee"] != "不收费" and not out["fee_basis"]:
        errors["fee_basis"] = "收费事项须注明收费依据"

    service_object = str(data.get("service_object") or "").strip()
    parts = [p for p in re.split(r"[、,，]", service_object) if p.strip()]
    if not parts or any(p.strip() not in SERVICE_OBJECTS for p in parts):
        errors["service_object"] = "服务对象应为：" + "、".join(SERVICE_OBJECTS) + " 之一或多项"
    out["service_object"] = "、".join(p.strip() for p in parts)
    out["acceptance_conditions"] = str(data.get("acceptance_conditions") or "").strip()

    materials, material_error = _validate_materials(data.get("materials") or [], used_keys or set())
    if material_error:
        errors["materials"] = material_error
    out["materials"] = materials

    inspection = _bool(data.get("inspection_required"))
    checklist = [str(x).strip() for x in (data.get("inspection_checklist") or []) if str(x).strip()]
    if inspection and not checklist:
        errors["inspection_checklist"] = "需要现场勘验的事项须列明勘验要点"
    out["inspection_required"] = inspection
    out["inspection_checklist"] = checklist if inspection else []
    out["recording_required"] = _bool(data.get("recording_required"))

    modes = [str(m).strip() for m in (data.get("service_modes") or []) if str(m).strip()]
    if not modes:
        errors["service_modes"] = "请至少选择一种合作网点可办方式"
    elif not set(modes) <= set(SCOPES):
        errors["service_modes"] = "办理方式应为：" + "、".join(SCOPES)
    elif "即办" in modes and case_kind == "承诺件":
        errors["service_modes"] = "承诺件不能以「即办」方式办理"
    out["service_modes"] = [s for s in SCOPES if s in modes]  # canonical order, no duplicates

    if errors:
        raise InvalidFields(errors)
    return out


def _validate_materials(raw: Any, used_keys: set[str]) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(raw, list) or not raw:
        return [], "请至少列出一项申请材料"
    taken = set(used_keys)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            return [], f"第 {n} 项材料格式有误"
        name = str(item.get("name") or "").strip()
        form = str(item.get("form") or "").strip()
        necessity = str(item.get("necessity") or "").strip()
        copies = _int(item.get("copies"))
        if not name:
            return [], f"第 {n} 项材料：请填写名称"
        if form not in MATERIAL_FORMS:
            return [], f"第 {n} 项材料「{name}」：形式应为纸质、电子或纸质+电子"
        if copies is None or not 0 <= copies <= 20:
            return [], f"第 {n} 项材料「{name}」：份数应为 0–20 的整数（电子材料可为 0）"
        if copies == 0 and form != "电子":
            return [], f"第 {n} 项材料「{name}」：纸质材料至少 1 份"
        if necessity not in NECESSITIES:
            return [], f"第 {n} 项材料「{name}」：必要性应为必要、非必要或容缺后补"
        key = str(item.get("key") or "").strip()
        if key and (key in seen or len(key) > 16):
            return [], f"第 {n} 项材料「{name}」：编号重复或过长"
        if not key:
            i = 1
            while f"m{i}" in taken or f"m{i}" in seen:
                i += 1
            key = f"m{i}"
        seen.add(key)
        out.append(
            {
                "key": key,
                "name": name,
                "form": form,
                "copies": copies,
                "necessity": necessity,
                "note": str(item.get("note") or "").strip(),
            }
        )
        if _bool(item.get("promise")):  # 告知承诺制: a signed promise may replace it
            out[-1]["promise"] = True
    if all(m["necessity"] != "必要" for m in out):
        return [], "至少应有一项必要材料"
    return out, None


def create_matter(
    session: Session, data: Mapping[str, Any], *, created_by: int | None = None
) -> Matter:
    """Add a matter with version 1. ``data`` holds the codes and the versioned fields."""
    code_errors: dict[str, str] = {}
    try:
        basic, impl = validate_codes(
            session, str(data.get("basic_code") or ""), str(data.get("implementation_code") or "")
        )
    except InvalidFields as exc:
        code_errors = exc.errors
        basic = impl = ""
    try:
        fields = validate_version(data)
    except InvalidFields as exc:
        raise InvalidFields({**code_errors, **exc.errors}) from None
    if code_errors:
        raise InvalidFields(code_errors)
    matter = Matter(basic_code=basic, implementation_code=impl, current_version=1)
    session.add(matter)
    session.flush()
    assert matter.id is not None
    session.add(MatterVersion(matter_id=matter.id, version=1, created_by=created_by, **fields))
    session.flush()
    return matter


def edit_matter(
    session: Session,
    matter: Matter,
    data: Mapping[str, Any],
    *,
    created_by: int | None = None,
    expected_version: int | None = None,
) -> MatterVersion:
    """Store the edit as a new version and make it current. Earlier versions stay as they
    were. ``expected_version`` (from the edit form) refuses a lost update."""
    if expected_version is not None and expected_version != matter.current_version:
        raise PartnersError(
            f"该事项已被修改为第 {matter.current_version} 版，请刷新后在最新版本上修改", field=None
        )
    versions = list_versions(session, matter)
    used = {m["key"] for v in versions for m in v.materials}
    fields = validate_version(data, used_keys=used)
    latest = versions[-1]
    if all(getattr(latest, f) == fields[f] for f in VERSION_FIELDS):
        raise PartnersError("内容未作修改，未生成新版本")
    assert matter.id is not None
    new = MatterVersion(
        matter_id=matter.id, version=latest.version + 1, created_by=created_by, **fields
    )
    session.add(new)
    matter.current_version = new.version
    session.add(matter)
    session.flush()
    return new


def current_version(session: Session, matter: Matter) -> MatterVersion:
    """The version new cases use."""
    return get_version(session, matter, matter.current_version)


def get_version(session: Session, matter: Matter, version: int) -> MatterVersion:
    row = session.exec(
        select(MatterVersion)
        .where(MatterVersion.matter_id == matter.id)
        .where(MatterVersion.version == version)
    ).first()
    if row is None:
        raise RecordNotFound(f"事项 {matter.implementation_code} 没有第 {version} 版")
    return row


def list_versions(session: Session, matter: Matter) -> list[MatterVersion]:
    """All versions of ``matter``, oldest first."""
    return list(
        session.exec(
            select(MatterVersion)
            .where(MatterVersion.matter_id == matter.id)
            .order_by(MatterVersion.version)  # type: ignore[arg-type]
        ).all()
    )


def version_as_form(version: MatterVersion) -> dict[str, Any]:
    """The versioned fields as a plain dict (e.g. to prefill an edit form)."""
    return {f: getattr(version, f) for f in VERSION_FIELDS}


@dataclass(frozen=True)
class DelegatedMatter:
    """A matter an outlet may handle now: its current version and the scopes in force."""

    matter: Matter
    version: MatterVersion
    scopes: frozenset[str]
    grant_ids: tuple[int, ...]


def matches_query(q: str) -> ColumnElement[bool]:
    """Matter (joined with its current version) whose name contains ``q``, whose codes
    contain it (upper case) or whose domain is ``q``."""
    return or_(
        col(MatterVersion.name).contains(q, autoescape=True),
        col(Matter.implementation_code).contains(q.upper(), autoescape=True),
        col(Matter.basic_code).contains(q.upper(), autoescape=True),
        col(MatterVersion.domain) == q,
    )


def delegated_matters(
    session: Session, outlet: Outlet, at: datetime, query: str = "", *, scope: str | None = None
) -> list[DelegatedMatter]:
    """Active matters with a grant in force for ``outlet`` at ``at``, by domain and name.

    ``query`` filters by name or code (substring); ``scope`` keeps only matters for which
    that scope is granted and allowed by the catalog entry. Scopes reported are those
    granted *and* allowed by the matter's current version.
    """
    now = as_utc_naive(at)
    day = local_day(at)
    stmt = (
        select(Matter, MatterVersion, Grant)
        .join(GrantMatter, GrantMatter.matter_id == Matter.id)  # type: ignore[arg-type]
        .join(Grant, Grant.id == GrantMatter.grant_id)  # type: ignore[arg-type]
        .join(GrantOutlet, GrantOutlet.grant_id == Grant.id)  # type: ignore[arg-type]
        .join(Agreement, Agreement.id == Grant.agreement_id)  # type: ignore[arg-type]
        .join(
            MatterVersion,
            (MatterVersion.matter_id == Matter.id)  # type: ignore[arg-type]
            & (MatterVersion.version == Matter.current_version),
        )
        .where(GrantOutlet.outlet_id == outlet.id)
        .where(Agreement.partner_id == outlet.partner_id)
        .where(Agreement.status == "active")
        .where(Agreement.valid_from <= day, Agreement.valid_to >= day)
        .where(Grant.valid_from <= day, Grant.valid_to >= day)
        .where(or_(col(Grant.revoked_at).is_(None), col(Grant.revoked_at) > now))
        .where(Matter.active)
    )
    q = query.strip()
    if q:
        stmt = stmt.where(matches_query(q))
    partner = session.get(Partner, outlet.partner_id)
    if not outlet.active or partner is None or not partner.active:
        return []
    found: dict[int, tuple[Matter, MatterVersion, set[str], list[int]]] = {}
    for matter, version, grant in session.exec(stmt).all():
        assert matter.id is not None and grant.id is not None
        entry = found.setdefault(matter.id, (matter, version, set(), []))
        entry[2].update(set(grant.scopes) & set(version.service_modes or SCOPES))
        entry[3].append(grant.id)
    result = [
        DelegatedMatter(m, v, frozenset(s), tuple(sorted(set(g))))
        for m, v, s, g in found.values()
        if s and (scope is None or scope in s)
    ]
    return sorted(result, key=lambda d: (d.version.domain, d.version.name))


def matter_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Matter)).one())
