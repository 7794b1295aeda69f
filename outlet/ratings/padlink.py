"""The teller links the case being served to the counter's 评价器 (issue 11 §1.1): the
pad then shows the matter name (nothing else of the case) and the applicant's rating there
is a real-name rating of that case instead of an anonymous one of the staff member.

The link is kept server-side (:class:`RatingPadLink`, one per device); the pad learns of a
new link through the event hub (topic :func:`topic`, pushed over its WebSocket) and the
form carries the link's ``token``, so a rating is tied to exactly the case that was on
screen — a link replaced meanwhile is refused, never silently re-targeted. A link lapses
after :data:`LINK_MINUTES` and is used up by the rating.
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
from outlet.ratings.models import RatingPadLink
from outlet.ratings.rules import RatingError
from partners.models import MatterVersion, Staff, utcnow

LINK_MINUTES = 30  # a counter service rarely takes longer; an old link must not linger
NOT_RATEABLE = frozenset({"draft", "refused", "withdrawn"})


class PadLinkRefused(RatingError):
    """The case cannot be linked to a pad (no pad at the teller's counter, not rateable)."""

    status_code = 409
    message = "无法推送到评价器"


def topic(device_id: int) -> str:
    """Event hub topic of one 评价器."""
    return f"rating.pad.{device_id}"


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
    :class:`PadLinkRefused` (409) when the case is not rateable or no active pad is paired
    with the actor. Returns the device."""
    now = at or utcnow()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        case = load_case(s, actor, number).case
        if case.state in NOT_RATEABLE:
            raise PadLinkRefused("该办件未受理，不能请申请人评价")
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
        hub.publish_in(s, topic(device.id), {"linked": True})
    return device


def current(session: Session, device: Device, *, at: datetime | None = None) -> Linked | None:
    """The link in force on ``device`` (not lapsed, case still rateable), or None."""
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
    return Linked(link.token, link.case_id, name)
