"""Appointments (预约办): slots, booking, cancelling, no-shows and blocks, check-in.

Rules (issue 10 §3; DOMAIN.md "Queue and appointments"):

* slots of a line's ``slot_minutes`` (default 30) inside the outlet's opening hours, on
  **working days** only (``outlet.workdays``: holidays and make-up days), ``slot_capacity``
  bookings each; bookable from tomorrow to the ``book_ahead_days``-th working day after today;
* one active booking per phone per line per day; cancel up to ``cancel_before_hours`` (2 h) before;
* ``no_show_limit`` (2) no-shows at one outlet within ``no_show_window_days`` (30 calendar days)
  block new bookings of that phone at that outlet for ``block_days`` (30 calendar days); that
  outlet's lead can lift the block (audited), other outlets neither see nor apply it;
* check-in by booking code (or the phone number or its last 4 digits) at the booking's outlet from 30 min before to
  15 min after the slot start turns the booking into a priority ticket ("booked").

The numbers but the check-in window are the center admin's defaults (:mod:`outlet.queue.defaults`),
read in the transaction that decides by them.

Name and phone stay in ``queue_booking``; pages show them masked; audit leaves carry the keyed
pseudonym of the phone in ``subject`` and the booking id and slot in the ``queue`` field.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import audit
from outlet.clock import local_day
from outlet.events import Hub
from outlet.intake import checked_text, clean_person_name
from outlet.queue import defaults
from outlet.queue.errors import QueueError, QueueInputError, QueueNotFound
from outlet.queue.hours import CHINA, parse_hours
from outlet.queue.models import Booking, BookingBlock, QueueLine, Ticket
from outlet.queue.tickets import issue_in, utc_text
from outlet.workdays import WorkCalendar
from partners.delegation import ActionContext, delegated_action, unattended_action
from partners.models import Outlet, Staff, utcnow
from partners.numbers import ascii_digits, typed_phone

CHECK_IN_EARLY, CHECK_IN_LATE = timedelta(minutes=30), timedelta(minutes=15)
SWEEP_SECONDS = 60.0  # the no-show job's period
PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")  # after typed_phone: ASCII digits only
LAST4_RE = re.compile(r"^[0-9]{4}$")
NOT_FOUND = "未找到该预约，请核对预约码或手机号"
CODE_CHARS = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
ACTIVE = ("booked", "checked_in")
STATE_LABELS = {"booked": "已预约", "cancelled": "已取消", "checked_in": "已签到", "no_show": "未到（爽约）"}


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


@dataclass(frozen=True)
class Slot:
    start: datetime  # naive UTC
    taken: int
    capacity: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.taken, 0)

    @property
    def label(self) -> str:
        return (self.start + CHINA).strftime("%H:%M")


def bookable_days(calendar: WorkCalendar, today: date, ahead: int) -> list[date]:
    """Working days from tomorrow up to the ``ahead``-th working day after ``today``
    (``ahead``: the center default ``book_ahead_days``)."""
    last = calendar.add_workdays(today, ahead).day
    return [d for d in (today + timedelta(days=i) for i in range(1, (last - today).days + 1))
            if calendar.is_workday(d)]


def slots(session: Session, outlet: Outlet, line: QueueLine, day: date) -> list[Slot]:
    """The line's slots on ``day`` with the number already booked (none on a rest day)."""
    if not line.bookable or not line.active or not WorkCalendar.load(session).is_workday(day):
        return []
    starts: list[datetime] = []
    step = timedelta(minutes=line.slot_minutes)
    for a, b in parse_hours(outlet.opening_hours).get(day.weekday(), []):
        t, end = datetime.combine(day, a), datetime.combine(day, b)
        while t + step <= end:
            starts.append(t - CHINA)
            t += step
    taken = dict(session.exec(select(Booking.slot_start, func.count()).where(
        Booking.line_id == line.id, Booking.day == day, col(Booking.state).in_(ACTIVE))
        .group_by(col(Booking.slot_start))).all())
    return [Slot(s, int(taken.get(s, 0)), line.slot_capacity) for s in starts]


def _leaf(b: Booking, line: QueueLine, ticket: Ticket | None = None) -> dict[str, object]:
    return {"queue": {"line": line.prefix, "ticket": ticket.number if ticket else None, "counter": None,
                      "priority": "booked" if ticket else None, "arrived": utc_text(ticket.issued_at) if ticket else None,
                      "booking": b.id, "slot": utc_text(b.slot_start)}}


