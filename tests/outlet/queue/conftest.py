"""The queue on top of the outlet test world: a lead and two tellers at outlet A, lines A
(社保医保) and B (商事登记), counters 1 and 2 serving both, outlet open every day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from outlet.events import Hub
from outlet.queue import counters
from outlet.queue.models import QueueCounter, QueueLine
from partners.models import Outlet, Staff
from tests.outlet.conftest import AT, World, _staff


@dataclass
class Floor:
    world: World
    hub: Hub
    lead: Staff
    t1: Staff  # teller_a, signed in to counter 1
    t2: Staff  # signed in to counter 2
    line_a: QueueLine
    line_b: QueueLine
    c1: QueueCounter
    c2: QueueCounter

    @property
    def engine(self) -> Engine:
        return self.world.engine

    @property
    def outlet_id(self) -> int:
        return self.world.outlet_a.id or 0


def build_floor(world: World, at: datetime = AT) -> Floor:
    e = world.engine
    with Session(e, expire_on_commit=False) as s, s.begin():
        lead = _staff(s, "lead.a", "outlet_lead", world.outlet_a)
        t2 = _staff(s, "teller.a2", "teller", world.outlet_a)
        for o in (world.outlet_a, world.outlet_b):
            row = s.get(Outlet, o.id)
            assert row is not None
            row.opening_hours = "周一至周日 8:00–18:00"
    line_a = counters.save_line(e, lead, counters.LineForm("A", "社保医保", "60", "30"), at=at)
    line_b = counters.save_line(e, lead, counters.LineForm("B", "商事登记", "200", "30"), at=at)
    ids = [line_a.id or 0, line_b.id or 0]
    c1 = counters.save_counter(e, lead, number="1", name="1号窗口", line_ids=ids, at=at)
    c2 = counters.save_counter(e, lead, number="2", name="2号窗口", line_ids=ids, at=at)
    counters.sign_in(e, world.teller_a, c1.id or 0, at=at)
    counters.sign_in(e, t2, c2.id or 0, at=at)
    return Floor(world, Hub(e), lead, world.teller_a, t2, line_a, line_b, c1, c2)


@pytest.fixture
def floor(world: World) -> Floor:
    return build_floor(world)
