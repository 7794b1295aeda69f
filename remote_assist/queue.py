"""Assist requests and the expert queue: create, route by domain and level with
town → district → city escalation, position and estimated wait, accept, call-back slots.

Routing rule: a request is offered first to town-level experts of its domain; each
``escalate_after_seconds`` without an answer opens it to the next level up. Experts
without a level count as city level; experts without a domain take every domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from outlet.clock import CHINA_OFFSET, local_day
from outlet.models import Applicant, Case
from outlet.workdays import WorkCalendar
from partners.authorize import covered_outlets
from partners.delegation import delegated_action
from partners.models import Matter, MatterVersion, Outlet, Staff, utcnow
from remote_assist.actions import assist_action
from remote_assist.config import AssistConfig
from remote_assist.errors import AlreadyTaken, InvalidInput, NotFound, NotOffered
from remote_assist.models import (
    KIND_LABELS,
    LEVELS,
    AssistCallback,
    AssistInspection,
    AssistRequest,
    AssistSession,
)

OPEN_STATUSES = ("waiting", "callback")
# Half-hour call-back slots inside the center's opening hours (Beijing time).
SLOT_WINDOWS = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 0)))


def level_rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS) - 1


def due_level(req: AssistRequest, now: datetime, cfg: AssistConfig) -> str:
    """The routing level the request has reached by ``now``."""
    waited = max(0.0, (now - req.created_at).total_seconds())
    steps = int(waited // cfg.escalate_after_seconds) if cfg.escalate_after_seconds > 0 else 2
    return LEVELS[min(len(LEVELS) - 1, steps)]


def offered_to(expert: Staff, req: AssistRequest, now: datetime, cfg: AssistConfig) -> bool:
    """Whether ``req`` shows in ``expert``'s queue at ``now``."""
    if "expert" not in expert.role_set or not expert.active:
        return False
    if expert.domain and expert.domain != req.domain:
        return False
    if req.status == "callback":
        return True  # a booked call-back is open to every expert of the domain
    return level_rank(expert.expert_level) <= level_rank(due_level(req, now, cfg))


def _case_for(session: Session, actor: Staff, case_id: int, now: datetime) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("未找到该办件")
    if case.outlet_id != actor.outlet_id and case.outlet_id not in covered_outlets(session, actor, now):
        raise NotFound("未找到该办件")
    return case


def create_request(
    engine: Engine, actor: Staff, *, kind: str, case_id: int | None = None,
    matter_id: int | None = None, topic: str = "", now: datetime | None = None,
) -> AssistRequest:
    """A teller asks for 视频帮办 or 远程勘验 (audited as ``assist.request``)."""
    now = now or utcnow()
    if kind not in KIND_LABELS:
        raise InvalidInput("请选择视频帮办或远程勘验", field="kind")
    topic = " ".join(topic.split())[:200]
    with Session(engine, expire_on_commit=False) as s:
        case = _case_for(s, actor, case_id, now) if case_id else None
        if case is not None:
            matter = s.get(Matter, case.matter_id)
            version = s.get(MatterVersion, case.matter_version_id)
            outlet = s.get(Outlet, case.outlet_id)
            applicant = s.get(Applicant, case.applicant_id)
            subject = applicant.pseudonym if applicant else None
        else:
            if kind == "inspection":
                raise InvalidInput("远程勘验须从办件发起", field="kind")
            matter = s.get(Matter, matter_id) if matter_id else None
            if matter is None:
                raise InvalidInput("请选择咨询的事项", field="matter_id")
            version = s.exec(
                select(MatterVersion).where(
                    MatterVersion.matter_id == matter.id, MatterVersion.version == matter.current_version
                )
            ).first()
            outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
            subject = None
        if outlet is None or matter is None or version is None:
            raise NotFound()
        if kind == "inspection" and not version.inspection_checklist:
            raise InvalidInput("该事项没有勘验要点，不能申请远程勘验", field="kind")
    with delegated_action(
        engine, actor, "assist.request", matter=matter, outlet=outlet,
        case=case.number if case else None, subject=subject, matter_version=version, at=now,
    ) as act:
        s = act.session
        if case is not None:
            busy = s.exec(
                select(AssistRequest).where(
                    AssistRequest.case_id == case.id,
                    col(AssistRequest.status).in_((*OPEN_STATUSES, "accepted")),
                )
            ).first()
            if busy is not None:
                raise AlreadyTaken("该办件已有进行中的视频帮办请求")
        assert actor.id is not None and outlet.id is not None
        req = AssistRequest(
            kind=kind, case_id=case.id if case else None, outlet_id=outlet.id,
            matter_id=matter.id, matter_version_id=version.id, domain=version.domain,
            topic=topic, requested_by=actor.id, created_at=now,
            recording_required=kind == "inspection" or bool(version.recording_required),
        )
        s.add(req)
        s.flush()
        act.state = (None, "waiting")
    return req