def _block_of(s: Session, outlet_id: int, phone: str, now: datetime) -> BookingBlock | None:
    """The block in force on ``phone`` at ``outlet_id`` (the one lasting longest), or None."""
    return s.exec(select(BookingBlock).where(
        BookingBlock.outlet_id == outlet_id, BookingBlock.phone == phone, col(BookingBlock.lifted_at).is_(None),
        BookingBlock.until > now).order_by(col(BookingBlock.until).desc())).first()


def create(engine: Engine, *, outlet_id: int, line_id: int, slot_start: datetime, name: str, phone: str,
           pseudonym_key: bytes, at: datetime | None = None) -> Booking:
    """Book a slot (public page, no login; audited ``booking.create`` as the applicant).
    Raises QueueInputError (bad name/phone/slot) or QueueError (full, one per day, blocked)."""
    name, phone = (name or "").strip(), typed_phone(phone)
    errors: dict[str, str] = {}
    name = checked_text(name, clean_person_name, errors, "name", "请填写姓名（32字以内）")
    if not PHONE_RE.match(phone):
        errors["phone"] = "请填写 11 位手机号码"
    if errors:
        raise QueueInputError(errors=errors)
    now = at or utcnow()
    with Session(engine) as s0:
        outlet = s0.get(Outlet, outlet_id)
    if outlet is None:
        raise QueueNotFound("未找到该网点")
    with unattended_action(engine, actor_id=0, role="applicant", action="booking.create", outlet=outlet,
                           subject=audit.pseudonym(pseudonym_key, phone), at=now) as act:
        s = act.session
        line = s.exec(select(QueueLine).where(QueueLine.id == line_id).with_for_update()).first()  # per-line lock
        if line is None or line.outlet_id != outlet_id:
            raise QueueNotFound("未找到该业务类型")
        day, center = local_day(slot_start), defaults.load(s)
        if day not in bookable_days(WorkCalendar.load(s), local_day(now), center.book_ahead_days):
            raise QueueInputError(errors={"slot": f"只能预约明天起 {center.book_ahead_days} 个工作日内的时段"})
        slot = next((x for x in slots(s, outlet, line, day) if x.start == slot_start), None)
        if slot is None:
            raise QueueInputError(errors={"slot": "请选择有效的预约时段"})
        if slot.free <= 0:
            raise QueueError("该时段已约满，请选择其他时段", code="slot_full")
        block = _block_of(s, outlet_id, phone, now)
        if block is not None:
            raise QueueError(f"该手机号在本网点预约未到 {block.no_shows} 次，{(block.until + CHINA):%Y-%m-%d} 前"
                             f"不能在本网点预约；如有疑问请联系本网点负责人", code="booking_blocked")
        same_day = s.exec(select(Booking.id).where(Booking.phone == phone, Booking.line_id == line_id,
                                                   Booking.day == day, col(Booking.state).in_(ACTIVE))).first()
        if same_day is not None:
            raise QueueError("同一手机号同一业务每天只能预约一次", code="one_per_day")
        b = Booking(outlet_id=outlet_id, line_id=line_id, day=day, slot_start=slot_start, name=name, phone=phone,
                    code="".join(secrets.choice(CODE_CHARS) for _ in range(8)), created_at=now)
        s.add(b)
        s.flush()
        act.state, act.extra = (None, "booked"), _leaf(b, line)
    return b


def _find(s: Session, code: str) -> Booking | None:
    return s.exec(select(Booking).where(Booking.code == (code or "").strip().upper()[:12]).with_for_update()).first()


def cancel(engine: Engine, code: str, phone_last4: str, *, pseudonym_key: bytes, at: datetime | None = None) -> Booking:
    """Cancel by booking code + the phone's last 4 digits, up to 2 h before the slot."""
    now = at or utcnow()
    with Session(engine) as s0:
        found = _find(s0, code)
    if found is None or not secrets.compare_digest(found.phone[-4:], (phone_last4 or "").strip()):
        raise QueueNotFound("预约码或手机号后四位不正确")
    with Session(engine) as s0:
        outlet = s0.get(Outlet, found.outlet_id)
    with unattended_action(engine, actor_id=0, role="applicant", action="booking.cancel", outlet=outlet,
                           subject=audit.pseudonym(pseudonym_key, found.phone), at=now) as act:
        b = _find(act.session, code)
        assert b is not None
        if b.state != "booked":
            raise QueueError(f"该预约{STATE_LABELS.get(b.state, b.state)}，不能取消", code="illegal_transition")
        hours = defaults.load(act.session).cancel_before_hours
        if now > b.slot_start - timedelta(hours=hours):
            raise QueueError(f"距预约时段开始已不足 {hours} 小时，不能取消", code="too_late")
        b.state, b.changed_at = "cancelled", now
        act.session.add(b)
        line = act.session.get(QueueLine, b.line_id)
        assert line is not None
        act.state, act.extra = ("booked", "cancelled"), _leaf(b, line)
    return b


