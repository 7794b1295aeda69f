"""The center admin's 排队叫号默认设置 (outlet/queue/defaults.py): validated with Chinese
messages and nothing stored on a bad value, audited, refused for a lead, and read by every
outlet — recalls before 过号, the booking window, cancel cut-off, no-show rule and the lines
of "use defaults". Booking blocks belong to the outlet whose no-shows caused them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from outlet.queue import bookings, counters, defaults, tickets
from outlet.queue.bookings import day_start
from outlet.queue.errors import QueueError, QueueInputError, QueueNotFound, TicketTransitionRefused
from outlet.queue.models import QueueDefaults
from partners.errors import ActionRefused
from partners.models import Staff
from partners.refdata import RefVersion
from tests.outlet.conftest import AT, KEY, _staff, audit_rows
from tests.outlet.queue.conftest import Floor

PHONE = "13912345678"


def _admin(f: Floor) -> Staff:
    with Session(f.engine, expire_on_commit=False) as s, s.begin():
        return _staff(s, "admin.q", "admin", None)


def _values(**changes: Any) -> dict[str, Any]:
    values = defaults.form_values(QueueDefaults())
    values.update(changes)
    return values


def _version(f: Floor) -> int:
    with Session(f.engine) as s:
        row = s.get(RefVersion, 1)
        return row.version if row else 0


def test_bad_values_are_named_in_chinese_and_nothing_is_stored(floor: Floor) -> None:
    admin = _admin(floor)
    lines = _values()["lines"]
    lines[1] = {"prefix": "A", "name": "重复", "daily_cap": "1000", "warn_minutes": "²"}
    with pytest.raises(QueueInputError) as exc:
        defaults.save(floor.engine, admin, _values(max_recalls="9", idle_seconds="abc", lines=lines), at=AT)
    assert exc.value.status_code == 422
    assert exc.value.errors == {
        "max_recalls": "重呼次数上限（之后可过号）须为 3–5 的整数（次）",
        "idle_seconds": "自助终端无操作等待须为 30–600 的整数（秒）",
        "lines.1.prefix": "号票字母 A 重复",
        "lines.1.daily_cap": "每日限号须为 1–999 的整数",
        "lines.1.warn_minutes": "等候预警时长须为 1–600 的整数",
    }
    blank = [{"prefix": "", "name": "", "daily_cap": "", "warn_minutes": ""}]
    with pytest.raises(QueueInputError) as exc:
        defaults.save(floor.engine, admin, _values(lines=blank), at=AT)
    assert exc.value.errors == {"lines": "请至少填写一个默认业务类型"}
    with Session(floor.engine) as s:
        assert s.get(QueueDefaults, 1) is None
    assert audit_rows(floor.engine, action="admin.queue.edit") == []


def test_only_the_center_admin_saves_and_the_save_is_audited_with_the_changed_fields(floor: Floor) -> None:
    with pytest.raises(ActionRefused):
        defaults.save(floor.engine, floor.lead, _values(max_recalls="4"), at=AT)
    admin = _admin(floor)
    before = _version(floor)
    defaults.save(floor.engine, admin, _values(max_recalls="4", block_days="60"), at=AT)
    assert _version(floor) == before + 1  # other processes drop their cached copy (partners.refdata)
    refused, saved = audit_rows(floor.engine, action="admin.queue.edit")
    assert refused["outcome"]["result"] == "refused" and refused["actor"]["role"] == "outlet_lead"
    assert saved["outcome"]["result"] == "done" and saved["state"] == {"from": None, "to": "block_days/max_recalls"}


def test_recalls_before_no_show_follow_the_center_setting(floor: Floor) -> None:
    defaults.save(floor.engine, _admin(floor), _values(max_recalls="5"), at=AT)
    tickets.issue(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0, hub=None, device_id=1, at=AT)
    t = tickets.call_next(floor.engine, floor.t1, hub=None, at=AT + timedelta(minutes=1))
    for i in range(4):
        tickets.step(floor.engine, floor.t1, t.id or 0, "recall", hub=None, at=AT + timedelta(minutes=2 + i))
    with pytest.raises(TicketTransitionRefused, match="须重呼 5 次无人应答后才能过号（已重呼 4 次）"):
        tickets.step(floor.engine, floor.t1, t.id or 0, "no_show", hub=None, at=AT + timedelta(minutes=6))
    tickets.step(floor.engine, floor.t1, t.id or 0, "recall", hub=None, at=AT + timedelta(minutes=6))
    with pytest.raises(TicketTransitionRefused, match="已重呼 5 次，请过号"):
        tickets.step(floor.engine, floor.t1, t.id or 0, "recall", hub=None, at=AT + timedelta(minutes=7))
    assert tickets.step(floor.engine, floor.t1, t.id or 0, "no_show", hub=None,
                        at=AT + timedelta(minutes=7)).state == "no_show"


def test_booking_window_cancel_cut_off_and_no_show_rule_follow_the_center_setting(floor: Floor) -> None:
    defaults.save(floor.engine, _admin(floor), _values(book_ahead_days="2", cancel_before_hours="4",
                                                       no_show_limit="1", block_days="10"), at=AT)
    today = date(2026, 9, 28)  # Monday
    now = datetime(2026, 9, 28, 2)

    def book(day: date, hour: int = 9, at: datetime = now) -> bookings.Booking:
        return bookings.create(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0,
                               slot_start=day_start(day, hour), name="王小明", phone=PHONE, pseudonym_key=KEY, at=at)

    with pytest.raises(QueueInputError, match="明天起 2 个工作日"):
        book(today + timedelta(days=3))
    b = book(today + timedelta(days=1), 10)
    with pytest.raises(QueueError, match="不足 4 小时"):
        bookings.cancel(floor.engine, b.code, PHONE[-4:], pseudonym_key=KEY, at=b.slot_start - timedelta(hours=3))
    swept_at = b.slot_start + timedelta(hours=1)
    assert bookings.sweep_no_shows(floor.engine, pseudonym_key=KEY, at=swept_at) == 1  # one no-show blocks
    with Session(floor.engine) as s:
        (block,) = bookings.blocks(s, floor.outlet_id, swept_at)
    assert block.until == swept_at + timedelta(days=10) and block.no_shows == 1
    with pytest.raises(QueueError, match="本网点预约未到 1 次"):
        book(today + timedelta(days=2), at=swept_at)


def test_use_defaults_creates_the_center_lines_with_the_center_slot_settings(floor: Floor) -> None:
    lines = [{"prefix": "D", "name": "不动产登记", "daily_cap": "80", "warn_minutes": "45"},
             {"prefix": "E", "name": "公积金", "daily_cap": "50", "warn_minutes": "20"}]
    defaults.save(floor.engine, _admin(floor), _values(lines=lines, slot_minutes="20", slot_capacity="6"), at=AT)
    made = counters.use_defaults(floor.engine, floor.lead, at=AT)
    assert [(ln.prefix, ln.name, ln.daily_cap, ln.warn_minutes, ln.slot_minutes, ln.slot_capacity) for ln in made] == [
        ("D", "不动产登记", 80, 45, 20, 6), ("E", "公积金", 50, 20, 20, 6)]


def test_a_block_belongs_to_the_outlet_of_the_no_shows(floor: Floor) -> None:
    """Two no-shows at outlet A block booking at A only; outlet B's lead neither sees the
    block nor lifts it (404, the refusal audited without the phone); A's lead lifts it."""
    outlet_b = floor.world.outlet_b
    with Session(floor.engine, expire_on_commit=False) as s, s.begin():
        lead_b = _staff(s, "lead.b", "outlet_lead", outlet_b)
    line_b = counters.save_line(floor.engine, lead_b, counters.LineForm("A", "社保医保"), at=AT)
    first, second = date(2026, 9, 29), date(2026, 9, 30)
    for day in (first, second):
        bookings.create(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0,
                        slot_start=day_start(day), name="王小明", phone=PHONE, pseudonym_key=KEY, at=AT)
    later = day_start(second, 12)
    assert bookings.sweep_no_shows(floor.engine, pseudonym_key=KEY, at=later) == 2
    with Session(floor.engine) as s:
        (block,) = bookings.blocks(s, floor.outlet_id, later)
        assert bookings.blocks(s, outlet_b.id or 0, later) == []
    with pytest.raises(QueueError, match="本网点预约未到 2 次"):
        bookings.create(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0,
                        slot_start=day_start(date(2026, 10, 9)), name="王小明", phone=PHONE, pseudonym_key=KEY,
                        at=later)
    at_b = bookings.create(floor.engine, outlet_id=outlet_b.id or 0, line_id=line_b.id or 0,
                           slot_start=day_start(date(2026, 10, 9)), name="王小明", phone=PHONE, pseudonym_key=KEY,
                           at=later)
    assert at_b.state == "booked"
    with pytest.raises(QueueNotFound):
        bookings.lift_block(floor.engine, lead_b, block.id or 0, pseudonym_key=KEY, at=later)
    with Session(floor.engine) as s:
        assert bookings.blocks(s, floor.outlet_id, later) != []
    bookings.lift_block(floor.engine, floor.lead, block.id or 0, pseudonym_key=KEY, at=later)
    refused, lifted = audit_rows(floor.engine, action="booking.block_lift")
    assert refused["outcome"] == {"result": "refused", "reason": "not_found"} and refused.get("subject") is None
    assert lifted["outcome"]["result"] == "done" and lifted["subject"]


