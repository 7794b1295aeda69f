"""Ticket steps: every transition allowed and refused, the calling order (绿色通道 first,
then arrival; a transfer keeps the arrival time), daily cap, issuing hours, and the audit
entries with their queue fields and no personal data."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from outlet.queue import counters, tickets
from outlet.queue.errors import (
    CounterBusy,
    IssuingClosed,
    NoOneWaiting,
    NotSignedIn,
    QueueInputError,
    TicketTransitionRefused,
)
from outlet.queue.models import QueueDefaults, Ticket, TicketEvent
from outlet.queue.tickets import STEPS
from tests.outlet.conftest import AT, audit_rows
from tests.outlet.queue.conftest import Floor

MIN = timedelta(minutes=1)
MAX_RECALLS = QueueDefaults().max_recalls  # the built-in default (no center setting saved)


def _issue(f: Floor, line: str = "A", priority: str = "", at: datetime = AT) -> Ticket:
    ln = f.line_a if line == "A" else f.line_b
    return tickets.issue(f.engine, outlet_id=f.outlet_id, line_id=ln.id or 0, priority=priority,
                         hub=f.hub, device_id=7, at=at)


def _state(f: Floor, t: Ticket) -> str:
    with Session(f.engine) as s:
        row = s.get(Ticket, t.id)
        assert row is not None
        return row.state


def _drive(f: Floor, target: str) -> Ticket:
    """A fresh ticket at counter 1 brought to ``target`` through the real steps."""
    t = _issue(f)
    if target == "waiting":
        return t
    if target == "cancelled":
        return tickets.step(f.engine, f.t1, t.id or 0, "cancel", hub=f.hub, at=AT)
    called = tickets.call_next(f.engine, f.t1, hub=f.hub, at=AT + MIN)
    assert called.id == t.id
    if target == "called":
        return t
    if target == "no_show":
        for _ in range(MAX_RECALLS):
            tickets.step(f.engine, f.t1, t.id or 0, "recall", hub=f.hub, at=AT + MIN)
        return tickets.step(f.engine, f.t1, t.id or 0, "no_show", hub=f.hub, at=AT + MIN)
    tickets.step(f.engine, f.t1, t.id or 0, "serve", hub=f.hub, at=AT + 2 * MIN)
    if target in ("serving", "done", "hold"):
        if target != "serving":
            tickets.step(f.engine, f.t1, t.id or 0, target, hub=f.hub, at=AT + 3 * MIN)
        return t
    raise AssertionError(target)


def test_ticket_numbers_are_prefix_and_daily_serial(floor: Floor) -> None:
    a1, a2, b1 = _issue(floor), _issue(floor), _issue(floor, "B")
    assert [a1.number, a2.number, b1.number] == ["A001", "A002", "B001"]


def test_ticket_numbering_restarts_at_midnight_beijing_not_utc(floor: Floor) -> None:
    # 2026-09-28 15:59 UTC is 23:59 in Beijing; 16:01 UTC is already the 29th there.
    floor_open = "周一至周日 0:00–24:00"
    from partners.models import Outlet

    with Session(floor.engine) as s, s.begin():
        o = s.get(Outlet, floor.outlet_id)
        assert o is not None
        o.opening_hours = floor_open
    before = _issue(floor, at=datetime(2026, 9, 28, 15, 59))
    after = _issue(floor, at=datetime(2026, 9, 28, 16, 1))
    utc_same_day = _issue(floor, at=datetime(2026, 9, 28, 17, 0))
    assert (before.number, str(before.day)) == ("A001", "2026-09-28")
    assert (after.number, str(after.day)) == ("A001", "2026-09-29")
    assert utc_same_day.number == "A002"


@pytest.mark.parametrize("target", ["waiting", "called", "serving", "hold", "done", "no_show", "cancelled"])
def test_ticket_every_step_allowed_or_refused_by_state(floor: Floor, target: str) -> None:
    for name, (sources, to_state) in STEPS.items():
        if name in ("call", "transfer", "link"):
            continue
        fresh = _drive(floor, target)
        assert _state(floor, fresh) == target
        if target not in sources:
            with pytest.raises(TicketTransitionRefused):
                tickets.step(floor.engine, floor.t1, fresh.id or 0, name, hub=floor.hub, at=AT + 5 * MIN)
            assert _state(floor, fresh) == target
        elif name != "no_show":  # no_show also needs the recalls: its own test below
            tickets.step(floor.engine, floor.t1, fresh.id or 0, name, hub=floor.hub, at=AT + 5 * MIN)
            assert _state(floor, fresh) == to_state
        # finish this ticket so the counter is free for the next round
        _free(floor)


def _free(f: Floor) -> None:
    with Session(f.engine) as s, s.begin():
        for t in s.exec(select(Ticket).where(col(Ticket.state).in_(("waiting", "called", "serving", "hold")))).all():
            t.state = "done"
            s.add(t)


def test_ticket_allowed_steps_move_the_state(floor: Floor) -> None:
    t = _drive(floor, "serving")
    tickets.step(floor.engine, floor.t1, t.id or 0, "hold", hub=floor.hub, at=AT + 3 * MIN)
    assert _state(floor, t) == "hold"
    tickets.step(floor.engine, floor.t1, t.id or 0, "serve", hub=floor.hub, at=AT + 4 * MIN)
    assert _state(floor, t) == "serving"
    tickets.step(floor.engine, floor.t1, t.id or 0, "done", hub=floor.hub, at=AT + 5 * MIN)
    assert _state(floor, t) == "done"
    with Session(floor.engine) as s:
        kinds = [e.kind for e in s.exec(select(TicketEvent).where(TicketEvent.ticket_id == t.id)
                                        .order_by(col(TicketEvent.id))).all()]
    assert kinds == ["issue", "call", "serve", "hold", "serve", "done"]


def test_every_ticket_event_points_to_its_audit_entry(floor: Floor) -> None:
    from audit import search_entries

    t = _drive(floor, "serving")
    tickets.step(floor.engine, floor.t1, t.id or 0, "done", hub=floor.hub, at=AT + 3 * MIN)
    with Session(floor.engine) as s:
        events = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == t.id).order_by(col(TicketEvent.id))).all()
        entries = {v.index: v.entry for v in search_entries(s, limit=500, newest_first=False).entries}
    assert len(events) == 4
    for e in events:
        assert e.audit_index is not None, e.kind
        entry = entries[e.audit_index]
        assert entry["action"] == f"ticket.{e.kind}" and entry["queue"]["ticket"] == t.number


def test_ticket_no_show_only_after_three_recalls(floor: Floor) -> None:
    t = _drive(floor, "called")
    with pytest.raises(TicketTransitionRefused, match="重呼 3 次"):
        tickets.step(floor.engine, floor.t1, t.id or 0, "no_show", hub=floor.hub, at=AT + 2 * MIN)
    for _ in range(MAX_RECALLS):
        tickets.step(floor.engine, floor.t1, t.id or 0, "recall", hub=floor.hub, at=AT + 2 * MIN)
    with pytest.raises(TicketTransitionRefused, match="已重呼 3 次"):
        tickets.step(floor.engine, floor.t1, t.id or 0, "recall", hub=floor.hub, at=AT + 2 * MIN)
    tickets.step(floor.engine, floor.t1, t.id or 0, "no_show", hub=floor.hub, at=AT + 3 * MIN)
    assert _state(floor, t) == "no_show"
    leaves = audit_rows(floor.engine, action="ticket.recall")
    assert [e["queue"]["recalls"] for e in leaves if e["outcome"]["result"] == "done"] == [1, 2, 3]


def test_ticket_call_order_priority_then_arrival(floor: Floor) -> None:
    a1 = _issue(floor, at=AT)
    b1 = _issue(floor, "B", at=AT + MIN)
    a2 = _issue(floor, priority="elderly", at=AT + 2 * MIN)
    order = []
    for i in range(3):
        t = tickets.call_next(floor.engine, floor.t1, hub=floor.hub, at=AT + (10 + i) * MIN)
        order.append(t.number)
        tickets.step(floor.engine, floor.t1, t.id or 0, "serve", hub=floor.hub, at=AT + (10 + i) * MIN)
        tickets.step(floor.engine, floor.t1, t.id or 0, "done", hub=floor.hub, at=AT + (10 + i) * MIN)
    assert order == [a2.number, a1.number, b1.number]


def test_ticket_transfer_keeps_arrival_and_goes_to_the_target_counter(floor: Floor) -> None:
    early = _drive(floor, "serving")  # issued at AT
    _issue(floor, "B", at=AT + 5 * MIN)  # arrived later
    tickets.transfer(floor.engine, floor.t1, early.id or 0, hub=floor.hub, line_id=floor.line_b.id,
                     counter_id=floor.c2.id, note="转商事登记", at=AT + 6 * MIN)
    # counter 1 no longer sees it; counter 2 calls it before the later B arrival
    nxt1 = tickets.call_next(floor.engine, floor.t1, hub=floor.hub, at=AT + 7 * MIN)
    assert nxt1.number == "B001"
    nxt2 = tickets.call_next(floor.engine, floor.t2, hub=floor.hub, at=AT + 7 * MIN)
    assert nxt2.id == early.id and nxt2.issued_at == AT and nxt2.number == "A001"
    leaf = audit_rows(floor.engine, action="ticket.transfer")[-1]["queue"]
    assert leaf["to_line"] == "B" and leaf["to_counter"] == 2 and leaf["line"] == "A"


def test_ticket_calling_with_no_one_waiting_or_busy_or_not_signed_in(floor: Floor) -> None:
    with pytest.raises(NoOneWaiting, match="没有等候"):
        tickets.call_next(floor.engine, floor.t1, hub=floor.hub, at=AT)
    _issue(floor)
    _issue(floor)
    tickets.call_next(floor.engine, floor.t1, hub=floor.hub, at=AT)
    with pytest.raises(CounterBusy):
        tickets.call_next(floor.engine, floor.t1, hub=floor.hub, at=AT)
    with pytest.raises(NotSignedIn):
        tickets.call_next(floor.engine, floor.world.teller_b, hub=floor.hub, at=AT)
    refused = [e for e in audit_rows(floor.engine, action="ticket.call") if e["outcome"]["result"] == "refused"]
    assert [e["outcome"]["reason"] for e in refused] == ["queue_empty", "counter_busy", "not_signed_in"]


def test_ticket_daily_cap_and_hours_refuse_with_a_clear_message(floor: Floor) -> None:
    small = counters.save_line(floor.engine, floor.lead, counters.LineForm("C", "综合咨询", "2", "30"), at=AT)
    for _ in range(2):
        tickets.issue(floor.engine, outlet_id=floor.outlet_id, line_id=small.id or 0, hub=None, device_id=7, at=AT)
    with pytest.raises(IssuingClosed, match="今日号票已发完"):
        tickets.issue(floor.engine, outlet_id=floor.outlet_id, line_id=small.id or 0, hub=None, device_id=7, at=AT)
    night = datetime(2026, 9, 28, 14, 0)  # 22:00 in Beijing
    with pytest.raises(IssuingClosed, match="不在取号时间"):
        _issue(floor, "B", at=night)
    with pytest.raises(QueueInputError):
        _issue(floor, "B", priority="vip")
    with Session(floor.engine) as s:
        assert len(s.exec(select(Ticket)).all()) == 2


def test_ticket_audit_leaves_carry_queue_fields_and_no_pii(floor: Floor) -> None:
    t = _drive(floor, "done")
    rows = [e for e in audit_rows(floor.engine) if str(e["action"]).startswith("ticket.")]
    assert [e["action"] for e in rows] == ["ticket.issue", "ticket.call", "ticket.serve", "ticket.done"]
    issue = rows[0]
    assert issue["actor"] == {"id": 7, "role": "device"}
    assert issue["queue"] == {"line": "A", "ticket": t.number, "counter": None, "priority": None,
                              "arrived": "2026-09-28T02:00:00.000000Z"}
    assert rows[1]["queue"]["counter"] == 1 and rows[1]["outlet"] == floor.world.outlet_a.code
    assert all(e["state"]["to"] == s for e, s in zip(rows, ["waiting", "called", "serving", "done"], strict=True))
