"""Service records at the counter: 咨询 (with 首问负责), 帮办, 陪办, 代办 — open, hand over,
close — and the frame every service step runs in (load scoped → authorize → lock → change
→ audit, one transaction).

Scope by kind (DOMAIN.md "service modes"): 咨询 needs the grant scope 咨询; 帮办 and 陪办
(accompanying is help in person) need 帮办; 代办 needs 代办. A matter is optional for 咨询
only; without one, any grant of the outlet carrying the scope counts.

首问负责 (DOMAIN.md): the staff member who takes an enquiry owns it until it is answered
or handed over to a named colleague with a note; nobody else may close or hand it over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import audit
from outlet.cases import next_case_number, visible_outlets
from outlet.clock import local_day, utc_bounds
from outlet.errors import (
    IllegalTransition,
    InvalidInput,
    NotOwner,
    ServiceNotFound,
)
from outlet.intake import check_applicant
from outlet.models import Applicant
from outlet.services.models import ServiceRecord, ServiceStep
from partners.delegation import ActionContext, delegated_action
from partners.errors import RoleLacksAction
from partners.models import Matter, MatterVersion, Outlet, Staff, utcnow

KINDS = ("咨询", "帮办", "陪办", "代办")
KIND_SCOPE = {"咨询": "咨询", "帮办": "帮办", "陪办": "帮办", "代办": "代办"}
OUTCOMES = {"answered": "已解答", "done": "已办成", "handed_over": "已转办", "not_done": "未能办成"}
STATE_LABELS = {
    "open": "办理中", "entrusted": "已受理（代办）", "suspended": "已中止", "closed": "已办结",
    "terminated": "已终止", "delivered": "已办结送达",
}
ENDED = frozenset({"closed", "terminated", "delivered"})
MAX_NOTE = 500  # characters of a handover or closing note (the column's size)
CHANNELS = ("爱山东APP", "网上办事大厅", "自助终端", "窗口", "其他")


@dataclass
class NewService:
    """The "登记服务" form; ``validate`` normalizes or raises :class:`InvalidInput` with
    ``errors`` (field → Chinese message)."""

    kind: str
    matter_id: int | None = None
    topic: str = ""
    channel: str = ""
    applicant_kind: str = "person"
    applicant_name: str = ""
    id_number: str = ""
    phone: str = ""
    home: bool = False

    @property
    def has_applicant(self) -> bool:
        return bool(self.applicant_name or self.id_number)

    def validate(self) -> NewService:
        stripped: dict[str, Any] = {k: v.strip() for k, v in vars(self).items() if isinstance(v, str)}
        d = replace(self, **stripped)
        errors: dict[str, str] = {}
        if d.kind not in KINDS:
            errors["kind"] = "请选择服务类型（咨询、帮办、陪办或代办）"
        elif d.kind != "咨询" and d.matter_id is None:
            errors["matter_id"] = f"{d.kind}须选择所办事项"
        if not d.topic:
            errors["topic"] = "请填写咨询内容或服务事由"
        elif len(d.topic) > 500:
            errors["topic"] = "服务事由不超过 500 字"
        if d.channel and d.channel not in CHANNELS:
            errors["channel"] = "办理渠道无效"
        if d.kind == "代办" and not d.has_applicant:
            errors["applicant_name"] = "代办须登记委托人（申请人）"
        if d.has_applicant:  # the same check as a case's applicant at intake
            d.applicant_name, d.id_number, d.phone = check_applicant(
                d.applicant_kind, d.applicant_name, d.id_number, d.phone, errors)
        if errors:
            raise InvalidInput(next(iter(errors.values())), field=next(iter(errors)), errors=errors)
        return d


@dataclass
class ServiceRef:
    record: ServiceRecord
    outlet: Outlet
    matter: Matter | None
    version: MatterVersion | None
    applicant: Applicant | None

    @property
    def subject(self) -> str | None:
        return self.applicant.pseudonym if self.applicant else None


def current_version(session: Session, matter: Matter) -> MatterVersion:
    return session.exec(
        select(MatterVersion).where(MatterVersion.matter_id == matter.id,
                                    MatterVersion.version == matter.current_version)
    ).one()


def load_service(session: Session, actor: Staff, number: str) -> ServiceRef:
    """The record ``number`` if it belongs to an outlet ``actor`` works at, else
    :class:`ServiceNotFound` (the same answer for another outlet's record)."""
    record = session.exec(select(ServiceRecord).where(ServiceRecord.number == number)).first()
    if record is None or record.outlet_id not in visible_outlets(session, actor):
        raise ServiceNotFound()
    outlet = session.get(Outlet, record.outlet_id)
    assert outlet is not None
    matter = session.get(Matter, record.matter_id) if record.matter_id else None
    version = session.get(MatterVersion, record.matter_version_id) if record.matter_version_id else None
    applicant = session.get(Applicant, record.applicant_id) if record.applicant_id else None
    return ServiceRef(record, outlet, matter, version, applicant)


@dataclass
class ServiceFrame:
    act: ActionContext
    ref: ServiceRef

    @property
    def session(self) -> Session:
        return self.act.session

    @property
    def record(self) -> ServiceRecord:
        return self.ref.record

    def step(self, action: str, *, note: str | None = None, **kw: Any) -> ServiceStep:
        assert self.record.id is not None
        step = ServiceStep(record_id=self.record.id, at=self.act.at, actor_id=self.act.actor_id,
                           action=action, note=note, **kw)
        self.session.add(step)
        return step

    def move(self, target: str) -> None:
        self.act.state = (self.record.state, target)
        self.record.state = target
        self.session.add(self.record)


@contextmanager
def service_action(
    engine: Engine, actor: Staff, number: str, action: str, *, at: datetime | None = None,
    scope: str | None = None,
) -> Iterator[ServiceFrame]:
    """Load the record (scoped), authorize ``action`` (with the kind's ``scope`` where the
    action needs a grant) and hold the record row locked for the change."""
    with Session(engine, expire_on_commit=False) as s:
        ref = load_service(s, actor, number)
    with delegated_action(
        engine, actor, action, matter=ref.matter, outlet=ref.outlet, case=number,
        subject=ref.subject, matter_version=ref.version, at=at or utcnow(), scope=scope,
    ) as act:
        ref.record = act.session.exec(
            select(ServiceRecord).where(ServiceRecord.id == ref.record.id).with_for_update()
        ).one()
        act.state = (ref.record.state, ref.record.state)
        yield ServiceFrame(act, ref)


def new_number(session: Session, prefix: str, outlet: Outlet, day: date) -> str:
    """``<prefix>-<outlet code>-YYYYMMDD`` + 4-digit daily serial (atomic, as case numbers)."""
    return next_case_number(session, f"{prefix}-{outlet.code}-"[:40], day)


def applicant_for(session: Session, d: NewService, pseudonym_key: bytes) -> Applicant | None:
    if not d.has_applicant:
        return None
    applicant = Applicant(kind=d.applicant_kind, name=d.applicant_name, id_number=d.id_number,
                          phone=d.phone, pseudonym=audit.pseudonym(pseudonym_key, d.id_number))
    session.add(applicant)
    session.flush()
    return applicant


def open_service(
    engine: Engine, actor: Staff, data: NewService, *, pseudonym_key: bytes,
    at: datetime | None = None, outlet_id: int | None = None, visit_id: int | None = None,
) -> ServiceRecord:
    """登记服务: a new record owned by ``actor`` (首问负责), at their outlet (or
    ``outlet_id`` they cover as AB角). Needs the kind's scope in a grant in force."""
    d = data.validate()
    target = outlet_id or actor.outlet_id
    if target is None:
        raise RoleLacksAction("仅网点工作人员可以登记服务")
    with Session(engine, expire_on_commit=False) as s:
        outlet = s.get(Outlet, target)
        matter = s.get(Matter, d.matter_id) if d.matter_id is not None else None
        if outlet is None or (d.matter_id is not None and matter is None):
            raise InvalidInput("所选事项不存在", field="matter_id", errors={"matter_id": "所选事项不存在"})
        version = current_version(s, matter) if matter else None
    subject = audit.pseudonym(pseudonym_key, d.id_number) if d.has_applicant else None
    now = at or utcnow()
    with delegated_action(
        engine, actor, "service.open", matter=matter, outlet=outlet, subject=subject,
        matter_version=version, at=now, scope=KIND_SCOPE[d.kind],
    ) as act:
        s = act.session
        applicant = applicant_for(s, d, pseudonym_key)
        assert actor.id is not None and outlet.id is not None
        record = ServiceRecord(
            number=new_number(s, "FW", outlet, local_day(now)), kind=d.kind, home=d.home,
            outlet_id=outlet.id, opened_by=actor.id, owner_id=actor.id,
            matter_id=matter.id if matter else None, matter_version_id=version.id if version else None,
            applicant_id=applicant.id if applicant else None, topic=d.topic, channel=d.channel,
            started_at=now, visit_id=visit_id,
        )
        s.add(record)
        s.flush()
        act.case = record.number
        act.state = (None, "open")
        assert record.id is not None
        s.add(ServiceStep(record_id=record.id, at=now, actor_id=actor.id, action="service.open",
                          note=f"{d.kind}：{d.topic}"[:500]))
    return record


def _require_owner(f: ServiceFrame, actor: Staff, verb: str) -> None:
    if f.record.state in ENDED:
        raise IllegalTransition(f"该服务{STATE_LABELS[f.record.state]}，不能{verb}")
    if f.record.owner_id != actor.id:
        owner = f.session.get(Staff, f.record.owner_id)
        name = owner.display_name if owner else "首问责任人"
        raise NotOwner(f"该服务由首问责任人{name}负责，您不能{verb}")


def handover(
    engine: Engine, actor: Staff, number: str, *, to_staff_id: int | None, note: str,
    at: datetime | None = None,
) -> ServiceRecord:
    """首问负责 handover: the owner passes the record to an active colleague of the same
    outlet with a note saying what is done and what is left. The colleague becomes owner."""
    note = (note or "").strip()
    errors = {}
    if to_staff_id is None:
        errors["to_staff_id"] = "请选择接手的同事"
    if not note:
        errors["note"] = "转交须写明已办情况和待办事项"
    elif len(note) > MAX_NOTE:
        errors["note"] = f"交接说明不超过 {MAX_NOTE} 字"
    if errors:
        raise InvalidInput(next(iter(errors.values())), field=next(iter(errors)), errors=errors)
    with service_action(engine, actor, number, "service.handover", at=at) as f:
        _require_owner(f, actor, "转交")
        target = f.session.get(Staff, to_staff_id)
        if (target is None or not target.active or target.id == actor.id
                or target.outlet_id != f.record.outlet_id):
            raise InvalidInput("只能转交给本网点在岗的其他同事", field="to_staff_id",
                               errors={"to_staff_id": "只能转交给本网点在岗的其他同事"})
        assert target.id is not None
        f.record.owner_id = target.id
        f.session.add(f.record)
        f.step("service.handover", note=note, to_staff_id=to_staff_id)
    return f.record


def close(
    engine: Engine, actor: Staff, number: str, *, outcome: str, note: str = "",
    case_number: str | None = None, at: datetime | None = None,
) -> ServiceRecord:
    """办结: answered / done / handed_over (转办 to another office, note says where) /
    not_done (reason required). Only the owner may close (首问负责). 代办 records end
    through their forms (终止单 / 办结单), not here."""
    note = (note or "").strip()
    if outcome not in OUTCOMES:
        raise InvalidInput("请选择服务结果", field="outcome", errors={"outcome": "请选择服务结果"})
    if outcome in ("handed_over", "not_done") and not note:
        msg = "转办须写明转至何处" if outcome == "handed_over" else "请填写未能办成的原因"
        raise InvalidInput(msg, field="note", errors={"note": msg})
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"说明不超过 {MAX_NOTE} 字", field="note", errors={"note": f"说明不超过 {MAX_NOTE} 字"})
    with service_action(engine, actor, number, "service.close", at=at) as f:
        _require_owner(f, actor, "办结")
        if f.record.kind == "代办":
            raise IllegalTransition("代办服务以终止单或办结单结束，请使用代办表单")
        if case_number:
            link_case(f, case_number)
        f.record.outcome, f.record.outcome_note, f.record.ended_at = outcome, note or None, f.act.at
        f.move("closed")
        f.step("service.close", note=f"{OUTCOMES[outcome]}" + (f"：{note}" if note else ""))
    return f.record


