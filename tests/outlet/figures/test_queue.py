"""Queue figures of the figures package (SQLite and PostgreSQL): hand-computed waits, serving
spans (hold excluded, a case link inside a span kept), nearest-rank P90, a no-show, the hour × weekday heat map, the same
numbers as the lead's queue page and as ``audit stats`` from an export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401
from audit import Checkpointer, export
from audit.stats import stats
from outlet.figures import FIGURES, Period, Scope, breakdown, headline, heatmap
from outlet.queue import casework, tickets
from outlet.queue import figures as queue_figures
from tests.audit.helpers import fixed_signer
from tests.outlet.conftest import AT, build_world
from tests.outlet.figures.test_cases import _engine
from tests.outlet.queue.conftest import Floor, build_floor

MIN = timedelta(minutes=1)
DAY = date(2026, 9, 28)  # Monday; AT is 10:00 Beijing
ORIGIN = "audit.example.gov.cn/figures-queue"


def build(floor: Floor) -> None:
    e, h, o = floor.engine, floor.hub, floor.outlet_id
    a = tickets.issue(e, outlet_id=o, line_id=floor.line_a.id or 0, hub=h, device_id=1, at=AT)
    b = tickets.issue(e, outlet_id=o, line_id=floor.line_b.id or 0, hub=h, device_id=1, at=AT + MIN)
    tickets.issue(e, outlet_id=o, line_id=floor.line_b.id or 0, hub=h, device_id=1, at=AT + 2 * MIN)
    tickets.call_next(e, floor.t1, hub=h, at=AT + 4 * MIN)  # a: waited 4 min
    tickets.step(e, floor.t1, a.id or 0, "serve", hub=h, at=AT + 5 * MIN)
    tickets.step(e, floor.t1, a.id or 0, "hold", hub=h, at=AT + 7 * MIN)  # 2 min serving
    tickets.call_next(e, floor.t2, hub=h, at=AT + 11 * MIN)  # b: waited 10 min
    for _ in range(3):
        tickets.step(e, floor.t2, b.id or 0, "recall", hub=h, at=AT + 12 * MIN)
    tickets.step(e, floor.t2, b.id or 0, "no_show", hub=h, at=AT + 13 * MIN)  # the no-show
    tickets.step(e, floor.t1, a.id or 0, "serve", hub=h, at=AT + 20 * MIN)  # 13 min hold: not service
    # 新建办件 link (serving → serving) keeps the span open: it still ends at 完成
    casework.link_new_case(e, floor.t1, a.id or 0, floor.world.new_case().number, hub=h, at=AT + 21 * MIN)
    tickets.step(e, floor.t1, a.id or 0, "done", hub=h, at=AT + 23 * MIN)  # +3 min: 5 min service
    # the third ticket (issued 10:02) is never called: no wait, no service


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def queued(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    engine = _engine(request.param, tmp_path_factory.mktemp("q"))
    SQLModel.metadata.create_all(engine)
    floor = build_floor(build_world(engine))
    build(floor)
    yield floor
    engine.dispose()


def test_queue_figures_by_hand(queued: Floor) -> None:
    with Session(queued.engine) as s:
        got = headline(s, Scope(outlet_ids=frozenset({queued.outlet_id})), Period(DAY, DAY))
        t1 = headline(s, Scope(staff_id=queued.t1.id), Period(DAY, DAY))
        grid = heatmap(s, Scope(), Period(DAY, DAY + timedelta(days=6)))
        weeks = breakdown(s, Scope(), Period(DAY, DAY + timedelta(days=13)), "week")
        other_day = headline(s, Scope(), Period(DAY + timedelta(days=1), DAY + timedelta(days=1)))
    assert got["tickets"] == 3
    assert got["wait_avg"] == pytest.approx(7 * 60) and got["wait_p90"] == pytest.approx(10 * 60)
    assert got["service_avg"] == pytest.approx(5 * 60) and got["service_p90"] == pytest.approx(5 * 60)
    assert got["no_show_rate"] == 0.5
    assert t1["tickets"] == 1 and t1["wait_avg"] == pytest.approx(4 * 60) and t1["no_show_rate"] == 0
    assert grid[0][10] == 3 and sum(map(sum, grid)) == 3  # Monday, 10:00–10:59
    assert [w["group"] for w in weeks] == [DAY] and weeks[0]["tickets"] == 3
    assert other_day["tickets"] == 0 and other_day["wait_avg"] is None and other_day["no_show_rate"] is None


def test_queue_figures_equal_the_queue_page(queued: Floor) -> None:
    with Session(queued.engine) as s:
        old = queue_figures.figures(s, queued.outlet_id, DAY, DAY)
        new = headline(s, Scope(outlet_ids=frozenset({queued.outlet_id})), Period(DAY, DAY))
    assert new["tickets"] == old.tickets and new["no_show_rate"] == old.no_show_rate
    assert new["wait_avg"] == pytest.approx(old.wait_all.avg) and new["wait_p90"] == pytest.approx(old.wait_all.p90)
    assert new["service_avg"] == pytest.approx(old.service_all.avg)


def test_audit_stats_equals_headline_with_the_queue(queued: Floor, tmp_path: Path) -> None:
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures queue key")])
    log.sign_checkpoint(queued.engine)
    export(queued.engine, tmp_path / "x", log.policy())
    verifiable = {d.key for d in FIGURES if d.verifiable}
    code = queued.world.outlet_a.code
    offline = stats(tmp_path / "x", log.policy(), start=DAY, end=DAY, outlet=code)
    with Session(queued.engine) as s:
        online = headline(s, Scope(outlet_ids=frozenset({queued.outlet_id})), Period(DAY, DAY))
    assert offline.figures == pytest.approx({k: online[k] for k in verifiable})
    assert offline.figures["tickets"] == 3


def test_seconds_between_is_exact_to_the_microsecond(queued: Floor) -> None:
    """SQLite's julianday() keeps milliseconds and rounds .9995 s up; the figures must not."""
    from datetime import datetime

    from sqlalchemy import DateTime, literal, select

    from outlet.figures.base import seconds_between

    a, b = datetime(2026, 9, 28, 2, 0, 0, 999_700), datetime(2026, 9, 28, 2, 7, 53, 950_924)
    with Session(queued.engine) as s:
        got = s.execute(select(seconds_between(s, literal(a, DateTime), literal(b, DateTime)))).scalar_one()
    assert float(got) == pytest.approx((b - a).total_seconds(), abs=1e-6)


def test_offline_verifier_ends_serving_spans_on_the_same_steps() -> None:
    from audit import stats as offline

    assert set(offline.LEAVES_SERVING) == set(tickets.LEAVES_SERVING)
