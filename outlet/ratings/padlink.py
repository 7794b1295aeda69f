"""The teller links the case being served to the counter's 评价器 (issue 11 §1.1): the
pad then shows the matter name (nothing else of the case) and the applicant's rating there
is a real-name rating of that case instead of an anonymous one of the staff member.

The link is kept server-side (:class:`RatingPadLink`, one per device); the pad learns of a
new link through the event hub (topic :func:`topic`, pushed over its WebSocket) and the
form carries the link's ``token``, so a rating is tied to exactly the case that was on
screen — a link replaced meanwhile is refused, never silently re-targeted. A link lapses
after :data:`LINK_MINUTES`, is used up by the rating, and stops counting as soon as the
linked case's stage is rated through any channel (the pad then falls back to the plain,
anonymous rating: a stale link never blocks the next applicant). The teller can also
withdraw it (:func:`unlink_case`). Linking and withdrawing are delegated actions of the
teller, audited as ``rating.pad_link`` / ``rating.pad_unlink`` (case number, no rating
field); a refused link is audited with its reason.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.cases import load_case
from outlet.devices import Device
from outlet.events import Hub
from outlet.models import Case
from outlet.ratings.models import Rating, RatingPadLink
from outlet.ratings.rules import STAGES, RatingRefused
from outlet.states import COMPLETED
from partners.delegation import delegated_action
from partners.models import MatterVersion, Outlet, Staff, utcnow

LINK_MINUTES = 30  # a counter service rarely takes longer; an old link must not linger
NOT_RATEABLE = frozenset({"draft", "refused", "withdrawn"})


class PadLinkRefused(RatingRefused):
    """The case cannot be linked to a pad (no pad at the teller's counter, not rateable);
    409, audited as a refused ``rating.pad_link``."""

    code = "pad_link_refused"
    message = "无法推送到评价器"


def topic(device_id: int) -> str:
    """Event hub topic of one 评价器."""
    return f"rating.pad.{device_id}"


def pad_stage(case_state: str) -> str:
    """The stage a linked case is rated in at the pad: 办结后 for a completed case handed
    over at the counter, else 办理中."""
    return "after" if case_state in COMPLETED else "during"


def stage_rated(session: Session, case_id: int, stage: str) -> bool:
    """Whether the case's ``stage`` already has its one rating (any channel)."""
    key = f"case:{case_id}:{stage}"
    return session.exec(select(Rating.id).where(Rating.dedupe_key == key)).first() is not None


@dataclass(frozen=True)
class Linked:
    """The link in force on a pad: what the pad may show (the matter name only)."""

    token: str
    case_id: int
    matter_name: str


def link_case(engine: Engine, hub: Hub, actor: Staff, number: str, *,
              at: datetime | None = None) -> Device:
    """Link case ``number`` (within the actor's scope, else ``CaseNotFound`` 404) to the
    评价器 paired with ``actor`` at the case's outlet and push it to the pad. Raises
    :class:`PadLinkRefused` (409) when the case is not rateable now — not accepted, its
    pad stage (:func:`pad_stage`) already rated or, once completed, past the 办结后 window —
    or no active pad is paired with the actor. Returns the device."""
    from outlet.ratings.submit import check_case_stage

    now = at or utcnow()
    with Session(engine) as s:  # out of scope: 404 like a read, nothing to audit
        case = load_case(s, actor, number).case
        outlet = s.get(Outlet, case.outlet_id)
    with delegated_action(engine, actor, "rating.pad_link", outlet=outlet, case=case.number,
                          at=now) as act:
        s = act.session
        if case.state in NOT_RATEABLE:
            raise PadLinkRefused("该办件未受理，不能请申请人评价")
        assert case.id is not None
        stage = pad_stage(case.state)
        if stage_rated(s, case.id, stage):
            raise PadLinkRefused(f"该办件的{STAGES[stage]}评价已提交（每个阶段只能评价一次），"
                                 "无需再推送到评价器")
        try:
            check_case_stage(s, case, stage, now)
        except RatingRefused as exc:
            raise PadLinkRefused(exc.message) from exc
        device = s.exec(select(Device).where(
            Device.kind == "rating_pad", Device.outlet_id == case.outlet_id,
            Device.staff_id == actor.id, col(Device.revoked_at).is_(None),
        ).order_by(col(Device.id).desc())).first()
        if device is None or device.id is None:
            raise PadLinkRefused("您的窗口没有配对评价器，请网点负责人在「终端设备」中配对")
        assert case.id is not None and actor.id is not None
        row = s.get(RatingPadLink, device.id) or RatingPadLink(
            device_id=device.id, case_id=case.id, token="", linked_by=actor.id)
        row.case_id, row.token, row.linked_by, row.linked_at = (
            case.id, secrets.token_urlsafe(16), actor.id, now)
        s.add(row)
        s.flush()
        act.state = (None, "linked")
        hub.publish_in(s, topic(device.id), {"linked": True})
    return device


def current(session: Session, device: Device, *, at: datetime | None = None) -> Linked | None:
    """The link in force on ``device`` (not lapsed, case still rateable, its pad stage not
    yet rated through any channel), or None: the pad then offers the plain rating."""
    if device.id is None:
        return None
    row = session.exec(select(RatingPadLink, Case.state, MatterVersion.name)
                       .join(Case, col(Case.id) == RatingPadLink.case_id)
                       .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
                       .where(RatingPadLink.device_id == device.id)).first()
    if row is None:
        return None
    link, state, name = row
    if state in NOT_RATEABLE or link.linked_at < (at or utcnow()) - timedelta(minutes=LINK_MINUTES):
        return None
    if stage_rated(session, link.case_id, pad_stage(state)):
        return None
    return Linked(link.token, link.case_id, name)


def unlink_case(engine: Engine, hub: Hub, actor: Staff, number: str, *,
                at: datetime | None = None) -> bool:
    """Withdraw case ``number`` (actor's scope, else ``CaseNotFound`` 404) from the 评价器
    paired with ``actor``; the pad reloads to the plain rating. Returns whether a link of
    that case was removed (False: nothing of that case was on the actor's pad — then
    nothing is audited either)."""
    with Session(engine) as s:
        case = load_case(s, actor, number).case
        outlet = s.get(Outlet, case.outlet_id)
        linked = s.exec(select(RatingPadLink.device_id)
                        .join(Device, col(Device.id) == RatingPadLink.device_id)
                        .where(Device.staff_id == actor.id,
                               RatingPadLink.case_id == case.id)).first()
    if linked is None:
        return False
    with delegated_action(engine, actor, "rating.pad_unlink", outlet=outlet, case=case.number,
                          at=at) as act:
        s = act.session
        rows = s.exec(select(RatingPadLink).join(Device, col(Device.id) == RatingPadLink.device_id)
                      .where(Device.staff_id == actor.id, RatingPadLink.case_id == case.id)).all()
        for row in rows:
            s.delete(row)
            hub.publish_in(s, topic(row.device_id), {"linked": False})
        act.state = ("linked", None)
    return bool(rows)
