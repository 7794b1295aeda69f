"""Submitting a rating through one of the three channels; each is one audited
``rating.submit`` entry (see docs/audit.md, "Ratings"), and a 差评 opens its work order in
the same transaction.

* :func:`submit_qr` — the applicant, with case number + check code (real-name; the check
  code is verified with the status page's per-case lockout, ``outlet.status``);
* :func:`submit_device` — the 评价器 at a counter (anonymous, rates the staff member the
  device is paired with);
* :func:`submit_call` — entered on the teller's screen after a 视频帮办 / 远程勘验 session
  (rates the expert; real-name when the session belongs to a case).

Rules (DOMAIN.md "Ratings"): one rating per case per stage (a second is refused, it
replaces nothing); 办结后 only for a completed case and only within ``window_days`` working
days after completion (Shandong: 5); a replayed form (same nonce) is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from outlet import pii, status
from outlet.clock import local_day
from outlet.devices import Device
from outlet.models import Applicant, Case
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import (
    BAD_MAX,
    STAGES,
    RatingError,
    RatingInput,
    RatingNotFound,
    RatingRefused,
    policy,
)
from outlet.states import COMPLETED
from outlet.workdays import WorkCalendar
from partners.authorize import local_day as china_day
from partners.delegation import ActionContext, delegated_action, unattended_action
from partners.models import BackupAssignment, Matter, MatterVersion, Outlet, Staff, utcnow
from remote_assist.models import AssistRequest, AssistSession

NOT_RATEABLE = frozenset({"draft", "refused", "withdrawn"})
PHONE_COLUMN = "rating.contact_phone"  # sealed at rest (outlet/pii.py)


@dataclass
class Target:
    """What is rated, through which channel, and who may be called back."""

    outlet_id: int
    object: str
    stage: str
    channel: str
    real_name: bool
    case: Case | None = None
    staff_id: int | None = None
    device_id: int | None = None
    assist_session_id: int | None = None
    entered_by: int | None = None
    reasons_version: int = 1
    pii_key: bytes | None = None  # seals an anonymous rater's call-back number

    @property
    def dedupe_key(self) -> str | None:
        if self.assist_session_id is not None:
            return f"assist:{self.assist_session_id}"
        if self.case is not None:
            return f"case:{self.case.id}:{self.stage}"
        return None  # anonymous device ratings: the nonce alone refuses a replay


def _check_stage(session: Session, target: Target, now: datetime) -> None:
    case = target.case
    if target.stage not in STAGES:
        raise RatingError("评价阶段无效", field="stage")
    if case is None:
        return
    if case.state in NOT_RATEABLE:
        raise RatingRefused("该办件未受理，不能评价", code="not_rateable")
    if target.object == "assist":  # assist: after the call
        return
    check_case_stage(session, case, target.stage, now)


QR_STAGES = ("during", "after")  # all the QR form ever offers; 办事前 is rated at the 评价器



def check_case_stage(session: Session, case: Case, stage: str, now: datetime) -> None:
    """The stage rules of a case rating: 办事前/办理中 only before completion; 办结后 only
    for a completed case, within ``window_days`` working days. Raises :class:`RatingRefused`."""
    if stage != "after":
        if case.state in COMPLETED:  # the service is over: only 办结后 is left to rate
            raise RatingRefused(f"该办件已办结，不能再进行{STAGES[stage]}评价，请选择办结后评价",
                                code="stage_passed")
        return
    if case.state not in COMPLETED or case.completed_at is None:
        raise RatingRefused("该办件尚未办结，不能进行办结后评价", code="not_completed")
    days = policy(session).window_days
    last = WorkCalendar.load(session).add_workdays(local_day(case.completed_at), days).day
    if china_day(now) > last:
        raise RatingRefused(f"办结后评价须在办结后{days}个工作日内提交（截止 {last}）",
                            code="window_closed")


def _store(ctx: ActionContext, target: Target, data: RatingInput) -> Rating:
    """Checks that need the transaction, then the rating row, its leaf and (for a 差评)
    the work order. Raises :class:`RatingRefused` (audited) or :class:`RatingError`."""
    s = ctx.session
    _check_stage(s, target, ctx.at)
    key = target.dedupe_key
    same = [col(Rating.nonce) == data.nonce]
    if key is not None:  # (== None would match every anonymous rating)
        same.append(col(Rating.dedupe_key) == key)
    clash = s.exec(select(Rating.dedupe_key, Rating.nonce).where(or_(*same))).first()
    if clash is not None and clash[1] == data.nonce:
        raise RatingRefused("该评价已提交，请勿重复提交", code="replayed_form")
    if clash is not None and target.assist_session_id is not None:
        raise RatingRefused("本次视频帮办的评价已提交，每次视频帮办只能评价一次，已有评价不会被替换",
                            code="already_rated")
    if clash is not None:
        raise RatingRefused(f"该办件的{STAGES[target.stage]}评价已提交，每个阶段只能评价一次，"
                            "已有评价不会被替换", code="already_rated")
    text = data.text or None
    phone = (data.contact_phone or "") if not target.real_name else ""
    if phone and target.pii_key is None:
        raise ValueError("an anonymous rater's phone needs the pii key to be stored sealed")
    rating = Rating(
        outlet_id=target.outlet_id, case_id=target.case.id if target.case else None,
        staff_id=target.staff_id, assist_session_id=target.assist_session_id,
        device_id=target.device_id, entered_by=target.entered_by, object=target.object,
        stage=target.stage, channel=target.channel, level=data.level,
        efficiency=data.dimensions.get("efficiency"), competence=data.dimensions.get("competence"),
        attitude=data.dimensions.get("attitude"), reasons=list(data.reasons),
        reasons_version=target.reasons_version, text=text,
        contact_phone=pii.seal(target.pii_key or b"", phone, column=PHONE_COLUMN) if phone else None,
        real_name=target.real_name, dedupe_key=key, nonce=data.nonce, created_at=ctx.at,
    )
    s.add(rating)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent submit of the same stage or form
        raise RatingRefused("该评价已提交，请勿重复提交", code="already_rated") from exc
    ctx.extra["rating"] = {
        "level": data.level, "stage": target.stage, "channel": target.channel,
        "dimensions": {"overall": data.level, **data.dimensions}, "reasons": list(data.reasons),
        "real_name": target.real_name, "object": target.object,
    }
    if text:
        ctx.add_digest("text", hashlib.sha256(text.encode("utf-8")).hexdigest())

    def remember(index: int) -> None:
        rating.audit_index = index
        s.add(rating)

    ctx.on_recorded.append(remember)
    if data.level <= BAD_MAX:
        order = _open_work_order(s, rating, ctx.at)
        ctx.state = (None, "open")
        ctx.extra["terms"] = {"due": order.rectify_due.isoformat()}  # 差评整改率 from the log
    return rating


def _center_owner(s: Session, expert_id: int | None) -> Staff | None:
    """The center unit answering for an expert: an active reviewer of the expert's domain,
    else one covering every domain, else a center admin (lowest id first: stable)."""
    expert = s.get(Staff, expert_id) if expert_id else None
    domain = expert.domain if expert else None
    center = list(s.exec(select(Staff).where(col(Staff.outlet_id).is_(None), col(Staff.active))
                         .order_by(col(Staff.id))).all())
    reviewers = [st for st in center if "reviewer" in st.role_set]
    for pick in ([r for r in reviewers if domain and r.domain == domain],
                 [r for r in reviewers if not r.domain],
                 [a for a in center if "admin" in a.role_set]):
        if pick:
            return pick[0]
    return None


def _open_work_order(s: Session, rating: Rating, now: datetime) -> RatingWorkOrder:
    """Owner: the outlet's lead — or, for a 差评 of a video-session expert, the expert's
    center unit (:func:`_center_owner`, issue 11 §2); alternate: the owner's AB角 backup
    in force today."""
    assert rating.id is not None
    pol, cal, today = policy(s), WorkCalendar.load(s), china_day(now)
    unit = "center" if rating.object == "assist" else "outlet"
    if unit == "center":
        owner = _center_owner(s, rating.staff_id)
    else:
        owner = s.exec(select(Staff).where(Staff.outlet_id == rating.outlet_id, col(Staff.active),
                                           col(Staff.roles).contains("outlet_lead"))
                       .order_by(col(Staff.id))).first()
    backup = None
    if owner is not None:
        backup = s.exec(select(BackupAssignment.backup_id).where(
            BackupAssignment.holder_id == owner.id, BackupAssignment.valid_from <= today,
            or_(col(BackupAssignment.valid_to).is_(None), col(BackupAssignment.valid_to) >= today),
        )).first()
    order = RatingWorkOrder(
        rating_id=rating.id, outlet_id=rating.outlet_id, unit=unit,
        owner_id=owner.id if owner else None, backup_id=backup, opened_at=now,
        callback_due=cal.add_workdays(today, pol.callback_days).day,
        rectify_due=cal.add_workdays(today, pol.rectify_days).day,
    )
    s.add(order)
    return order


def submit_qr(engine: Engine, number: str, check_code: str, stage: str, data: RatingInput,
              *, reasons_version: int, at: datetime | None = None) -> Rating:
    """The applicant's rating from the receipt's QR code. Raises ``WrongCheckCode`` (404) as
    the status page does (the web layer throttles guesses, :mod:`web.throttle`),
    :class:`RatingRefused` (409)."""
    now = at or utcnow()
    status.lookup(engine, number, check_code)
    with Session(engine, expire_on_commit=False) as s:
        case = s.exec(select(Case).where(Case.number == number)).one()
        outlet, matter = s.get(Outlet, case.outlet_id), s.get(Matter, case.matter_id)
        version, applicant = s.get(MatterVersion, case.matter_version_id), s.get(
            Applicant, case.applicant_id)
        assert outlet and matter and version and applicant
    target = Target(outlet_id=case.outlet_id, object="case", stage=stage, channel="qr",
                    real_name=True, case=case, staff_id=case.created_by,
                    reasons_version=reasons_version)
    with unattended_action(engine, actor_id=0, role="applicant", action="rating.submit",
                           outlet=outlet, case=case.number, subject=applicant.pseudonym,
                           at=now) as ctx:
        ctx.set_matter(matter, version.version)
        rating = _store(ctx, target, data)
    return rating


def submit_device(engine: Engine, device: Device, stage: str, data: RatingInput, *,
                  reasons_version: int, link_token: str = "", pii_key: bytes | None = None,
                  at: datetime | None = None) -> Rating:
    """A rating at the 评价器. Without ``link_token``: anonymous — 办理中 of the staff member
    the device is paired with, 办事前 of the outlet (the waiting and the place). With the
    token of the case the teller linked (:mod:`outlet.ratings.padlink`): a real-name rating
    of that case (办理中, or 办结后 for a completed case handed over at the counter), which
    uses the link up. A token that is no longer the pad's link is refused (audited): the
    case changed. An anonymous rater's phone is stored sealed with ``pii_key`` (ValueError
    without it)."""
    from outlet.ratings import padlink
    from outlet.ratings.models import RatingPadLink

    now = at or utcnow()
    with Session(engine, expire_on_commit=False) as s:
        outlet = s.get(Outlet, device.outlet_id)
        linked = padlink.current(s, device, at=now) if link_token else None
        case = s.get(Case, linked.case_id) if linked and linked.token == link_token else None
        matter = s.get(Matter, case.matter_id) if case else None
        version = s.get(MatterVersion, case.matter_version_id) if case else None
        applicant = s.get(Applicant, case.applicant_id) if case else None
    assert outlet is not None and device.id is not None
    if case is None and stage not in ("before", "during"):
        raise RatingError("评价器只用于办事前或办理中评价", field="stage")
    if case is not None:
        stage = padlink.pad_stage(case.state)
    # 办事前 without a case is about the waiting and the place: the outlet, not the teller
    about_outlet = case is None and stage == "before"
    target = Target(outlet_id=device.outlet_id,
                    object="case" if case else ("outlet" if about_outlet else "staff"),
                    stage=stage, channel="device", real_name=case is not None, case=case,
                    staff_id=None if about_outlet else device.staff_id, device_id=device.id,
                    reasons_version=reasons_version, pii_key=pii_key)
    with unattended_action(engine, actor_id=device.id, role="device", action="rating.submit",
                           outlet=outlet, case=case.number if case else None,
                           subject=applicant.pseudonym if applicant else None, at=now) as ctx:
        if link_token and case is None:
            raise RatingRefused("窗口的办件已变更，请重新评价", code="link_changed")
        if matter is not None and version is not None:
            ctx.set_matter(matter, version.version)
        rating = _store(ctx, target, data)
        if case is not None:  # the link is used up: the next applicant starts anonymous
            row = ctx.session.get(RatingPadLink, device.id)
            if row is not None and row.token == link_token:
                ctx.session.delete(row)
    return rating


def session_of_teller(engine: Engine, actor: Staff, assist_session_id: int) -> AssistSession:
    """The video session ``assist_session_id`` if ``actor`` is its teller, else
    :class:`RatingNotFound` (404: an unknown and another teller's session look the same)."""
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(AssistSession, assist_session_id)
    if row is None or row.teller_id != actor.id:
        raise RatingNotFound("未找到该视频帮办记录")
    return row


def submit_call(engine: Engine, actor: Staff, assist_session_id: int, data: RatingInput, *,
                reasons_version: int, pii_key: bytes | None = None,
                at: datetime | None = None) -> Rating:
    """The applicant's rating of the expert after a video session, entered on the teller's
    screen (turned towards the applicant). Only the session's teller, after it ended."""
    with Session(engine, expire_on_commit=False) as s:
        row = s.exec(select(AssistSession, AssistRequest)
                     .join(AssistRequest, col(AssistRequest.id) == AssistSession.request_id)
                     .where(AssistSession.id == assist_session_id)).first()
        if row is None:
            raise RatingNotFound("未找到该视频帮办记录")
        session_row, request = row
        outlet = s.get(Outlet, request.outlet_id)
        case = s.get(Case, request.case_id) if request.case_id else None
        applicant = s.get(Applicant, case.applicant_id) if case else None
    assert outlet is not None
    target = Target(outlet_id=outlet.id or 0, object="assist", stage="after", channel="call",
                    real_name=case is not None, case=case, staff_id=session_row.expert_id,
                    assist_session_id=assist_session_id, entered_by=actor.id,
                    reasons_version=reasons_version, pii_key=pii_key)
    with delegated_action(engine, actor, "rating.submit", outlet=outlet,
                          case=case.number if case else None,
                          subject=applicant.pseudonym if applicant else None, at=at) as ctx:
        if session_row.teller_id != actor.id or session_row.ended_at is None:
            raise RatingRefused("只能在本人发起且已结束的视频帮办后录入评价", code="not_session_teller")
        rating = _store(ctx, target, data)
    return rating