def _match_phone(s: Session, outlet_id: int, phone: str, now: datetime) -> Booking | None:
    """Today's active booking at ``outlet_id`` for a full phone number or its last 4 digits.
    Several matches (two bookings today with the same last 4 digits): the one whose check-in
    window is open, else :class:`QueueError` asking for the full number or the code."""
    cond: Any
    if PHONE_RE.match(phone):
        cond = col(Booking.phone) == phone
    elif LAST4_RE.match(phone):
        cond = col(Booking.phone).endswith(phone)
    else:
        return None
    found = list(s.exec(select(Booking).where(cond, Booking.outlet_id == outlet_id, Booking.day == local_day(now),
                                              Booking.state == "booked").order_by(col(Booking.slot_start))).all())
    if len(found) > 1:
        found = [b for b in found if b.slot_start - CHECK_IN_EARLY <= now <= b.slot_start + CHECK_IN_LATE] or found
    if len(found) > 1 and not PHONE_RE.match(phone):
        raise QueueError("有多个预约与该手机号后四位相符，请输入完整手机号或预约码", code="ambiguous")
    return found[0] if found else None


def split_key(text: str) -> tuple[str, str]:
    """One input that holds a booking code or a phone (11 digits, or its last 4):
    ``(code, phone)`` for :func:`check_in`."""
    text = typed_phone(text)  # full-width digits (Chinese IME) as ASCII, spaces/hyphens dropped
    return ("", text) if ascii_digits(text, (4, 11)) else (text, "")


def check_in(engine: Engine, *, outlet_id: int, code: str = "", phone: str = "", hub: Hub | None,
             pseudonym_key: bytes, device_id: int | None = None, staff: Staff | None = None,
             at: datetime | None = None) -> tuple[Booking, Ticket]:
    """预约签到 at the kiosk (``device_id``) or a counter (``staff``) of ``outlet_id``: by the
    booking code, or by phone — the full number or its last 4 digits (issue 10 §3: "booking
    code (or phone + last 4 digits)"), today's booking at this outlet. From 30 min before to
    15 min after the slot start; issues a priority ("booked") ticket in the same transaction
    (audited ``booking.check_in`` and ``ticket.issue``).

    Raises :class:`QueueNotFound` with one message for an unknown code and an unknown phone
    alike (the caller throttles guesses), :class:`QueueError` for another outlet's booking,
    an ambiguous last-4 match, a used booking or outside the window."""
    now = at or utcnow()
    phone = typed_phone(phone)
    with Session(engine) as s0:
        outlet = s0.get(Outlet, outlet_id)
        found = _find(s0, code) if code.strip() else _match_phone(s0, outlet_id, phone, now)
    if outlet is None or found is None:
        raise QueueNotFound(NOT_FOUND)
    if found.outlet_id != outlet_id:
        raise QueueError("该预约不在本网点，请到预约的网点签到", code="wrong_outlet")
    subject = audit.pseudonym(pseudonym_key, found.phone)
    ctx = (delegated_action(engine, staff, "booking.check_in", outlet=outlet, subject=subject, at=now) if staff
           else unattended_action(engine, actor_id=device_id or 0, role="device", action="booking.check_in",
                                  outlet=outlet, subject=subject, at=now))
    with ctx as act:
        b = _find(act.session, found.code)
        assert b is not None
        if b.state != "booked":
            raise QueueError(f"该预约{STATE_LABELS.get(b.state, b.state)}", code="illegal_transition")
        if not b.slot_start - CHECK_IN_EARLY <= now <= b.slot_start + CHECK_IN_LATE:
            raise QueueError(f"请在预约时段 {(b.slot_start + CHINA):%H:%M} 前 30 分钟至开始后 15 分钟内签到",
                             code="outside_window")
        t = issue_in(act, hub, outlet, b.line_id, priority="booked", channel="booking", booking_id=b.id,
                     staff_id=staff.id if staff else None, device_id=device_id)
        audit.record(act.session, {**act.entry({"result": "done"}), "action": "ticket.issue", "subject": None})
        b.state, b.changed_at, b.ticket_id = "checked_in", now, t.id
        act.session.add(b)
        line = act.session.get(QueueLine, b.line_id)
        assert line is not None
        act.state, act.extra = ("booked", "checked_in"), _leaf(b, line, t)
    return b, t


