"""The figures on a small dataset computed by hand (see the comments)."""

from __future__ import annotations

import secrets
from datetime import date

import pytest
from sqlmodel import Session

from outlet import devices
from outlet.figures import Period, Scope, headline
from outlet.figures import ratings as rating_figures
from outlet.ratings import appeals, submit
from outlet.ratings import workorders as wo
from outlet.ratings.rules import RatingInput
from tests.outlet.ratings.conftest import EVE, RatingWorld

SEP, OCT, END = date(2026, 9, 1), date(2026, 10, 1), date(2026, 10, 31)


@pytest.fixture
def dataset(rw: RatingWorld) -> RatingWorld:
    w = rw.w
    c1, c2, _c3 = w.drive("approved"), w.drive("approved"), w.drive("approved")  # completed Sep 28
    rw.qr(c1, 5, stage="after", dimensions={"efficiency": 4})  # good, c1 rated
    rw.qr(c2, 3, stage="after")  # 基本满意, c2 rated; c3 never rated → 未评价
    r4 = rw.qr(w.drive("accepted"), 1)  # real-name 差评, worked to 销号 with 满意
    order = wo.record_callback(rw.engine, rw.lead, _order_id(rw, r4.id), reached=True,
                               note="已联系", at=EVE)
    wo.record_rectification(rw.engine, rw.lead, order.id or 0, kind="rectify", note="整改", at=EVE)
    wo.record_feedback(rw.engine, rw.lead, order.id or 0, view="满意", at=EVE)
    wo.close(rw.engine, rw.lead, order.id or 0, at=EVE)
    r5 = rw.qr(w.drive("accepted"), 2)  # appealed and upheld → excluded everywhere
    appeal = appeals.file_appeal(rw.engine, w.teller_a, r5.id or 0, reason="误点", at=EVE)
    appeals.decide_appeal(rw.engine, w.reviewer, appeal.id or 0, upheld=True, category="误评",
                          note="核实为误评", at=EVE)
    pad, _token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="1号",
                               staff_id=w.teller_a.id)
    submit.submit_device(rw.engine, pad, "during", RatingInput(level=2, nonce=_nonce()),
                         reasons_version=1, at=EVE)  # anonymous 差评, order left open
    rw.qr(w.drive("approved", actor=w.teller_b), 4, stage="after")  # outlet B: one completed case, rated 4
    return rw


def _nonce() -> str:
    return secrets.token_urlsafe(16)


def _order_id(rw: RatingWorld, rating_id: int | None) -> int:
    from sqlmodel import select

    from outlet.ratings.models import RatingWorkOrder

    with Session(rw.engine) as s:
        return s.exec(select(RatingWorkOrder.id).where(
            RatingWorkOrder.rating_id == rating_id)).one() or 0


def _card(rw: RatingWorld, last: date, today: date | None = None, **scope: object) -> dict:
    """Outlet A's card for Sep 1 … ``last`` as of ``today`` (default: now)."""
    with Session(rw.engine) as s:
        return rating_figures.cards(s, Scope(outlet_ids=frozenset({rw.w.outlet_a.id or 0}), **scope),  # type: ignore[arg-type]
                                    Period(SEP, last), today=today)[1]


def test_figures_outlet_a_by_hand(dataset: RatingWorld) -> None:
    a = _card(dataset, END)
    # completed c1 c2 c3; rated c1 c2 → 主动评价率 2/3, 未评价 1
    assert (a["completed"], a["rated_cases"], a["unrated"]) == (3, 2, 1)
    assert a["active_rate"] == pytest.approx(2 / 3)
    # ratings 5, 3, 1, (2 excluded), 2 (device) → 4 counted, 1 good → 好评率 1/4, 差评数 2
    assert (a["ratings"], a["good"], a["bad"], a["excluded"]) == (4, 1, 2, 1)
    assert a["good_rate"] == pytest.approx(0.25)
    # work orders: r4 (rectified and closed Sep 30, 整改时限 Oct 13) and the device one (open,
    # due Oct 13, before today) → 应整改 2, 已销号 1 → 1/2
    assert (a["orders"], a["orders_due"], a["orders_closed"], a["rectify_rate"]) == (2, 2, 1, 0.5)
    # real-name 差评: r4 only (r5 excluded), called back → 100 %; feedback 满意 1/1
    assert (a["real_name_bad"], a["callback_rate"], a["satisfaction_rate"]) == (1, 1.0, 1.0)
    assert a["averages"] == {"overall": pytest.approx((5 + 3 + 1 + 2) / 4), "efficiency": 4.0,
                             "competence": None, "attitude": None}
    with Session(dataset.engine) as s:  # the dashboard's numbers are the same definition
        head = headline(s, Scope(outlet_ids=frozenset({dataset.w.outlet_a.id or 0})), Period(SEP, END))
    assert {k: head[k] for k in ("ratings", "bad", "good_rate", "rectify_rate")} == {
        k: a[k] for k in ("ratings", "bad", "good_rate", "rectify_rate")}


def test_figures_due_depends_on_today_not_on_the_period_and_totals_recompute_rates(
        dataset: RatingWorld) -> None:
    # The device order's 整改时限 is Oct 13: open and not yet due up to that day (not failed,
    # not counted), 应整改 and failed from Oct 14 — whatever the period's last day.
    for today, due, rate in ((date(2026, 10, 8), 1, 1.0), (date(2026, 10, 13), 1, 1.0),
                             (date(2026, 10, 14), 2, 0.5)):
        for last in (date(2026, 9, 30), END):
            got = _card(dataset, last, today)
            assert (got["orders_due"], got["orders_closed"], got["rectify_rate"]) == (due, 1, rate), (
                today, last)
    with Session(dataset.engine) as s:
        per, t = rating_figures.cards(s, Scope(), Period(SEP, END))
        teller, _ = rating_figures.cards(s, Scope(staff_id=dataset.w.teller_b.id), Period(SEP, END))
    assert (t["completed"], t["rated_cases"], t["ratings"], t["good"]) == (4, 3, 5, 2)
    assert t["good_rate"] == pytest.approx(2 / 5)  # 2/5, not the mean of 1/4 and 1/1
    assert list(teller) == [dataset.w.outlet_b.id] and teller[dataset.w.outlet_b.id]["good"] == 1


def test_figures_empty_period_has_no_rates_not_100_percent(dataset: RatingWorld) -> None:
    with Session(dataset.engine) as s:
        per, empty = rating_figures.cards(s, Scope(outlet_ids=frozenset({dataset.w.outlet_a.id or 0})),
                                          Period(OCT, END))
    assert per == {}
    assert (empty["ratings"], empty["good_rate"], empty["active_rate"], empty["rectify_rate"]) == (
        0, None, None, None)
    assert empty["averages"]["overall"] is None
