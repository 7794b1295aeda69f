"""Queue figures from the ticket events: wait (issue → first call), service (serving spans,
hold excluded), P90 by nearest rank, no-show rate, per line, counter, hour and day."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from outlet.queue import figures, tickets
from outlet.queue.figures import p90
from tests.outlet.conftest import AT
from tests.outlet.queue.conftest import Floor

MIN = timedelta(minutes=1)


def test_p90_is_nearest_rank() -> None:
    assert p90([]) is None
    assert p90([5.0]) == 5.0
    assert p90([float(i) for i in range(1, 11)]) == 9.0
    assert p90([float(i) for i in range(1, 12)]) == 10.0


def test_queue_figures_from_events(floor: Floor) -> None:
    e, h = floor.engine, floor.hub
    a = tickets.issue(e, outlet_id=floor.outlet_id, line_id=floor.line_a.id or 0, hub=h, device_id=1, at=AT)
    b = tickets.issue(e, outlet_id=floor.outlet_id, line_id=floor.line_b.id or 0, hub=h, device_id=1, at=AT + MIN)
    tickets.call_next(e, floor.t1, hub=h, at=AT + 4 * MIN)  # a waited 4 min at counter 1
    tickets.step(e, floor.t1, a.id or 0, "serve", hub=h, at=AT + 5 * MIN)
    tickets.step(e, floor.t1, a.id or 0, "hold", hub=h, at=AT + 7 * MIN)  # 2 min serving
    tickets.call_next(e, floor.t2, hub=h, at=AT + 11 * MIN)  # b waited 10 min at counter 2
    for _ in range(3):
        tickets.step(e, floor.t2, b.id or 0, "recall", hub=h, at=AT + 12 * MIN)
    tickets.step(e, floor.t2, b.id or 0, "no_show", hub=h, at=AT + 13 * MIN)
    tickets.step(e, floor.t1, a.id or 0, "serve", hub=h, at=AT + 20 * MIN)  # 13 min on hold: not service
    tickets.step(e, floor.t1, a.id or 0, "done", hub=h, at=AT + 23 * MIN)  # +3 min serving
    with Session(e) as s:
        f = figures.figures(s, floor.outlet_id, a.day, a.day)
    assert f.tickets == 2 and f.per_day == {a.day: 2}
    assert (f.wait_all.count, f.wait_all.avg, f.wait_all.p90) == (2, 7 * 60.0, 10 * 60.0)
    assert (f.service_all.count, f.service_all.avg) == (1, 5 * 60.0)
    assert [(s.key, s.avg) for s in f.wait_by_line] == [("A", 240.0), ("B", 600.0)]
    assert [(s.key, s.avg) for s in f.wait_by_counter] == [("1号窗口", 240.0), ("2号窗口", 600.0)]
    assert [(s.key, s.count) for s in f.wait_by_hour] == [("10", 2)]
    assert f.no_show_rate == 0.5
    assert f.bookings_honoured is None  # no bookings in this period
