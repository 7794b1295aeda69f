"""上门办: the home-visit request queue and the block agent's visit, submitted from a phone.

A request (from the counter, a block agent or the center taking a resident's call) names an
address, a reason (年老 / 残疾 / 重病 …), a preferred time and the block agent of that street
point; it is due ``VISIT_DUE_WORKDAYS`` working days after the request (outlet/workdays.py).

The phone sends two submissions, arrive and complete, each with a client-generated id:
``submit`` is idempotent — the same id gets the same answer and changes nothing again — so
an offline outbox may resend freely. Server and phone times are both kept. Completing
creates the visit's service record (``home=True``) in the same transaction, and the audit
entry carries the SHA-256 of every document photo and of the signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from outlet.cases import visible_outlets
from outlet.clock import local_day
from outlet.errors import IllegalTransition, InvalidInput, NotAssigned, ServiceNotFound
from outlet.files import FileStore
from outlet import pii
from outlet.intake import PHONE_RE, clean_phone
from outlet.services.evidence import (
    CLIENT_ID_RE,
    check_photo,
    check_signature,
    check_visit_times,
    phone_time,
    position,
)
from outlet.services.models import HomeVisit, ServiceRecord, ServiceStep, VisitFile, VisitSubmission
from outlet.services.records import KIND_SCOPE, OUTCOMES, current_version, new_number
from outlet.workdays import WorkCalendar
from partners.delegation import delegated_action
from partners.models import Matter, Outlet, Staff, utcnow

VISIT_KINDS = ("咨询", "帮办", "代办")
VISIT_REASONS = ("年老", "残疾", "重病", "其他")
VISIT_CHANNELS = ("窗口", "网格员", "中心来电")
# Local practice (e.g. Sanyuan 家里办): a home visit within 3 working days of the request.
VISIT_DUE_WORKDAYS = 3
VISIT_STATES = {"assigned": "待上门", "arrived": "已到达", "done": "已办结"}
MAX_PHOTOS = 6
MAX_NOTE = 500  # characters of an outcome or handover note (the column's size)


@dataclass
class NewVisit:
    kind: str
    contact_name: str
    address: str
    reason: str
    assignee_id: int | None
    contact_phone: str = ""
    reason_note: str = ""
    preferred: str = ""
    matter_id: int | None = None
    channel: str = "窗口"

    def validate(self) -> NewVisit:
        stripped: dict[str, Any] = {k: v.strip() for k, v in vars(self).items() if isinstance(v, str)}
        d = replace(self, **stripped)
        errors: dict[str, str] = {}
        if d.kind not in VISIT_KINDS:
            errors["kind"] = "请选择上门服务类型"
        if not d.contact_name:
            errors["contact_name"] = "请填写联系人姓名"
        d.contact_phone = clean_phone(d.contact_phone)
        if d.contact_phone and not PHONE_RE.match(d.contact_phone):
            errors["contact_phone"] = "联系电话格式不正确"
        if not d.address:
            errors["address"] = "请填写上门地址"
        if d.reason not in VISIT_REASONS:
            errors["reason"] = "请选择上门原因"
        elif d.reason == "其他" and not d.reason_note:
            errors["reason_note"] = "原因为「其他」时请说明"
        if d.channel not in VISIT_CHANNELS:
            errors["channel"] = "请选择需求来源"
        if not d.assignee_id:
            errors["assignee_id"] = "请指派网格帮办代办员"
        if errors:
            raise InvalidInput(next(iter(errors.values())), field=next(iter(errors)), errors=errors)
        return d


def block_agents(session: Session, outlet_id: int) -> list[Staff]:
    """Active block agents (网格帮办代办员) of a street point: who may be assigned."""
    rows = session.exec(select(Staff).where(Staff.outlet_id == outlet_id, Staff.active)
                        .order_by(col(Staff.id))).all()
    return [s for s in rows if "block_agent" in s.role_set]


def street_agents(session: Session) -> list[tuple[Staff, Outlet]]:
    """Every active block agent with their street point: whom the center may assign when a
    resident phones in (the visit belongs to the agent's outlet)."""
    rows = session.exec(select(Staff, Outlet).join(Outlet, col(Outlet.id) == Staff.outlet_id)
                        .where(Staff.active, Outlet.active).order_by(col(Outlet.id), col(Staff.id))).all()
    return [(st, o) for st, o in rows if "block_agent" in st.role_set]


PHONE_COLUMN = "home_visit.contact_phone"  # sealed at rest (outlet/pii.py)


def request_visit(engine: Engine, actor: Staff, data: NewVisit, *, pii_key: bytes,
                  outlet_id: int | None = None, at: datetime | None = None) -> HomeVisit:
    """Queue a home visit at ``outlet_id`` (default: the actor's outlet), assigned to one of
    its block agents. Needs the kind's scope (帮办 / 代办 / 咨询) in a grant in force. The
    contact's phone is stored sealed with ``pii_key`` (:func:`contact_phone` opens it)."""
    d = data.validate()
    target = outlet_id or actor.outlet_id
    if target is None and "admin" in actor.role_set:  # the center: the agent's street point
        with Session(engine) as s:
            agent = s.get(Staff, d.assignee_id)
            target = agent.outlet_id if agent is not None else None
    if target is None:
        raise InvalidInput("请指派网格帮办代办员", field="assignee_id",
                           errors={"assignee_id": "请指派网格帮办代办员"})
    now = at or utcnow()
    with Session(engine, expire_on_commit=False) as s:
        outlet = s.get(Outlet, target)
        matter = s.get(Matter, d.matter_id) if d.matter_id else None
        if outlet is None:
            raise InvalidInput("服务站不存在", field="outlet_id", errors={"outlet_id": "服务站不存在"})
        version = current_version(s, matter) if matter else None
        agents = {a.id for a in block_agents(s, target)}
    if d.assignee_id not in agents:
        raise InvalidInput("只能指派该服务站在岗的网格帮办代办员", field="assignee_id",
                           errors={"assignee_id": "只能指派该服务站在岗的网格帮办代办员"})
    with delegated_action(engine, actor, "visit.request", matter=matter, outlet=outlet,
                          matter_version=version, at=now, scope=KIND_SCOPE[d.kind]) as act:
        s = act.session
        due = WorkCalendar.load(s).add_workdays(local_day(now), VISIT_DUE_WORKDAYS).day
        assert actor.id is not None and outlet.id is not None and d.assignee_id is not None
        visit = HomeVisit(
            number=new_number(s, "SM", outlet, local_day(now)), outlet_id=outlet.id, kind=d.kind,
            matter_id=d.matter_id, contact_name=d.contact_name,
            contact_phone=pii.seal(pii_key, d.contact_phone, column=PHONE_COLUMN),
            address=d.address, reason=d.reason, reason_note=d.reason_note, preferred=d.preferred,
            requested_by=actor.id, requested_at=now, channel=d.channel, assignee_id=d.assignee_id,
            due_on=due,
        )
        s.add(visit)
        s.flush()
        act.case = visit.number
        act.state = (None, "assigned")
    return visit


def contact_phone(visit: HomeVisit, pii_key: bytes) -> str:
    """The visit contact's phone in clear (for its block agent to call)."""
    return pii.unseal(pii_key, visit.contact_phone, column=PHONE_COLUMN)


def load_visit(session: Session, actor: Staff, number: str) -> HomeVisit:
    """A visit of one of the actor's outlets (center admins: any), else ServiceNotFound."""
    visit = session.exec(select(HomeVisit).where(HomeVisit.number == number)).first()
    if visit is None:
        raise ServiceNotFound("未找到该上门服务")
    if "admin" in actor.role_set and actor.outlet_id is None:
        return visit
    if visit.outlet_id not in visible_outlets(session, actor):
        raise ServiceNotFound("未找到该上门服务")
    return visit


def visit_queue(session: Session, actor: Staff, *, assignee_only: bool = False,
                include_done_on: date | None = None) -> list[HomeVisit]:
    """Open visits of the actor's outlets (or only those assigned to the actor), due first;
    ``include_done_on`` adds the visits finished that Beijing day."""
    stmt = select(HomeVisit).order_by(col(HomeVisit.due_on), col(HomeVisit.id))
    if not ("admin" in actor.role_set and actor.outlet_id is None):
        stmt = stmt.where(col(HomeVisit.outlet_id).in_(visible_outlets(session, actor)))
    if assignee_only:
        stmt = stmt.where(HomeVisit.assignee_id == actor.id)
    rows = list(session.exec(stmt).all())
    return [v for v in rows if v.state != "done"
            or (include_done_on is not None and v.left_at is not None
                and local_day(v.left_at) == include_done_on)]


def files_of_visit(session: Session, visit_id: int) -> list[VisitFile]:
    return list(session.exec(select(VisitFile).where(VisitFile.visit_id == visit_id)
                             .order_by(col(VisitFile.id))).all())


# --- submissions from the phone ------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """What the phone gets back; the same for every resend of one client id."""

    status_code: int
    body: dict[str, Any]


def submit(
    engine: Engine, actor: Staff, number: str, kind: str, client_id: str, fields: dict[str, str],
    *, photos: Sequence[bytes] = (), signature: bytes = b"", store: FileStore | None = None,
    max_bytes: int = 10 * 1024 * 1024, at: datetime | None = None,
) -> Answer:
    """One phone submission (``kind`` "arrive" or "complete"), idempotent by ``client_id``.

    Raises InvalidInput / UploadRejected (422/413/415) for bad input, IllegalTransition (409)
    for a visit already past that step under another id, ServiceNotFound (404)."""
    if kind not in ("arrive", "complete"):
        raise InvalidInput("未知的提交类型", field="kind")
    if not CLIENT_ID_RE.match(client_id or ""):
        raise InvalidInput("提交编号无效", field="client_id")
    now = at or utcnow()
    with Session(engine) as s:
        visit = load_visit(s, actor, number)
        earlier = s.get(VisitSubmission, client_id)
        if earlier is not None:
            if earlier.visit_id != visit.id or earlier.actor_id != actor.id or earlier.kind != kind:
                raise InvalidInput("提交编号已被其他提交使用", field="client_id")
            return Answer(earlier.status_code, {**earlier.answer, "replayed": True})
    try:
        if kind == "arrive":
            return _arrive(engine, actor, number, client_id, fields, now)
        assert store is not None
        return _complete(engine, actor, number, client_id, fields, photos, signature, store,
                         max_bytes, now)
    except IntegrityError:  # the same id raced in from a second request: answer as stored
        with Session(engine) as s:
            earlier = s.get(VisitSubmission, client_id)
            if earlier is None:
                raise
            return Answer(earlier.status_code, {**earlier.answer, "replayed": True})


def _visit_action(engine: Engine, actor: Staff, number: str, action: str, now: datetime) -> Any:
    with Session(engine, expire_on_commit=False) as s:
        outlet = s.get(Outlet, load_visit(s, actor, number).outlet_id)
    return delegated_action(engine, actor, action, outlet=outlet, case=number, at=now)


def _locked(act: Any, number: str) -> HomeVisit:
    """The visit row, locked; only its assigned agent may work it (refusal is audited)."""
    visit: HomeVisit = act.session.exec(
        select(HomeVisit).where(HomeVisit.number == number).with_for_update()).one()
    act.state = (visit.state, visit.state)
    if visit.assignee_id != act.actor_id:
        raise NotAssigned()
    return visit


def _arrive(engine: Engine, actor: Staff, number: str, client_id: str, fields: dict[str, str],
            now: datetime) -> Answer:
    phone_at = phone_time(fields.get("phone_time", ""), now, "phone_time")
    where = position(fields, "arrive")
    with _visit_action(engine, actor, number, "visit.arrive", now) as act:
        visit = _locked(act, number)
        if visit.state != "assigned":
            raise IllegalTransition(f"该上门服务{VISIT_STATES[visit.state]}，不能再次登记到达")
        check_visit_times(visit.requested_at, phone_at)
        visit.state, visit.arrived_at, visit.arrived_phone_at = "arrived", now, phone_at
        visit.arrive_position = where
        act.session.add(visit)
        act.state = ("assigned", "arrived")
        answer = Answer(200, {"ok": True, "visit": number, "state": "arrived",
                              "server_time": now.isoformat() + "Z"})
        _remember(act.session, client_id, visit, "arrive", actor, now, answer)
    return answer


def _complete(engine: Engine, actor: Staff, number: str, client_id: str, fields: dict[str, str],
              photos: Sequence[bytes], signature: bytes, store: FileStore, max_bytes: int,
              now: datetime) -> Answer:
    outcome = fields.get("outcome", "").strip()
    note = fields.get("outcome_note", "").strip()
    if outcome not in OUTCOMES:
        raise InvalidInput("请选择服务结果", field="outcome", errors={"outcome": "请选择服务结果"})
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"说明不超过 {MAX_NOTE} 字", field="outcome_note",
                           errors={"outcome_note": f"说明不超过 {MAX_NOTE} 字"})
    if outcome in ("not_done", "handed_over") and not note:
        raise InvalidInput("请填写原因或转办去向", field="outcome_note",
                           errors={"outcome_note": "请填写原因或转办去向"})
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput(f"最多上传 {MAX_PHOTOS} 张照片", field="photos")
    types = [check_photo(p, max_bytes) for p in photos]
    check_signature(signature)
    phone_at = phone_time(fields.get("phone_time", ""), now, "phone_time")
    where = position(fields, "leave")
    stored = [store.save_bytes(p, claimed_name="", max_bytes=max_bytes) for p in photos]
    sig = store.save_bytes(signature, claimed_name="signature.png", max_bytes=max_bytes)
    with _visit_action(engine, actor, number, "visit.complete", now) as act:
        visit = _locked(act, number)
        if visit.state == "done":
            raise IllegalTransition("该上门服务已办结，不能重复提交")
        if visit.state != "arrived":
            raise IllegalTransition("请先登记到达再办结")
        s = act.session
        assert visit.id is not None and actor.id is not None and visit.arrived_phone_at is not None
        check_visit_times(visit.requested_at, visit.arrived_phone_at, phone_at)
        for f, ctype in zip(stored, types, strict=True):
            s.add(VisitFile(visit_id=visit.id, kind="photo", sha256=f.sha256, size=f.size,
                            content_type=ctype))
            act.add_digest("photo", f.sha256)
        s.add(VisitFile(visit_id=visit.id, kind="signature", sha256=sig.sha256, size=sig.size,
                        content_type="image/png"))
        act.add_digest("signature", sig.sha256)
        visit.state, visit.left_at, visit.left_phone_at = "done", now, phone_at
        visit.leave_position, visit.outcome, visit.outcome_note = where, outcome, note or None
        visit.signature_sha256 = sig.sha256
        s.add(visit)
        outlet = s.get(Outlet, visit.outlet_id)
        assert outlet is not None and outlet.id is not None
        matter = s.get(Matter, visit.matter_id) if visit.matter_id else None
        record = ServiceRecord(
            number=new_number(s, "FW", outlet, local_day(now)), kind=visit.kind, home=True,
            outlet_id=outlet.id, opened_by=actor.id, owner_id=actor.id, matter_id=visit.matter_id,
            matter_version_id=current_version(s, matter).id if matter else None,
            topic=f"上门服务（{visit.reason}）：{visit.address}"[:500], state="closed",
            outcome=outcome, outcome_note=note or None, started_at=visit.arrived_phone_at,
            ended_at=phone_at, visit_id=visit.id,
        )
        s.add(record)
        s.flush()
        assert record.id is not None
        s.add(ServiceStep(record_id=record.id, at=now, actor_id=actor.id, action="visit.complete",
                          note=f"上门办结：{OUTCOMES[outcome]}" + (f"（{note}）" if note else "")))
        act.state = ("arrived", "done")
        answer = Answer(200, {"ok": True, "visit": number, "state": "done", "record": record.number,
                              "photos": [f.sha256 for f in stored], "signature": sig.sha256,
                              "server_time": now.isoformat() + "Z"})
        _remember(s, client_id, visit, "complete", actor, now, answer)
    return answer


def _remember(session: Session, client_id: str, visit: HomeVisit, kind: str, actor: Staff,
              now: datetime, answer: Answer) -> None:
    assert visit.id is not None and actor.id is not None
    session.add(VisitSubmission(client_id=client_id, visit_id=visit.id, kind=kind,
                                actor_id=actor.id, received_at=now,
                                status_code=answer.status_code, answer=answer.body))
    session.flush()  # a duplicate id fails here, inside the transaction (IntegrityError)
