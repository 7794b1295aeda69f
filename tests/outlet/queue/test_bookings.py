"""Booking rules: the window (tomorrow .. 5 working days, holidays excluded), capacity, one
per phone per line per day, cancel cut-off, no-shows and the block (lifted by the lead),
check-in window and outlet, the priority ticket it issues, and what the audit leaves hold."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session

from outlet.queue import bookings, counters, figures, tickets
from outlet.queue.bookings import bookable_days, day_start
from outlet.queue.errors import QueueError, QueueInputError, QueueNotFound
from outlet.workdays import WorkCalendar
from partners.models import Outlet
from tests.outlet.conftest import AT, KEY, audit_rows
from tests.outlet.queue.conftest import Floor

TODAY = date(2026, 9, 28)  # Monday; National Day holidays follow on 1–7 October
PHONE = "13912345678"


def _book(f: Floor, day: date, hour: int = 9, phone: str = PHONE, at: datetime = AT) -> bookings.Booking:
    return bookings.create(f.engine, outlet_id=f.outlet_id, line_id=f.line_a.id or 0,
                           slot_start=day_start(day, hour), name="王小明", phone=phone, pseudonym_key=KEY, at=at)


def test_bookable_days_are_working_days_from_tomorrow(floor: Floor) -> None:
    with Session(floor.engine) as s:
        cal = WorkCalendar.load(s)
        days = bookable_days(cal, TODAY, 5)
        assert len(days) == 5 and days[0] == date(2026, 9, 29)
        assert all(cal.is_workday(d) for d in days) and date(2026, 10, 1) not in days
        outlet = s.get(Outlet, floor.outlet_id)
        assert outlet is not None
        assert bookings.slots(s, outlet, floor.line_a, date(2026, 10, 1)) == []
        day_slots = bookings.slots(s, outlet, floor.line_a, days[0])
        assert day_slots[0].label == "08:00" and day_slots[-1].label == "17:30" and day_slots[0].free == 4
    with pytest.raises(QueueInputError):  # today is not bookable
        _book(floor, TODAY, 15)
    with pytest.raises(QueueInputError):  # a holiday
        _book(floor, date(2026, 10, 2))


def test_booking_capacity_and_one_per_phone_per_line_per_day(floor: Floor) -> None:
    day = date(2026, 9, 29)
    b = _book(floor, day)
    assert len(b.code) == 8
    with pytest.raises(QueueError, match="每天只能预约一次"):
        _book(floor, day, 14)
    for i in range(3):
        _book(floor, day, phone=f"1380000000{i}")
    with pytest.raises(QueueError, match="已约满"):
        _book(floor, day, phone="13800000009")
    with pytest.raises(QueueInputError):
        _book(floor, day, 10, phone="12345")


def test_booking_cancel_until_two_hours_before(floor: Floor) -> None:
    day = date(2026, 9, 29)
    b = _book(floor, day, 10)
    with pytest.raises(QueueNotFound):
        bookings.cancel(floor.engine, b.code, "0000", pseudonym_key=KEY, at=AT)
    late = day_start(day, 10) - timedelta(hours=1, minutes=59)
    with pytest.raises(QueueError, match="不足 2 小时"):
        bookings.cancel(floor.engine, b.code, PHONE[-4:], pseudonym_key=KEY, at=late)
    assert bookings.cancel(floor.engine, b.code, PHONE[-4:], pseudonym_key=KEY,
                           at=late - timedelta(minutes=2)).state == "cancelled"


def test_two_no_shows_block_booking_until_the_lead_lifts_it(floor: Floor) -> None:
    first, second = date(2026, 9, 29), date(2026, 9, 30)
    _book(floor, first)
    _book(floor, second)
    later = day_start(second, 12)
    assert bookings.sweep_no_shows(floor.engine, pseudonym_key=KEY, at=later) == 2
    with Session(floor.engine) as s:
        fig = figures.figures(s, floor.outlet_id, first, second)
    assert (fig.bookings_no_show, fig.bookings_checked_in, fig.bookings_honoured) == (2, 0, 0.0)
    with pytest.raises(QueueError, match="预约未到 2 次"):
        _book(floor, date(2026, 10, 9), at=later)
    with Session(floor.engine) as s:
        (block,) = bookings.blocks(s, floor.outlet_id, later)
    bookings.lift_block(floor.engine, floor.lead, block.id or 0, pseudonym_key=KEY, at=later)
    assert _book(floor, date(2026, 10, 9), at=later).state == "booked"
    assert [e["state"] for e in audit_rows(floor.engine, action="booking.block_lift")] == [
        {"from": "blocked", "to": "lifted"}]


def test_check_in_window_outlet_and_priority_ticket(floor: Floor) -> None:
    day = date(2026, 9, 29)
    b = _book(floor, day, 10)
    walk_in = tickets.issue(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0, hub=None,
                            device_id=1, at=day_start(day, 9))
    other = floor.world.outlet_b.id or 0
    with pytest.raises(QueueError, match="不在本网点"):
        bookings.check_in(floor.engine, outlet_id=other, code=b.code, hub=None, pseudonym_key=KEY,
                          device_id=1, at=day_start(day, 10))
    with pytest.raises(QueueError, match="前 30 分钟"):
        bookings.check_in(floor.engine, outlet_id=floor.outlet_id, code=b.code, hub=None, pseudonym_key=KEY,
                          device_id=1, at=day_start(day, 10) - timedelta(minutes=31))
    booked, t = bookings.check_in(floor.engine, outlet_id=floor.outlet_id, phone=PHONE, hub=None,
                                  pseudonym_key=KEY, device_id=1, at=day_start(day, 10) + timedelta(minutes=10))
    assert booked.state == "checked_in" and t.priority == "booked"
    counters.sign_in(floor.engine, floor.t1, floor.c1.id or 0, at=day_start(day, 9))
    called = tickets.call_next(floor.engine, floor.t1, hub=None, at=day_start(day, 10) + timedelta(minutes=11))
    assert called.id == t.id and called.id != walk_in.id  # booked ticket ahead of the earlier walk-in
    leaves = [e for e in audit_rows(floor.engine) if e["action"] in ("booking.create", "booking.check_in")
              and e["outcome"]["result"] == "done"]
    assert [e["action"] for e in leaves] == ["booking.create", "booking.check_in"]
    assert leaves[1]["queue"]["ticket"] == t.number and leaves[1]["queue"]["booking"] == b.id
    assert all(PHONE not in str(e) and "王小明" not in str(e) for e in audit_rows(floor.engine))
    assert leaves[0]["subject"].startswith("hmac-sha256:")
    issue = [e for e in audit_rows(floor.engine, action="ticket.issue") if e["queue"]["priority"] == "booked"]
    assert len(issue) == 1 and issue[0]["queue"]["booking"] == b.id


def test_check_in_by_the_phones_last_four_digits(floor: Floor) -> None:
    day = date(2026, 9, 29)
    b = _book(floor, day, 10)
    at = day_start(day, 10) - timedelta(minutes=5)
    with pytest.raises(QueueNotFound, match=bookings.NOT_FOUND):  # unknown last 4: the same answer as a bad code
        bookings.check_in(floor.engine, outlet_id=floor.outlet_id, phone="0000", hub=None, pseudonym_key=KEY,
                          device_id=1, at=at)
    with pytest.raises(QueueNotFound, match=bookings.NOT_FOUND):
        bookings.check_in(floor.engine, outlet_id=floor.outlet_id, code="NOPE2345", hub=None, pseudonym_key=KEY,
                          device_id=1, at=at)
    # another phone with the same last 4 digits, booked for a later slot: still one in its window
    _book(floor, day, 14, phone="13600005678")
    booked, t = bookings.check_in(floor.engine, outlet_id=floor.outlet_id, phone=PHONE[-4:], hub=None,
                                  pseudonym_key=KEY, device_id=1, at=at)
    assert booked.id == b.id and t.priority == "booked"
    assert bookings.split_key(" 5678 ") == ("", "5678") and bookings.split_key("ab3k") == ("ab3k", "")


def test_last_four_digits_matching_two_bookings_in_their_window_ask_for_more(floor: Floor) -> None:
    day = date(2026, 9, 29)
    _book(floor, day, 10)
    _book(floor, day, 10, phone="13600005678")
    with pytest.raises(QueueError, match="完整手机号或预约码"):
        bookings.check_in(floor.engine, outlet_id=floor.outlet_id, phone="5678", hub=None, pseudonym_key=KEY,
                          device_id=1, at=day_start(day, 10))
    booked, _t = bookings.check_in(floor.engine, outlet_id=floor.outlet_id, phone="13600005678", hub=None,
                                   pseudonym_key=KEY, device_id=1, at=day_start(day, 10))
    assert booked.phone == "13600005678"


def test_the_no_show_sweep_is_idempotent_and_skips_a_booking_checked_in(floor: Floor) -> None:
    day = date(2026, 9, 29)
    kept, gone = _book(floor, day, 10), _book(floor, day, 11, phone="13600000001")
    bookings.check_in(floor.engine, outlet_id=floor.outlet_id, code=kept.code, hub=None, pseudonym_key=KEY,
                      device_id=1, at=day_start(day, 10))
    later = day_start(day, 12)
    assert bookings.sweep_no_shows(floor.engine, pseudonym_key=KEY, at=later) == 1
    assert bookings.sweep_no_shows(floor.engine, pseudonym_key=KEY, at=later) == 0
    (entry,) = audit_rows(floor.engine, action="booking.no_show")
    assert entry["queue"]["booking"] == gone.id and entry["actor"]["role"] == "system"


def test_booking_and_check_in_read_a_full_width_phone_as_ascii(floor: Floor) -> None:
    """The phone a Chinese IME types ("１３９…") books and checks in as the ASCII number;
    digits of other scripts are refused, never stored."""
    day = date(2026, 9, 29)
    b = _book(floor, day, 10, phone="１３９ １２３４-５６７８")
    assert b.phone == PHONE
    with pytest.raises(QueueInputError):
        _book(floor, day, 11, phone="1٣912345679")
    assert bookings.split_key("５６７８") == ("", "5678")
    assert bookings.split_key("１３９１２３４５６７８") == ("", PHONE)
