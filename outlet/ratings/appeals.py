"""申诉复核: the rated staff member appeals a 差评 within ``appeal_days`` working days (3);
a center reviewer (or admin) decides within ``decide_days`` (5). Upheld → the rating is
marked excluded (误评 / 恶意差评) and leaves the figures — it is never deleted; rejected →
nothing changes. An upheld appeal also voids the rating's open work order (no deadline
runs any more; the steps recorded so far stay). Both steps are audited delegated actions (refusals too)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.clock import local_day as utc_local_day
from outlet.files import StoredFile
from outlet.models import Case
from outlet.ratings.models import Rating, RatingAppeal, RatingPolicy, RatingWorkOrder
from outlet.ratings.rules import (
    BAD_MAX,
    EXCLUDE_CATEGORIES,
    RatingError,
    RatingNotFound,
    RatingRefused,
    policy,
)
from outlet.ratings.workorders import FINISHED
from outlet.workdays import WorkCalendar
from partners.authorize import authorize, local_day
from partners.delegation import delegated_action
from partners.errors import ActionRefused
from partners.models import Outlet, Staff, utcnow

REASON_MAX = 500


def _load(engine: Engine, rating_id: int) -> tuple[Rating, Outlet, Case | None]:
    with Session(engine, expire_on_commit=False) as s:
        rating = s.get(Rating, rating_id)
        if rating is None:
            raise RatingNotFound("未找到该评价")
        outlet = s.get(Outlet, rating.outlet_id)
        case = s.get(Case, rating.case_id) if rating.case_id else None
    assert outlet is not None
    return rating, outlet, case


def appeal_last_day(cal: WorkCalendar, pol: RatingPolicy, rating: Rating) -> date:
    """The last day (Beijing) an appeal of ``rating`` may be filed: ``appeal_days`` working
    days after the day it was given (DOMAIN.md "Ratings", default 3)."""
    return cal.add_workdays(utc_local_day(rating.created_at), pol.appeal_days).day


def _refusal(s: Session, actor: Staff, rating: Rating, at: datetime) -> tuple[RatingPolicy, WorkCalendar]:
    """The appeal rules on ``rating`` at ``at`` (the rated staff member, a 差评, no earlier
    appeal, within ``appeal_days`` working days); raises :class:`RatingRefused`, else
    returns (policy, calendar)."""
    if rating.staff_id != actor.id:
        raise RatingRefused("只有被评价的工作人员本人可以申诉", code="not_rated_staff")
    if rating.level > BAD_MAX:
        raise RatingRefused("只能对差评提出申诉", code="not_bad_rating")
    if s.exec(select(RatingAppeal).where(RatingAppeal.rating_id == rating.id)).first():
        raise RatingRefused("该评价已提出过申诉", code="already_appealed")
    pol, cal = policy(s), WorkCalendar.load(s)
    last = appeal_last_day(cal, pol, rating)
    if local_day(at) > last:
        raise RatingRefused(f"申诉须在评价后{pol.appeal_days}个工作日内提出（截止 {last}）",
                            code="appeal_window_closed")
    return pol, cal


def appeal_refused(engine: Engine, actor: Staff, rating_id: int, *, at: datetime | None = None) -> bool:
    """Whether :func:`file_appeal` would refuse now (the authorization and the appeal rules,
    read only, nothing audited). The appeal route asks this before it stores an evidence
    file, so a refused appeal leaves no unused file in the store; the refusal itself is
    then audited by :func:`file_appeal`. RatingNotFound (404) for an unknown rating."""
    rating, outlet, _case = _load(engine, rating_id)
    with Session(engine) as s:
        try:
            authorize(s, actor, "rating.appeal", None, outlet, at or utcnow())
            _refusal(s, actor, rating, at or utcnow())
        except ActionRefused:
            return True
    return False


def file_appeal(engine: Engine, actor: Staff, rating_id: int, *, reason: str,
                evidence: bytes | None = None, evidence_file: StoredFile | None = None,
                at: datetime | None = None) -> RatingAppeal:
    """The rated staff member's appeal (reason required). Evidence is optional: a file
    already checked and stored by :class:`outlet.files.FileStore` (``evidence_file``: PDF,
    JPEG or PNG, size-limited, no active content; store it only when
    :func:`appeal_refused` says no) or raw ``evidence`` bytes kept as a digest only; the
    appeal and the leaf's ``digests`` carry its SHA-256. Raises RatingError (422),
    RatingRefused (409, audited), RatingNotFound (404)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise RatingError(f"请填写申诉理由（{REASON_MAX}字以内）", field="reason")
    rating, outlet, case = _load(engine, rating_id)
    with delegated_action(engine, actor, "rating.appeal", outlet=outlet,
                          case=case.number if case else None, at=at) as act:
        s = act.session
        act.extra["rating"] = {"entry": rating.audit_index or 0}
        pol, cal = _refusal(s, actor, rating, act.at)
        digest = (evidence_file.sha256 if evidence_file
                  else hashlib.sha256(evidence).hexdigest() if evidence else None)
        if digest:
            act.add_digest("evidence", digest)
        appeal = RatingAppeal(rating_id=rating_id, staff_id=actor.id or 0, reason=reason,
                              evidence_sha256=digest, filed_at=act.at,
                              evidence_type=evidence_file.content_type if evidence_file else None,
                              decide_due=cal.add_workdays(local_day(act.at), pol.decide_days).day)
        s.add(appeal)
        act.state = (None, "pending")
    return appeal


def decide_appeal(engine: Engine, actor: Staff, appeal_id: int, *, upheld: bool,
                  category: str = "", note: str = "", at: datetime | None = None) -> RatingAppeal:
    """The center's decision. Upheld needs a category (误评 / 恶意差评)."""
    note = (note or "").strip()
    if upheld and category not in EXCLUDE_CATEGORIES:
        raise RatingError("维持申诉须选择认定类别（误评或恶意差评）", field="category")
    if not note or len(note) > REASON_MAX:
        raise RatingError(f"请填写复核意见（{REASON_MAX}字以内）", field="note")
    with Session(engine) as s:
        found = s.get(RatingAppeal, appeal_id)
        if found is None:
            raise RatingNotFound("未找到该申诉")
        rating_id = found.rating_id
    rating, outlet, case = _load(engine, rating_id)
    with delegated_action(engine, actor, "rating.appeal_decide", outlet=outlet,
                          case=case.number if case else None, at=at) as act:
        s = act.session
        act.extra["rating"] = {"entry": rating.audit_index or 0}
        appeal = s.exec(select(RatingAppeal).where(RatingAppeal.id == appeal_id)
                        .with_for_update()).one()
        if appeal.state != "pending":
            raise RatingRefused("该申诉已复核", code="already_decided")
        appeal.state = "upheld" if upheld else "rejected"
        appeal.decided_by, appeal.decided_at = actor.id, act.at
        appeal.category, appeal.decision_note = (category if upheld else None), note
        s.add(appeal)
        if upheld:
            row = s.get(Rating, rating_id)
            assert row is not None
            row.excluded, row.excluded_reason = True, category
            s.add(row)
            order = s.exec(select(RatingWorkOrder).where(RatingWorkOrder.rating_id == rating_id)
                           .with_for_update()).first()
            if order is not None and order.state not in FINISHED:
                order.state = "void"  # nothing left to rectify; the steps so far stay
                s.add(order)
        act.state = ("pending", appeal.state)
    return appeal
