"""上门办: the home-visit request queue and the block agent's visit, submitted from a phone.

A request (from the counter, a block agent or the center taking a resident's call) names an
address, a reason (年老 / 残疾 / 重病 …), a preferred time and the street point that serves
the resident (an outlet with block agents whose grant carries the service's scope); it is due
``VISIT_DUE_WORKDAYS`` working days after the request (outlet/workdays.py). Staff of that
point (or the center) may name its block agent at once; a teller elsewhere refers the
resident, and the request waits unassigned (待派单) until the point's lead or the center
assigns it (``assign``, also to reassign until the agent arrives).

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

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from outlet import pii
from outlet.cases import visible_outlets
from outlet.clock import local_day
from outlet.errors import IllegalTransition, InvalidInput, NotAssigned, ServiceNotFound
from outlet.files import FileStore
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
from partners.catalog import DelegatedMatter, delegated_matters
from partners.delegation import delegated_action
from partners.models import Matter, Outlet, Staff, utcnow

VISIT_KINDS = ("咨询", "帮办", "代办")
VISIT_REASONS = ("年老", "残疾", "重病", "其他")
VISIT_CHANNELS = ("窗口", "网格员", "中心来电")
# Local practice (e.g. Sanyuan 家里办): a home visit within 3 working days of the request.
VISIT_DUE_WORKDAYS = 3
VISIT_STATES = {"unassigned": "待派单", "assigned": "待上门", "arrived": "已到达", "done": "已办结"}
VISIT_SCOPES = frozenset({"咨询", "帮办", "代办"})  # the grant scopes a home visit may need
MAX_PHOTOS = 6
MAX_NOTE = 500  # characters of an outcome or handover note (the column's size)
# The refusal of another agent's submission: no edit can fix it, the phone offers 放弃 / 保留.
REASSIGNED = "已改派给其他网格员，请联系服务站负责人"


@dataclass
class NewVisit:
    kind: str
    contact_name: str
    address: str
    reason: str
    assignee_id: int | None = None  # None: 待派单 (the point's lead or the center assigns)
    outlet_id: int | None = None  # the serving street point; None: the actor's own outlet
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


@dataclass(frozen=True)
class VisitPoint:
    """A street point a home visit may be asked of: an active outlet with active block agents
    and a grant in force carrying 咨询, 帮办 or 代办 (for ``matters``)."""

    outlet: Outlet
    agents: list[Staff]
    matters: list[DelegatedMatter]


def visit_points(session: Session, at: datetime) -> list[VisitPoint]:
    """Where a home visit may be asked for at ``at`` (the form's 服务站 choices; the request
    itself is authorized at the chosen point with the service's own scope and matter)."""
    by_outlet: dict[int, tuple[Outlet, list[Staff]]] = {}
    for agent, outlet in street_agents(session):
        assert outlet.id is not None
        by_outlet.setdefault(outlet.id, (outlet, []))[1].append(agent)
    points = []
    for outlet, agents in by_outlet.values():
        matters = [dm for dm in delegated_matters(session, outlet, at) if dm.scopes & VISIT_SCOPES]
        if matters:
            points.append(VisitPoint(outlet, agents, matters))
    return points


PHONE_COLUMN = "home_visit.contact_phone"  # sealed at rest (outlet/pii.py)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field, errors={field: message})


def request_visit(engine: Engine, actor: Staff, data: NewVisit, *, pii_key: bytes,
                  at: datetime | None = None) -> HomeVisit:
    """Queue a home visit at the street point ``data.outlet_id`` (default: the actor's outlet;
    for the center, the named agent's). Authorized as ``visit.request`` at that point with the
    kind's scope (帮办 / 代办 / 咨询, for the matter if one is named) — a teller of another
    outlet refers the resident (no membership of the point needed). An agent may be named only
    by staff of the point or the center; otherwise the request is 待派单 until ``assign``.
    The contact's phone is stored sealed with ``pii_key`` (:func:`contact_phone` opens it).

    Raises InvalidInput (422) for bad input, ActionRefused (403) when not authorized."""
    d = data.validate()
    center = "admin" in actor.role_set and actor.outlet_id is None
    now = at or utcnow()
    with Session(engine, expire_on_commit=False) as s:
        target = d.outlet_id
        if target is None and center and d.assignee_id:  # the center: the agent's street point
            agent = s.get(Staff, d.assignee_id)
            target = agent.outlet_id if agent is not None else None
        target = target if target is not None else actor.outlet_id
        if target is None:
            raise _bad("outlet_id", "请选择服务站")
        outlet = s.get(Outlet, target)
        if outlet is None:
            raise _bad("outlet_id", "服务站不存在")
        matter = s.get(Matter, d.matter_id) if d.matter_id is not None else None
        if d.matter_id is not None and matter is None:  # 0 or a deleted id: never stored
            raise _bad("matter_id", "所选事项不存在")
        version = current_version(s, matter) if matter else None
        agents = {a.id for a in block_agents(s, target)}
        own = center or target in visible_outlets(s, actor)
    if d.assignee_id and not own:
        raise _bad("assignee_id", "其他服务站的上门服务由该站负责人派单，请不要指派网格员")
    if d.assignee_id and d.assignee_id not in agents:
        raise _bad("assignee_id", "只能指派该服务站在岗的网格帮办代办员")
    if not agents:
        raise _bad("outlet_id", f"「{outlet.name}」没有在岗的网格帮办代办员，不能上门服务")
    with delegated_action(engine, actor, "visit.request", matter=matter, outlet=outlet,
                          matter_version=version, at=now, scope=KIND_SCOPE[d.kind]) as act:
        s = act.session
        due = WorkCalendar.load(s).add_workdays(local_day(now), VISIT_DUE_WORKDAYS).day
        assert actor.id is not None and outlet.id is not None
        state = "assigned" if d.assignee_id else "unassigned"
        visit = HomeVisit(
            number=new_number(s, "SM", outlet, local_day(now)), outlet_id=outlet.id, kind=d.kind,
            matter_id=d.matter_id, contact_name=d.contact_name,
            contact_phone=pii.seal(pii_key, d.contact_phone, column=PHONE_COLUMN),
            address=d.address, reason=d.reason, reason_note=d.reason_note, preferred=d.preferred,
            requested_by=actor.id, requested_outlet_id=actor.outlet_id, requested_at=now,
            channel=d.channel, assignee_id=d.assignee_id, due_on=due, state=state,
        )
        s.add(visit)
        s.flush()
        act.case = visit.number
        act.state = (None, state)
    return visit


def assign(engine: Engine, actor: Staff, number: str, assignee_id: int | None,
           at: datetime | None = None) -> HomeVisit:
    """派单 / 改派: give the visit to one of its street point's active block agents.

    ``visit.assign``: the point's lead (or an AB角 backup of that post) or the center admin;
    audited with the state (待派单 → 待上门, or 待上门 → 待上门 for a reassignment). Allowed
    until the agent arrives; after that IllegalTransition (409, audited). Raises
    ServiceNotFound (404) for a visit outside the actor's outlets (the requesting outlet's
    staff see it but do not assign), RoleLacksAction / WrongOutlet (403, audited),
    InvalidInput (422) for an agent who is not one of the point's."""
    now = at or utcnow()
    with Session(engine, expire_on_commit=False) as s:
        visit = load_visit(s, actor, number, serving=True)
        outlet = s.get(Outlet, visit.outlet_id)
        agents = {a.id: a for a in block_agents(s, visit.outlet_id)}
    with delegated_action(engine, actor, "visit.assign", outlet=outlet, case=number, at=now) as act:
        row: HomeVisit = act.session.exec(
            select(HomeVisit).where(HomeVisit.number == number).with_for_update()).one()
        act.state = (row.state, row.state)
        if row.state not in ("unassigned", "assigned"):
            raise IllegalTransition(f"该上门服务{VISIT_STATES[row.state]}，网格员已上门，不能改派")
        if assignee_id not in agents:
            raise _bad("assignee_id", "请选择该服务站在岗的网格帮办代办员")
        if assignee_id == row.assignee_id:
            raise _bad("assignee_id", f"已指派给{agents[assignee_id].display_name}，无需改派")
        row.assignee_id, row.state = assignee_id, "assigned"
        act.session.add(row)
        act.state = (act.state[0], "assigned")
    return row


def contact_phone(visit: HomeVisit, pii_key: bytes) -> str:
    """The visit contact's phone in clear (for its block agent to call)."""
    return pii.unseal(pii_key, visit.contact_phone, column=PHONE_COLUMN)


def load_visit(session: Session, actor: Staff, number: str, *, serving: bool = False) -> HomeVisit:
    """A visit served by one of the actor's outlets or asked for there (``serving``: served
    only); center admins: any. Else ServiceNotFound (404, never says whose it is)."""
    visit = session.exec(select(HomeVisit).where(HomeVisit.number == number)).first()
    if visit is None:
        raise ServiceNotFound("未找到该上门服务")
    if "admin" in actor.role_set and actor.outlet_id is None:
        return visit
    mine = visible_outlets(session, actor)
    if visit.outlet_id not in mine and (serving or visit.requested_outlet_id not in mine):
        raise ServiceNotFound("未找到该上门服务")
    return visit


def visit_queue(session: Session, actor: Staff, *, assignee_only: bool = False,
                include_done_on: date | None = None) -> list[HomeVisit]:
    """Open visits served by the actor's outlets or asked for there (or only those assigned
    to the actor), due first; ``include_done_on`` adds the visits finished that Beijing day."""
    stmt = select(HomeVisit).order_by(col(HomeVisit.due_on), col(HomeVisit.id))
    if not ("admin" in actor.role_set and actor.outlet_id is None):
        mine = visible_outlets(session, actor)
        stmt = stmt.where(or_(col(HomeVisit.outlet_id).in_(mine),
                              col(HomeVisit.requested_outlet_id).in_(mine)))
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
    if visit.assignee_id is None:
        raise NotAssigned("该上门服务尚未派单，请等待服务站负责人派单")
    if visit.assignee_id != act.actor_id:  # e.g. 改派 while this agent worked offline
        raise NotAssigned(REASSIGNED)
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