def load_request(session: Session, actor: Staff, request_id: int) -> AssistRequest:
    """The request if ``actor`` may see it: its outlet's staff, or an expert of its domain."""
    req = session.get(AssistRequest, request_id)
    if req is None:
        raise NotFound()
    if actor.outlet_id is not None and (
        req.outlet_id == actor.outlet_id or req.outlet_id in covered_outlets(session, actor, utcnow())
    ):
        return req
    if "expert" in actor.role_set and (not actor.domain or actor.domain == req.domain):
        return req
    raise NotFound()


@dataclass
class QueueItem:
    request: AssistRequest
    outlet_name: str
    matter_name: str
    case_number: str | None
    position: int
    waited_seconds: int
    level: str
    checklist: list[str]
    callback_at: datetime | None


def position_of(session: Session, req: AssistRequest) -> int:
    """1 + open requests of the same domain that came earlier."""
    ahead = session.exec(
        select(func.count()).select_from(AssistRequest).where(
            AssistRequest.domain == req.domain, AssistRequest.status == "waiting",
            col(AssistRequest.id) < req.id,
        )
    ).one()
    return int(ahead) + 1


def estimated_wait(session: Session, req: AssistRequest, experts_online: int, cfg: AssistConfig) -> int:
    """Seconds until an expert is likely free for this request: with free experts online,
    the requests ahead of it shared among them; with none free, one more round as well.
    The round is the mean handling time of the domain's last 20 calls."""
    recent = session.exec(
        select(AssistRequest.handle_seconds).where(
            AssistRequest.domain == req.domain, col(AssistRequest.handle_seconds).is_not(None)
        ).order_by(col(AssistRequest.id).desc()).limit(20)
    ).all()
    times = [h for h in recent if h is not None]
    mean = sum(times) / len(times) if times else cfg.default_handle_seconds
    busy = session.exec(
        select(func.count()).select_from(AssistRequest).where(
            AssistRequest.domain == req.domain, AssistRequest.status == "accepted"
        )
    ).one()
    free = experts_online - int(busy)
    position = position_of(session, req)
    if free > 0:
        return int((position - 1) * mean / free)
    return int(position * mean / max(1, experts_online))


def expert_queue(session: Session, expert: Staff, now: datetime, cfg: AssistConfig) -> list[QueueItem]:
    """Open requests offered to ``expert``: waiting ones oldest first, then call-backs by slot."""
    rows = session.exec(
        select(AssistRequest, Outlet.name, MatterVersion)
        .join(Outlet, col(Outlet.id) == AssistRequest.outlet_id)
        .join(MatterVersion, col(MatterVersion.id) == AssistRequest.matter_version_id)
        .where(col(AssistRequest.status).in_(OPEN_STATUSES))
        .order_by(col(AssistRequest.created_at))
    ).all()
    items: list[QueueItem] = []
    position: dict[str, int] = {}
    for req, outlet_name, version in rows:
        if req.status == "waiting":
            position[req.domain] = position.get(req.domain, 0) + 1
        if not offered_to(expert, req, now, cfg):
            continue
        case = session.get(Case, req.case_id) if req.case_id else None
        cb = session.exec(select(AssistCallback).where(AssistCallback.request_id == req.id)).first()
        items.append(QueueItem(
            req, outlet_name, version.name, case.number if case else None,
            position.get(req.domain, 0), int((now - req.created_at).total_seconds()),
            due_level(req, now, cfg), list(version.inspection_checklist) if req.kind == "inspection" else [],
            cb.slot_start if cb else None,
        ))
    items.sort(key=lambda i: (i.request.status == "callback", i.callback_at or i.request.created_at))
    return items


def outlet_requests(session: Session, actor: Staff, limit: int = 20) -> list[AssistRequest]:
    """Recent requests of the actor's outlet, newest first."""
    return list(session.exec(
        select(AssistRequest).where(AssistRequest.outlet_id == actor.outlet_id)
        .order_by(col(AssistRequest.id).desc()).limit(limit)
    ).all())