def sweep_no_shows(engine: Engine, *, pseudonym_key: bytes, at: datetime | None = None) -> int:
    """Mark bookings not checked in by 15 min after their slot as no-shows (``booking.no_show``,
    role "system"), and block a phone at an outlet where it has ``no_show_limit`` no-shows
    within ``no_show_window_days`` (center defaults).
    Run by the periodic job ``queue.no_shows`` (``web.app.periodic_jobs``: one process of the
    deployment at a time, under a lease) every ``SWEEP_SECONDS``. Idempotent: a booking
    another run already marked is skipped without an audit entry. Returns the number marked."""
    now = at or utcnow()
    with Session(engine) as s0:
        due = [i for i in s0.exec(select(Booking.id).where(Booking.state == "booked",
                                                     Booking.slot_start < now - CHECK_IN_LATE)).all() if i]
    marked = 0
    for bid in due:
        with Session(engine) as s0:
            b0 = s0.get(Booking, bid)
            outlet = s0.get(Outlet, b0.outlet_id) if b0 else None
        if b0 is None or outlet is None:
            continue
        try:
            with unattended_action(engine, actor_id=0, role="system", action="booking.no_show", outlet=outlet,
                                   subject=audit.pseudonym(pseudonym_key, b0.phone), at=now) as act:
                _no_show(act, bid, now)
        except _AlreadyChanged:  # checked in or marked meanwhile: nothing to record
            continue
        marked += 1
    return marked


class _AlreadyChanged(Exception):
    """The booking left "booked" between the sweep's read and its transaction."""


def _no_show(act: ActionContext, booking_id: int, now: datetime) -> None:
    s = act.session
    b = s.exec(select(Booking).where(Booking.id == booking_id).with_for_update()).one()
    line = s.get(QueueLine, b.line_id)
    assert line is not None
    if b.state != "booked":  # checked in meanwhile, or an overlapping run marked it
        raise _AlreadyChanged()
    b.state, b.changed_at = "no_show", now
    s.add(b)
    s.flush()
    center = defaults.load(s)
    recent = s.exec(select(func.count()).select_from(Booking).where(
        Booking.outlet_id == b.outlet_id, Booking.phone == b.phone, Booking.state == "no_show",
        Booking.slot_start >= now - timedelta(days=center.no_show_window_days))).one()
    if recent >= center.no_show_limit and _block_of(s, b.outlet_id, b.phone, now) is None:
        s.add(BookingBlock(outlet_id=b.outlet_id, phone=b.phone, since=now,
                           until=now + timedelta(days=center.block_days), no_shows=int(recent)))
    act.state, act.extra = ("booked", "no_show"), _leaf(b, line)


def blocks(session: Session, outlet_id: int, at: datetime | None = None) -> list[BookingBlock]:
    """Blocks in force at ``outlet_id`` (newest first): what that outlet's lead sees."""
    now = at or utcnow()
    return list(session.exec(select(BookingBlock).where(BookingBlock.outlet_id == outlet_id,
                                                        col(BookingBlock.lifted_at).is_(None),
                                                        BookingBlock.until > now)
                             .order_by(col(BookingBlock.id).desc())).all())


def lift_block(engine: Engine, actor: Staff, block_id: int, *, pseudonym_key: bytes,
               at: datetime | None = None) -> BookingBlock:
    """The lead lifts a block of their own outlet (``booking.block_lift``). Another outlet's
    block, or none, is :class:`QueueNotFound` (404, audited as refused, the phone not named)."""
    with Session(engine) as s0:
        outlet = s0.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        row = s0.get(BookingBlock, block_id)
    if outlet is None:
        raise QueueNotFound("未找到该限制记录")
    own = row is not None and row.outlet_id == outlet.id
    with delegated_action(engine, actor, "booking.block_lift", outlet=outlet,
                          subject=audit.pseudonym(pseudonym_key, row.phone) if own and row else None, at=at) as act:
        block = act.session.get(BookingBlock, block_id)
        if block is None or block.outlet_id != outlet.id:
            raise QueueNotFound("未找到该限制记录")
        if block.lifted_at is not None:
            raise QueueError("该限制已解除")
        block.lifted_at, block.lifted_by = act.at, actor.id
        act.session.add(block)
        act.state = ("blocked", "lifted")
    return block


def day_start(day: date, hour: int = 9) -> datetime:
    """Naive UTC of ``hour``:00 Beijing time on ``day`` (tests and demo)."""
    return datetime.combine(day, time(hour, 0)) - CHINA
