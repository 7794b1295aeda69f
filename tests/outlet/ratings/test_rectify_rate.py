"""差评整改率 — one rule on all three places that show it: the lead's /ratings/ page, the
dashboard (/figures/) and ``audit stats`` on a real export (outlet/figures/ratings.py,
``rectify_due``). An HC-ICBC-01-like month at outlet A: one 差评 rectified and closed on time,
one left open past its 整改时限, one open whose 整改时限 is today — not yet due, so neither
failed nor counted: 1 已销号 ÷ 2 应整改 = 50.0 % (the old rules said 33.3 % on one page and
50 % on another)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

import outlet.figures.ratings as rating_figures
import web.routes.figures as figure_routes
import web.routes.ratings as rating_routes
from audit import Checkpointer, export
from audit.stats import stats
from outlet.ratings import workorders as wo
from outlet.ratings.models import RatingWorkOrder
from tests.audit.helpers import fixed_signer
from tests.conftest import login
from tests.outlet.ratings.conftest import RatingWorld

ORIGIN = "audit.example.gov.cn/rectify-rate"
# "Today" of the scenario: Wednesday 2026-10-28, 10:00 Beijing (the pages' clock is pinned).
NOW = datetime(2026, 10, 28, 2, 0)
TODAY = date(2026, 10, 28)


def _utc(day: int, hour: int) -> datetime:
    """October ``day``, ``hour`` o'clock Beijing, as naive UTC."""
    return datetime(2026, 10, day, hour - 8)


def _order(rw: RatingWorld, at: datetime) -> RatingWorkOrder:
    order = rw.bad_order(at=at)
    assert order.state == "open"
    return order


@pytest.fixture
def month(rw: RatingWorld, monkeypatch: pytest.MonkeyPatch) -> RatingWorld:
    on_time = _order(rw, _utc(9, 10))  # Fri Oct 9: 整改时限 5 working days later, Oct 15
    wo.record_callback(rw.engine, rw.lead, on_time.id or 0, reached=True, note="已联系申请人",
                       at=_utc(9, 15))
    wo.record_rectification(rw.engine, rw.lead, on_time.id or 0, kind="rectify",
                            note="高峰时段增开窗口", at=_utc(12, 10))
    wo.close(rw.engine, rw.lead, on_time.id or 0, at=_utc(12, 11))
    overdue = _order(rw, _utc(9, 11))  # also due Oct 15, nobody worked it: failed
    due_today = _order(rw, _utc(21, 10))  # Wed Oct 21: due Oct 28 — today, not yet passed
    wo.record_callback(rw.engine, rw.lead, due_today.id or 0, reached=False, note="未接听",
                       at=_utc(28, 9))  # this morning: the log's newest entry
    with Session(rw.engine) as s:
        dues = {o.id: o.rectify_due for o in s.exec(select(RatingWorkOrder)).all()}
    assert dues == {on_time.id: date(2026, 10, 15), overdue.id: date(2026, 10, 15),
                    due_today.id: TODAY}
    for module in (rating_routes, figure_routes, rating_figures):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)
    return rw


def _due_today(rw: RatingWorld) -> int:
    with Session(rw.engine) as s:
        return s.exec(select(RatingWorkOrder.id).where(RatingWorkOrder.rectify_due == TODAY)).one() or 0


def _pct(text: str) -> str:
    return text.strip().split()[0]


def test_rectify_rate_is_the_same_on_the_ratings_page_the_dashboard_and_audit_stats(
        month: RatingWorld, app: Starlette, tmp_path: Path) -> None:
    # Offline first, before the app (and its own checkpointer) starts: the export's newest
    # entry — this morning's call-back — is what "today" means there, not the wall clock
    # (by which the order due Oct 28 would have failed long ago: 33.3 %).
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "rectify rate key")])
    log.sign_checkpoint(month.engine)
    export(month.engine, tmp_path / "x", log.policy())
    offline = stats(tmp_path / "x", log.policy(), start=date(2026, 10, 1), end=TODAY,
                    outlet=month.w.outlet_a.code)
    assert offline.today == TODAY
    assert offline.figures["rectify_rate"] == pytest.approx(0.5)

    with TestClient(app, base_url="http://testserver") as client:
        _online(client)


def _online(client: TestClient) -> None:
    login(client, "lead.a")
    page = BeautifulSoup(client.get("/ratings/").text, "html.parser")
    assert _pct(page.select_one('[data-figure="rectify_rate"]').text) == "50.0%"
    dash = BeautifulSoup(client.get("/figures/", params={
        "period": "custom", "from": "2026-10-01", "to": TODAY.isoformat()}).text, "html.parser")
    card = dash.select_one('.figure-card[data-key="rectify_rate"] a.figure-value')
    assert _pct(str(card.contents[0])) == "50.0%"
    # The rows behind the dashboard's number are its denominator: the two 应整改 orders.
    rows = BeautifulSoup(client.get(card["href"]).text, "html.parser")
    assert len(rows.select("table tbody tr:not(.empty)")) == 2


def test_rectify_rate_counts_the_order_once_its_deadline_day_is_over(month: RatingWorld) -> None:
    from outlet.figures import Period, Scope

    scope = Scope(outlet_ids=frozenset({month.w.outlet_a.id or 0}))
    # 整改 recorded in time on the order due today, but never closed (销号): once due it counts
    # as not done — the rate is closed ÷ due (a rule of "rectified by the deadline" says 2/3).
    wo.record_rectification(month.engine, month.lead, _due_today(month), kind="rectify",
                            note="已调整叫号规则", at=_utc(28, 9))
    with Session(month.engine) as s:
        today = rating_figures.cards(s, scope, Period(date(2026, 10, 1), TODAY), today=TODAY)[1]
        later = rating_figures.cards(s, scope, Period(date(2026, 10, 1), TODAY),
                                     today=date(2026, 10, 29))[1]
    assert (today["orders_due"], today["orders_closed"], today["rectify_rate"]) == (2, 1, 0.5)
    assert (later["orders_due"], later["orders_closed"]) == (3, 1)
    assert later["rectify_rate"] == pytest.approx(1 / 3)
