"""Tables of the queue (排队叫号): service lines, counters, counter sign-ins, tickets, the
append-only ticket event history, and the per-day ticket serials.

Timestamps are naive UTC; ``day`` columns are the Asia/Shanghai business date.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from partners.models import utcnow


class QueueLine(SQLModel, table=True):
    """A service line (业务类型) of an outlet: its ticket prefix letter, daily cap and the
    wait (minutes) above which the lead's page warns; booking slots (预约) per line."""

    __tablename__ = "queue_line"
    __table_args__ = (UniqueConstraint("outlet_id", "prefix"),)

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    prefix: str = Field(max_length=1)  # A–Z
    name: str = Field(max_length=32)
    daily_cap: int = 200
    warn_minutes: int = 30
    bookable: bool = True
    slot_minutes: int = 30
    slot_capacity: int = 4
    active: bool = True


class QueueCounter(SQLModel, table=True):
    """A counter (窗口): its number, name, the lines it serves, open or closed."""

    __tablename__ = "queue_counter"
    __table_args__ = (UniqueConstraint("outlet_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    number: int
    name: str = Field(max_length=32)
    line_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    open: bool = True


class CounterSignIn(SQLModel, table=True):
    """A teller at a counter for the day; ``ended_at`` closes it. One open row per teller
    and per counter at a time (enforced in ``outlet.queue.counters``)."""

    __tablename__ = "queue_signin"

    id: int | None = Field(default=None, primary_key=True)
    counter_id: int = Field(foreign_key="queue_counter.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    day: date = Field(index=True)
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    ended_at: NaiveDatetime | None = None


class TicketSerial(SQLModel, table=True):
    """Last serial handed out per outlet, prefix and business day (one atomic upsert)."""

    __tablename__ = "queue_serial"

    outlet_id: int = Field(foreign_key="outlet.id", primary_key=True)
    prefix: str = Field(primary_key=True, max_length=1)
    day: str = Field(primary_key=True, max_length=8)  # YYYYMMDD, Asia/Shanghai
    last: int = 0


class Ticket(SQLModel, table=True):
    """A queue ticket. ``state`` and the columns below are a summary of its events
    (``TicketEvent``), kept for fast queries; every duration comes from the events.

    ``issued_at`` is the arrival time and survives a transfer. ``for_counter_id`` is set
    while a transferred ticket waits for one particular counter. ``counter_id`` is the
    counter that called or serves it."""

    __tablename__ = "queue_ticket"
    __table_args__ = (UniqueConstraint("outlet_id", "day", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    line_id: int = Field(foreign_key="queue_line.id", index=True)
    day: date = Field(index=True)
    serial: int
    number: str = Field(max_length=8)  # A012
    priority: str = Field(default="", max_length=16)  # "" or a PRIORITY_LABELS code
    channel: str = Field(default="kiosk", max_length=16)  # kiosk / counter / booking
    booking_id: int | None = Field(default=None, index=True)
    state: str = Field(default="waiting", index=True, max_length=16)
    for_counter_id: int | None = Field(default=None, foreign_key="queue_counter.id")
    counter_id: int | None = Field(default=None, foreign_key="queue_counter.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    recalls: int = 0
    issued_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    called_at: NaiveDatetime | None = None
    case_id: int | None = Field(default=None, foreign_key="service_case.id")
    public_code: str = Field(unique=True, max_length=24)  # the QR code's live-position link


class TicketEvent(SQLModel, table=True):
    """One step of a ticket, append-only: issue, call, recall, no_show, serve, transfer,
    hold, resume, done, cancel, link. ``audit_index`` is the step's audit log entry."""

    __tablename__ = "queue_ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="queue_ticket.id", index=True)
    kind: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    line_id: int = Field(foreign_key="queue_line.id")
    counter_id: int | None = Field(default=None, foreign_key="queue_counter.id")
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    device_id: int | None = Field(default=None)
    case_id: int | None = Field(default=None, foreign_key="service_case.id")
    note: str = Field(default="", max_length=200)
    audit_index: int | None = None


class Booking(SQLModel, table=True):
    """An appointment (预约) for a slot of a line. ``name`` and ``phone`` are kept here only
    (masked in every page after entry; the audit leaf carries a keyed pseudonym of the
    phone). ``code`` is the booking code the applicant checks in with."""

    __tablename__ = "queue_booking"

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    line_id: int = Field(foreign_key="queue_line.id", index=True)
    day: date = Field(index=True)  # Asia/Shanghai date of the slot
    slot_start: NaiveDatetime = Field(index=True)
    code: str = Field(unique=True, max_length=12)
    name: str = Field(max_length=32)
    phone: str = Field(index=True, max_length=16)
    state: str = Field(default="booked", index=True, max_length=16)  # booked/cancelled/checked_in/no_show
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    changed_at: NaiveDatetime | None = None
    ticket_id: int | None = Field(default=None, foreign_key="queue_ticket.id")


class BookingBlock(SQLModel, table=True):
    """A phone barred from booking at ``outlet_id`` until ``until`` after repeated no-shows
    there; that outlet's lead may lift it (``lifted_at``, audited ``booking.block_lift``).
    Other outlets neither see it nor are bound by it."""

    __tablename__ = "queue_booking_block"

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    phone: str = Field(index=True, max_length=16)
    since: NaiveDatetime = Field(default_factory=utcnow)
    until: NaiveDatetime
    no_shows: int = 2
    lifted_at: NaiveDatetime | None = None
    lifted_by: int | None = Field(default=None, foreign_key="staff.id")


DEFAULT_LINES: tuple[dict[str, Any], ...] = (
    {"prefix": "A", "name": "社保医保", "daily_cap": 200, "warn_minutes": 30},
    {"prefix": "B", "name": "商事登记", "daily_cap": 120, "warn_minutes": 40},
    {"prefix": "C", "name": "综合咨询", "daily_cap": 300, "warn_minutes": 20},
)


class QueueDefaults(SQLModel, table=True):
    """The center admin's 排队叫号默认设置 (one row, id 1; absent = the values below).

    Every outlet reads them: the lines a new outlet starts with (``lines``: prefix, name,
    daily cap, warning wait in minutes) and the slot settings of a new line, the 重呼 limit
    before 过号, the booking window and cancel cut-off, the no-show block rule and the
    kiosk's idle wipe. A line's own cap, wait and slot values (set by the outlet lead) are
    that outlet's override. Watched by :mod:`partners.refdata` (a save bumps
    ``ref_version``)."""

    __tablename__ = "queue_defaults"

    id: int = Field(default=1, primary_key=True)
    lines: list[dict[str, Any]] = Field(default_factory=lambda: [dict(x) for x in DEFAULT_LINES],
                                        sa_column=Column(JSON, nullable=False))
    slot_minutes: int = 30  # minutes per booking slot of a new line
    slot_capacity: int = 4  # bookings per slot of a new line
    max_recalls: int = 3  # 重呼 before 过号 (DOMAIN.md: 3–5)
    book_ahead_days: int = 5  # working days, from tomorrow
    cancel_before_hours: int = 2  # a booking may be cancelled until this long before its slot
    no_show_limit: int = 2  # no-shows …
    no_show_window_days: int = 30  # … within these calendar days …
    block_days: int = 30  # … block new bookings at that outlet for these calendar days
    idle_seconds: int = 90  # kiosk: idle time before the countdown
    countdown_seconds: int = 10  # kiosk: the countdown, then everything entered is wiped
    updated_at: NaiveDatetime = Field(default_factory=utcnow)
    updated_by: int | None = Field(default=None, foreign_key="staff.id")

