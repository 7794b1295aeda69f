"""Starting service on a case: a new case of this outlet, or 接续办理 of an unfinished case
of the same partner found only with the right check code."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from outlet.errors import WrongCheckCode
from outlet.queue import casework, tickets
from outlet.queue.errors import QueueError
from outlet.queue.models import Ticket
from tests.outlet.conftest import AT, audit_rows
from tests.outlet.queue.conftest import Floor


def _serving(f: Floor) -> Ticket:
    t = tickets.issue(f.engine, outlet_id=f.outlet_id, line_id=f.line_a.id or 0, hub=f.hub, device_id=1, at=AT)
    tickets.call_next(f.engine, f.t1, hub=f.hub, at=AT)
    tickets.step(f.engine, f.t1, t.id or 0, "serve", hub=f.hub, at=AT)
    return t


def test_continue_case_of_another_outlet_of_the_partner_with_the_check_code(floor: Floor) -> None:
    w = floor.world
    case = w.new_case(actor=w.teller_b)  # taken in at outlet B, same partner
    t = _serving(floor)
    with pytest.raises(WrongCheckCode):
        casework.continue_case(floor.engine, floor.t1, t.id or 0, case.number, "000000"
                               if case.check_code != "000000" else "111111", hub=floor.hub, at=AT)
    with Session(floor.engine) as s:
        assert (row := s.get(Ticket, t.id)) is not None and row.case_id is None
    full_width = case.check_code.translate({0x30 + i: 0xFF10 + i for i in range(10)})  # "３８１９８８" (IME)
    seen = casework.continue_case(floor.engine, floor.t1, t.id or 0, case.number, full_width,
                                  hub=floor.hub, at=AT)
    assert seen.number == case.number and not seen.same_outlet and seen.outlet == w.outlet_b.name
    assert [h.what for h in seen.history] == ["新建办件"]
    link = audit_rows(floor.engine, action="ticket.link")[-1]
    assert link["case"] == case.number and link["queue"]["ticket"] == t.number
    tickets.step(floor.engine, floor.t1, t.id or 0, "done", hub=floor.hub, at=AT)
    assert audit_rows(floor.engine, action="ticket.done")[-1]["case"] == case.number


def test_continue_case_refuses_a_finished_case(floor: Floor) -> None:
    number = floor.world.drive("withdrawn")
    code = floor.world.case(number).check_code
    t = _serving(floor)
    with pytest.raises(QueueError) as refused:
        casework.continue_case(floor.engine, floor.t1, t.id or 0, number, code, hub=floor.hub, at=AT)
    assert refused.value.message == "该办件状态为「已撤回」，不能接续办理"  # not "该办件已已撤回"


def test_link_new_case_needs_a_serving_ticket(floor: Floor) -> None:
    case = floor.world.new_case()
    t = tickets.issue(floor.engine, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0, hub=None,
                      device_id=1, at=AT)
    tickets.call_next(floor.engine, floor.t1, hub=None, at=AT)
    with pytest.raises(QueueError, match="不能关联办件"):
        casework.link_new_case(floor.engine, floor.t1, t.id or 0, case.number, hub=None, at=AT)
    tickets.step(floor.engine, floor.t1, t.id or 0, "serve", hub=None, at=AT)
    casework.link_new_case(floor.engine, floor.t1, t.id or 0, case.number, hub=None, at=AT)
    with Session(floor.engine) as s:
        assert (row := s.get(Ticket, t.id)) is not None and row.case_id == case.id