def link_case(f: ServiceFrame, case_number: str) -> None:
    """Link a case of the same outlet (the case a 代办 or 帮办 created or continued)."""
    from outlet.models import Case

    case = f.session.exec(select(Case).where(Case.number == case_number.strip())).first()
    if case is None or case.outlet_id != f.record.outlet_id:
        raise InvalidInput("未找到本网点的该办件编号", field="case_number",
                           errors={"case_number": "未找到本网点的该办件编号"})
    f.record.case_id = case.id


# --- reading -----------------------------------------------------------------------------
@dataclass
class ServiceRow:
    record: ServiceRecord
    owner_name: str
    matter_name: str | None


def service_rows(session: Session, actor: Staff, *, day: date | None = None,
                 open_only: bool = False, limit: int = 100) -> list[ServiceRow]:
    """Records of the actor's outlets, newest first; ``day`` (Beijing) filters by start."""
    stmt = (
        select(ServiceRecord, Staff.display_name, MatterVersion.name)
        .join(Staff, col(Staff.id) == ServiceRecord.owner_id)
        .outerjoin(MatterVersion, col(MatterVersion.id) == ServiceRecord.matter_version_id)
        .where(col(ServiceRecord.outlet_id).in_(visible_outlets(session, actor)))
        .order_by(col(ServiceRecord.started_at).desc()).limit(limit)
    )
    if day is not None:
        start, end = utc_bounds(day)
        stmt = stmt.where(col(ServiceRecord.started_at) >= start, col(ServiceRecord.started_at) < end)
    if open_only:
        stmt = stmt.where(col(ServiceRecord.state).not_in(ENDED))
    return [ServiceRow(r, name, mname) for r, name, mname in session.exec(stmt).all()]


def steps_of(session: Session, record_id: int) -> list[tuple[ServiceStep, str, str | None]]:
    """(step, actor name, handed-to name) oldest first."""
    rows = session.exec(
        select(ServiceStep, Staff.display_name).join(Staff, col(Staff.id) == ServiceStep.actor_id)
        .where(ServiceStep.record_id == record_id).order_by(col(ServiceStep.id))
    ).all()
    out = []
    for step, name in rows:
        to = session.get(Staff, step.to_staff_id) if step.to_staff_id else None
        out.append((step, name, to.display_name if to else None))
    return out


def colleagues(session: Session, actor: Staff, outlet_id: int) -> list[Staff]:
    """Active staff of the outlet other than ``actor`` (handover targets)."""
    return list(session.exec(
        select(Staff).where(Staff.outlet_id == outlet_id, Staff.active, Staff.id != actor.id)
        .order_by(col(Staff.id))
    ).all())