def accept(engine: Engine, expert: Staff, request_id: int, *, now: datetime | None = None,
           cfg: AssistConfig | None = None) -> AssistSession:
    """The expert takes the request: a call session for exactly the two of them."""
    now = now or utcnow()
    cfg = cfg or AssistConfig()
    assert expert.id is not None
    with assist_action(engine, expert, "assist.accept", request_id, at=now) as (act, ctx):
        s = act.session
        req = s.exec(select(AssistRequest).where(AssistRequest.id == request_id).with_for_update()).one()
        if req.status not in OPEN_STATUSES:
            raise AlreadyTaken()
        if not offered_to(expert, req, now, cfg):  # the same rule as the expert's queue page
            raise NotOffered()
        mine = s.exec(select(AssistSession).where(
            AssistSession.expert_id == expert.id, AssistSession.state == "active")).first()
        if mine is not None:
            raise AlreadyTaken("您有一个通话尚未结束，请先挂断再接听新的请求")
        before = req.status
        req.status, req.accepted_at, req.accepted_by = "accepted", now, expert.id
        req.level = due_level(req, now, cfg) if before == "waiting" else req.level
        req.wait_seconds = int((now - req.created_at).total_seconds())
        s.add(req)
        assert req.id is not None
        call = AssistSession(request_id=req.id, teller_id=req.requested_by, expert_id=expert.id,
                             created_at=now, last_activity=now)
        s.add(call)
        s.flush()
        assert call.id is not None
        if req.kind == "inspection":
            checklist = list(ctx.version.inspection_checklist) if ctx.version else []
            s.add(AssistInspection(session_id=call.id, case_id=req.case_id, checklist=checklist))
        cb = s.exec(select(AssistCallback).where(AssistCallback.request_id == req.id)).first()
        if cb is not None:
            cb.status = "done"
            s.add(cb)
        act.state = (before, "accepted")
    return call


def cancel(engine: Engine, actor: Staff, request_id: int, *, now: datetime | None = None) -> AssistRequest:
    """The outlet withdraws a request nobody has taken yet."""
    now = now or utcnow()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        req = load_request(s, actor, request_id)
        if actor.outlet_id is None:
            raise NotFound()
        if req.status not in OPEN_STATUSES:
            raise AlreadyTaken("该请求已被接听或已结束，不能取消")
        req.status, req.ended_at = "cancelled", now
        s.add(req)
        for cb in s.exec(select(AssistCallback).where(AssistCallback.request_id == req.id)).all():
            cb.status = "cancelled"
            s.add(cb)
    return req


def callback_slots(session: Session, domain: str, now: datetime, cfg: AssistConfig,
                   count: int = 8) -> list[tuple[datetime, bool]]:
    """The next ``count`` call-back slots (naive UTC start, has room) on working days."""
    experts = session.exec(
        select(func.count()).select_from(Staff).where(
            col(Staff.roles).contains("expert"), Staff.active,
            or_(col(Staff.domain) == domain, col(Staff.domain).is_(None)),
        )
    ).one()
    capacity = max(1, int(experts))
    cal = WorkCalendar.load(session)
    step = timedelta(minutes=cfg.callback_slot_minutes)
    earliest = now + step
    out: list[tuple[datetime, bool]] = []
    day = local_day(now)
    for _ in range(30):
        if cal.is_workday(day):
            for start, end in SLOT_WINDOWS:
                t = datetime.combine(day, start) - CHINA_OFFSET
                stop = datetime.combine(day, end) - CHINA_OFFSET
                while t + step <= stop and len(out) < count:
                    if t >= earliest:
                        taken = session.exec(
                            select(func.count()).select_from(AssistCallback).where(
                                AssistCallback.domain == domain, AssistCallback.slot_start == t,
                                AssistCallback.status == "booked")
                        ).one()
                        out.append((t, int(taken) < capacity))
                    t += step
        if len(out) >= count:
            break
        day += timedelta(days=1)
    return out


def book_callback(engine: Engine, actor: Staff, request_id: int, slot_start: datetime, *,
                  now: datetime | None = None, cfg: AssistConfig | None = None) -> AssistCallback:
    """Book a call-back slot for a waiting request (the request leaves the live queue)."""
    now = now or utcnow()
    cfg = cfg or AssistConfig()
    assert actor.id is not None
    with Session(engine, expire_on_commit=False) as s, s.begin():
        req = load_request(s, actor, request_id)
        if actor.outlet_id is None or req.status != "waiting":
            raise AlreadyTaken("只有等待中的请求可以预约回拨")
        assert req.id is not None
        free = {t for t, room in callback_slots(s, req.domain, now, cfg, count=40) if room}
        if slot_start not in free:
            raise InvalidInput("该时段已约满或不可预约，请选择其他时段", field="slot")
        cb = AssistCallback(request_id=req.id, domain=req.domain, slot_start=slot_start,
                            slot_minutes=cfg.callback_slot_minutes, booked_by=actor.id, booked_at=now)
        req.status = "callback"
        s.add(req)
        s.add(cb)
    return cb


def sweep_requests(engine: Engine, now: datetime, cfg: AssistConfig) -> set[str]:
    """Escalate and expire waiting requests; returns the domains whose queue changed."""
    changed: set[str] = set()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        for req in s.exec(select(AssistRequest).where(AssistRequest.status == "waiting")).all():
            if (now - req.created_at).total_seconds() >= cfg.expire_after_seconds:
                req.status, req.ended_at = "expired", now
            else:
                level = due_level(req, now, cfg)
                if level == req.level:
                    continue
                req.level, req.escalated_at = level, now
            s.add(req)
            changed.add(req.domain)
    return changed