def test_migration_gives_an_old_global_block_the_outlet_of_the_latest_no_show(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Blocks from before ``queue_defaults`` had no outlet: each goes to the outlet of the
    phone's latest no-show; one with no no-show on record is dropped."""
    import sqlite3

    from alembic import command

    from web.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(alembic_config(url), "ref_version")
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("INSERT INTO partner VALUES (1, 'P1', '银行', 'bank', '', 1)")
        for oid in (3, 7):
            conn.execute("INSERT INTO outlet (id, code, partner_id, name, address, kind, opening_hours,"
                         " self_service_24h, active, phone) VALUES (?, ?, 1, ?, '', 'bank', '', 0, 1, '')",
                         (oid, f"O{oid}", f"网点{oid}"))
            conn.execute("INSERT INTO queue_line VALUES (?, ?, 'A', '社保医保', 200, 30, 1, 30, 4, 1)", (oid, oid))
        for outlet, slot, code in ((3, "2026-09-29 01:00:00", "AAAA2222"), (7, "2026-09-30 01:00:00", "BBBB3333")):
            conn.execute("INSERT INTO queue_booking (outlet_id, line_id, day, slot_start, code, name, phone, state,"
                         " created_at) VALUES (?, ?, ?, ?, ?, '王小明', ?, 'no_show', ?)",
                         (outlet, outlet, slot[:10], slot, code, PHONE, slot))
        for phone in (PHONE, "13700000000"):
            conn.execute("INSERT INTO queue_booking_block (phone, since, until, no_shows)"
                         " VALUES (?, '2026-09-30 04:00:00', '2026-10-30 04:00:00', 2)", (phone,))
    upgrade(url)
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT phone, outlet_id FROM queue_booking_block").fetchall() == [(PHONE, 7)]
