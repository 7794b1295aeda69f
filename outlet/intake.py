"""At the counter, before a decision: new case, materials checklist, uploads, 一次性告知书.

Every function takes ``(engine, actor, ...)``, runs inside ``delegated_action`` (authorize,
change, audit in one transaction) and returns the changed row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import audit
from audit.db import reader_of
from outlet import states
from outlet.cases import Frame, case_action, materials_of, new_check_code, next_case_number
from outlet.clock import local_day
from outlet.errors import GuardFailed, IllegalTransition, InvalidIdNumber, InvalidInput
from outlet.files import FileStore
from outlet.ids import IdKind, id_kind, validate_id, validate_person_id
from outlet.models import Applicant, Case, CaseEvent, CaseFile, CaseMaterial, Notice
from outlet.notices import issue, one_time_items
from partners.authorize import authorize
from partners.delegation import authorize_or_record, delegated_action
from partners.errors import RoleLacksAction
from partners.models import Matter, MatterVersion, Outlet, Staff, utcnow
from partners.numbers import typed_code

SERVICE_MODES = ("收件受理", "代办")
POA_KEY = "poa"
POA_NAME = "授权委托书"
MARKABLE = ("received", "missing", "defective")
MATERIAL_STATUS_LABELS = {
    "pending": "待核验", "received": "已收取", "missing": "缺失", "defective": "有缺陷",
    "deferred": "容缺后补",
}
PHONE_RE = re.compile(r"^[0-9+\-() ]{7,20}$")
NAME_FIELDS = ("applicant_name", "legal_representative", "agent_name")
# Longest value each name field may hold: the column it is stored in (characters).
NAME_LIMITS = {
    "applicant_name": Applicant.__table__.c.name.type.length,  # type: ignore[attr-defined]
    "legal_representative": Applicant.__table__.c.legal_representative.type.length,  # type: ignore[attr-defined]
    "agent_name": Case.__table__.c.agent_name.type.length,  # type: ignore[attr-defined]
}
# Invisible or unassigned characters make one name look like another (张三 vs 张\u200b三):
# controls, format characters (zero-width, bidi overrides), surrogates, private use, unassigned.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def clean_name(value: str) -> str:
    """A person's or organisation's name as stored: NFC (one code point sequence per
    character, as typed by any input method), runs of spaces collapsed to one. Raises
    ``ValueError`` with a Chinese message for invisible or unassigned characters."""
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if any(unicodedata.category(c) in _INVISIBLE for c in text):
        raise ValueError("名称中含有不可见或无法显示的字符，请重新输入")
    return text


# Besides letters and combining marks, a person's name holds only the separators of
# transliterated and minority names (阿依古丽·买买提, Anne-Marie O'Neil) and spaces.
_NAME_SEPARATORS = frozenset(" ·・.-'’")


# A label staff give a thing (业务类型, 窗口): also digits and the brackets and separators of
# names like "社保医保（退休）" or "3号窗口/综合".
_LABEL_SEPARATORS = _NAME_SEPARATORS | frozenset("（）()、/／_—–")


def _only(value: str, categories: tuple[str, ...], allowed: frozenset[str], message: str) -> str:
    text = clean_name(value)
    if any(not unicodedata.category(c).startswith(categories) and c not in allowed for c in text):
        raise ValueError(message)
    return text


def clean_person_name(value: str) -> str:
    """A natural person's name (:func:`clean_name`, then letters, marks and the separators
    ``· . - '`` only): refuses emoji, digits, ``<script>`` and other markup or symbols
    with ``ValueError`` and a Chinese message."""
    return _only(value, ("L", "M"), _NAME_SEPARATORS,
                 "姓名只能包含文字和间隔号（·），不能含有表情符号、数字或其他符号")


def clean_label(value: str) -> str:
    """A name staff give a thing (业务类型, 窗口): :func:`clean_name`, then the person-name
    rule with digits and ``（）()、/_—`` also allowed — ``<b>``, emoji and other markup or
    symbols raise ``ValueError`` with a Chinese message."""
    return _only(value, ("L", "M", "N"), _LABEL_SEPARATORS,
                 "名称只能包含文字、数字和（）·、/-，不能含有 < > 等标记、表情符号或其他符号")


def checked_text(value: str, clean: Callable[[str], str], errors: dict[str, str], field: str,
                 missing: str, too_long: str | None = None, limit: int = 32) -> str:
    """``value`` (already stripped) through ``clean`` (:func:`clean_person_name`,
    :func:`clean_label`): empty → ``errors[field] = missing``, over ``limit`` characters →
    ``too_long`` (default ``missing``), refused by ``clean`` → its Chinese message. Returns the
    cleaned text, or ``value`` as typed when refused (the form shows it again)."""
    if not value or len(value) > limit:
        errors[field] = missing if not value or too_long is None else too_long
        return value
    try:
        return clean(value)
    except ValueError as exc:
        errors[field] = str(exc)
        return value


def clean_phone(value: str) -> str:
    """Full-width digits and ``＋－（）`` (Chinese IME) become ASCII; the format is checked
    by :data:`PHONE_RE` afterwards."""
    return typed_code(value)


APPLICANT_KINDS = ("person", "enterprise")


def check_applicant(kind: str, name: str, id_number: str, phone: str,
                    errors: dict[str, str]) -> tuple[str, str, str]:
    """The one applicant check (cases at intake, service records): ``kind`` person /
    enterprise; the name NFC-normalised without invisible characters (:func:`clean_name`);
    the ID number validated and normalised for its kind (:func:`outlet.ids.validate_id`:
    GB 11643 check digit or GB 32100 credit code); the phone with full-width input made
    ASCII and matching :data:`PHONE_RE` when given. Problems are added to ``errors`` under
    ``applicant_kind`` / ``applicant_name`` / ``id_number`` / ``phone`` (Chinese); returns
    the normalised (name, id_number, phone)."""
    try:
        name = clean_name(name)
    except ValueError as e:
        errors["applicant_name"] = str(e)
    if kind not in APPLICANT_KINDS:
        errors["applicant_kind"] = "请选择申请人类型"
    if not name and "applicant_name" not in errors:
        errors["applicant_name"] = "请填写申请人姓名或企业名称"
    try:
        id_number = validate_id(kind if kind in APPLICANT_KINDS else "person", id_number)
    except InvalidIdNumber as e:
        errors["id_number"] = e.message
    phone = clean_phone(phone)
    if phone and not PHONE_RE.match(phone):
        errors["phone"] = "联系电话格式不正确"
    return name, id_number, phone


@dataclass
class NewCase:
    """The intake form. ``validate`` normalizes it or raises :class:`InvalidInput` whose
    ``errors`` maps each bad field to a Chinese message."""

    matter_id: int | None
    applicant_kind: str = "person"  # person / enterprise
    applicant_name: str = ""
    id_number: str = ""
    phone: str = ""
    legal_representative: str = ""
    service_mode: str = "收件受理"
    agent_name: str = ""
    agent_id_number: str = ""
    agent_phone: str = ""

    @property
    def has_agent(self) -> bool:
        return bool(self.agent_name or self.agent_id_number)

    def validate(self) -> NewCase:
        errors: dict[str, str] = {}
        stripped: dict[str, Any] = {k: str(v).strip() for k, v in vars(self).items() if isinstance(v, str)}
        d = replace(self, **stripped)
        if not d.matter_id:
            errors["matter_id"] = "请选择要办理的事项"
        d.applicant_name, d.id_number, d.phone = check_applicant(
            d.applicant_kind, d.applicant_name, d.id_number, d.phone, errors)
        for field in NAME_FIELDS[1:]:  # the applicant's name was checked above
            try:
                setattr(d, field, clean_name(getattr(d, field)))
            except ValueError as e:
                errors[field] = str(e)
        d.agent_phone = clean_phone(d.agent_phone)
        for field in NAME_FIELDS:
            if field not in errors and len(getattr(d, field)) > NAME_LIMITS[field]:
                errors[field] = f"名称过长：最多 {NAME_LIMITS[field]} 个字"
        if d.applicant_kind == "enterprise" and not d.legal_representative:
            errors["legal_representative"] = "请填写法定代表人"
        if d.service_mode not in SERVICE_MODES:
            errors["service_mode"] = "请选择办理方式"
        if d.has_agent:
            if not d.agent_name:
                errors["agent_name"] = "请填写代理人姓名"
            try:
                d.agent_id_number = validate_person_id(d.agent_id_number)
            except InvalidIdNumber as e:
                errors["agent_id_number"] = "代理人" + e.message
            if d.agent_phone and not PHONE_RE.match(d.agent_phone):
                errors["agent_phone"] = "代理人联系电话格式不正确"
        if errors:
            raise InvalidInput(next(iter(errors.values())), field=next(iter(errors)), errors=errors)
        return d


RESIDENT_ID_MATERIAL = "居民身份证"


def own_id_material(name: str, kind: IdKind | None) -> str:
    """The checklist name of the applicant's own identity document. A catalog material that
    starts with 居民身份证 (the applicant's, not a 代办人's or 监护人's) names the document
    this applicant actually shows: 港澳台居民居住证 and the 外国人永久居留身份证 serve as
    valid identity documents for public services (《港澳台居民居住证申领发放办法》,
    国办发〔2018〕81号; 国家移民管理局 2023 年新版外国人永久居留身份证公告), so the checklist, the
    一次性告知书 and the 受理回执 say what was received."""
    if kind is None or kind.label == RESIDENT_ID_MATERIAL or kind.code == "uscc":
        return name
    if name.startswith(RESIDENT_ID_MATERIAL):
        return kind.label + name[len(RESIDENT_ID_MATERIAL):]
    return name


def _checklist(version: MatterVersion, needs_poa: bool, kind: IdKind | None = None) -> list[CaseMaterial]:
    items = [
        CaseMaterial(
            case_id=0, key=str(m.get("key") or f"m{i + 1}")[:16],
            name=own_id_material(str(m.get("name", "")), kind)[:200],
            necessity=str(m.get("necessity", "必要")), form=str(m.get("form", "纸质")),
            copies=int(m.get("copies", 1) or 1),
        )
        for i, m in enumerate(version.materials or [])
    ]
    if needs_poa and not any("委托" in m.name for m in items):
        items.append(CaseMaterial(case_id=0, key=POA_KEY, name=POA_NAME, necessity="必要"))
    return items


def check_matter(engine: Engine, actor: Staff, matter_id: int | None, *,
                 at: datetime | None = None) -> Matter:
    """A teller chose ``matter_id`` to take in: the matter when the actor's outlet may take
    it in now; otherwise the typed refusal (``GrantExpired``, ``NotDelegated`` …), recorded
    in the audit log as any refused delegated action is. Nothing else is written."""
    if not matter_id:
        raise InvalidInput("请选择要办理的事项", field="matter_id", errors={"matter_id": "请选择要办理的事项"})
    if actor.outlet_id is None:
        raise RoleLacksAction("仅网点工作人员可以新建办件")
    with Session(engine, expire_on_commit=False) as s:
        matter = s.get(Matter, matter_id)
        outlet = s.get(Outlet, actor.outlet_id)
    if matter is None or outlet is None:
        raise InvalidInput("所选事项不存在", field="matter_id", errors={"matter_id": "所选事项不存在"})
    authorize_or_record(engine, actor, "case.create", matter=matter, outlet=outlet, at=at)
    return matter


def create_case(
    engine: Engine, actor: Staff, data: NewCase, *, pseudonym_key: bytes, at: datetime | None = None
) -> Case:
    """Take in a new case (state draft) at the actor's outlet."""
    d = data.validate()
    if actor.outlet_id is None:
        raise RoleLacksAction("仅网点工作人员可以新建办件")
    with Session(reader_of(engine)) as s:  # what to authorize; decided in the write below
        matter = s.get(Matter, d.matter_id)
        outlet = s.get(Outlet, actor.outlet_id)
        if matter is None or outlet is None:
            raise InvalidInput("所选事项不存在", field="matter_id", errors={"matter_id": "所选事项不存在"})
        version = s.exec(
            select(MatterVersion).where(
                MatterVersion.matter_id == matter.id, MatterVersion.version == matter.current_version
            )
        ).one()
    subject = audit.pseudonym(pseudonym_key, d.id_number)
    now = at or utcnow()
    with delegated_action(
        engine, actor, "case.create", matter=matter, outlet=outlet, subject=subject,
        matter_version=version, at=now,
    ) as act:
        s = act.session
        if d.service_mode == "代办":  # 代办 needs its own scope on top of 收件受理
            act.grant = authorize(s, actor, "case.create", matter, outlet, now, scope="代办")
            act.grant_id = act.grant.id if act.grant else None
        applicant = Applicant(
            kind=d.applicant_kind, name=d.applicant_name, id_number=d.id_number, phone=d.phone,
            legal_representative=d.legal_representative, pseudonym=subject,
        )
        s.add(applicant)
        s.flush()
        number = next_case_number(s, matter.implementation_code, local_day(now))
        act.case = number
        assert applicant.id is not None and version.id is not None and actor.id is not None
        case = Case(
            number=number, check_code=new_check_code(), outlet_id=outlet.id or 0,
            matter_id=matter.id or 0, matter_version_id=version.id, grant_id=act.grant_id,
            applicant_id=applicant.id, service_mode=d.service_mode,
            agent_name=d.agent_name or None, agent_id_number=d.agent_id_number or None,
            agent_phone=d.agent_phone or None, state="draft", created_by=actor.id,
            created_at=now, updated_at=now, received_on=local_day(now),
        )
        s.add(case)
        s.flush()
        assert case.id is not None
        for m in _checklist(version, d.service_mode == "代办" or d.has_agent,
                            id_kind(d.applicant_kind, d.id_number)):
            m.case_id = case.id
            s.add(m)
        s.add(CaseEvent(case_id=case.id, actor_id=actor.id, at=now, action="case.create", to_state="draft"))
        act.state = (None, "draft")
    return case


def _frame_action(state: str) -> str:
    """Material work in draft/correction is "case.material"; later it can only be the
    supply of 容缺 materials ("case.supply")."""
    return "case.material" if state in states.MATERIAL_STATES else "case.supply"


def _current_state(engine: Engine, actor: Staff, number: str) -> str:
    from outlet.cases import load_case

    with Session(engine) as s:
        return load_case(s, actor, number).case.state


def _material(frame: Frame, key: str) -> CaseMaterial:
    assert frame.case.id is not None
    m = frame.session.exec(
        select(CaseMaterial).where(CaseMaterial.case_id == frame.case.id, CaseMaterial.key == key)
    ).first()
    if m is None:
        raise InvalidInput("办件中没有这项材料", field="key")
    return m


def _set_status(
    frame: Frame, m: CaseMaterial, status: str, reason: str | None, actor_id: int, action: str,
    note: str | None = None,
) -> None:
    if action == "case.supply":
        states.require_state(frame.case, states.SUPPLY_STATES, action)
        if m.status != "deferred" or status != "received":
            raise IllegalTransition("此阶段只能补交容缺后补的材料")
    else:
        states.require_state(frame.case, states.MATERIAL_STATES, action)
    if status not in MARKABLE:
        raise InvalidInput("材料状态无效", field="status")
    reason = (reason or "").strip() or None
    if status == "defective" and not reason:
        raise InvalidInput("请填写材料存在的问题", field="reason", errors={"reason": "请填写材料存在的问题"})
    m.status, m.reason, m.updated_at = status, (None if status == "received" else reason), frame.act.at
    frame.session.add(m)
    assert frame.case.id is not None
    label = MATERIAL_STATUS_LABELS[status]
    frame.session.add(
        CaseEvent(case_id=frame.case.id, actor_id=actor_id, at=frame.act.at, action=action,
                  note=note or f"{m.name}：{label}" + (f"（{reason}）" if reason else ""))
    )
    if action == "case.supply" and frame.case.state == "rongque":
        frame.session.flush()
        g = frame.guard_input()
        if not any(x.status == "deferred" for x in g.materials):
            t = states.apply(g, "case.supply", actor_id=actor_id, note="容缺材料已全部补齐")
            frame.moved(t.source, t.target)


def mark_material(
    engine: Engine, actor: Staff, number: str, key: str, status: str, reason: str | None = None,
    *, at: datetime | None = None,
) -> CaseMaterial:
    """Mark one checklist line received / missing / defective (with reason). A line the
    applicant's 告知承诺书 replaced stays received (outlet/promise.py, DOMAIN.md 告知承诺制:
    the promise stands for the certificate until the center's 核查): marking it missing or
    defective is refused (GuardFailed ``promised_material``, audited)."""
    from outlet.promise import promise_of

    action = _frame_action(_current_state(engine, actor, number))
    assert actor.id is not None
    with case_action(engine, actor, number, action, at=at) as f:
        m = _material(f, key)
        assert f.case.id is not None
        promise = promise_of(f.session, f.case.id) if status != "received" else None
        if promise is not None and any(p.get("key") == m.key for p in promise.materials or []):
            raise GuardFailed(f"「{m.name}」已由告知承诺书 {promise.number} 代替，不能标记为缺失或有问题；"
                              "承诺是否属实由中心核查", code="promised_material")
        _set_status(f, m, status, reason, actor.id, action)
    return m


def upload_material(
    engine: Engine, actor: Staff, number: str, key: str, chunks: Iterable[bytes], *,
    claimed_name: str, store: FileStore, max_bytes: int, at: datetime | None = None,
) -> CaseFile:
    """Store a scan for one material (validated by content) and mark it received.
    The file's SHA-256 goes into the audit entry as a "material" digest."""
    action = _frame_action(_current_state(engine, actor, number))  # also scopes the case
    stored = store.save(chunks, claimed_name=claimed_name, max_bytes=max_bytes)
    name = "".join(c for c in unicodedata.normalize("NFC", claimed_name) if c.isprintable())
    name = name.replace("/", "_").replace("\\", "_").strip()[-255:] or "scan"
    assert actor.id is not None
    with case_action(engine, actor, number, action, at=at) as f:
        m = _material(f, key)
        assert f.case.id is not None
        cf = CaseFile(
            case_id=f.case.id, material_key=m.key, sha256=stored.sha256, size=stored.size,
            content_type=stored.content_type, original_name=name, uploaded_by=actor.id,
            uploaded_at=f.act.at,
        )
        f.session.add(cf)
        f.act.add_digest("material", stored.sha256)
        _set_status(f, m, "received", None, actor.id, action, note=f"{m.name}：上传扫描件 {name}")
    return cf


def one_time_notice(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None) -> Notice:
    """一次性告知书: one dated, numbered notice listing every missing or defective material."""
    assert actor.id is not None
    with case_action(engine, actor, number, "case.notice", at=at) as f:
        states.require_state(f.case, states.NOTICE_STATES, "case.notice")
        assert f.case.id is not None
        items = one_time_items(materials_of(f.session, f.case.id))
        if not items:
            raise GuardFailed("材料已齐全，无需出具一次性告知书", code="nothing_to_notify")
        notice = issue(f.session, f.case, "one_time", actor_id=actor.id, at=f.act.at, items=items)
        f.session.add(
            CaseEvent(case_id=f.case.id, actor_id=actor.id, at=f.act.at, action="case.notice",
                      note=f"出具一次性告知书，共 {len(items)} 项")
        )
    return notice
