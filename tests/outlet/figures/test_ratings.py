"""好差评 figures of the figures package on a hand-computed dataset (SQLite and PostgreSQL):
the same numbers as the ratings pages' module, and as ``audit stats`` from an export."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, SQLModel, select

import web.models  # noqa: F401
from audit import Checkpointer, export
from audit.stats import stats
from outlet import devices
from outlet.figures import FIGURES, Period, Scope, breakdown, headline
from outlet.figures import ratings as rating_figures
from outlet.ratings import appeals, submit
from outlet.ratings import workorders as wo
from outlet.ratings.models import RatingWorkOrder
from outlet.ratings.rules import RatingInput
from tests.audit.helpers import fixed_signer
from tests.outlet.conftest import build_world
from tests.outlet.figures.test_cases import _engine
from tests.outlet.ratings.conftest import EVE, RatingWorld, rating_world

PERIOD = Period(date(2026, 9, 1), date(2026, 10, 31))
ORIGIN = "audit.example.gov.cn/figures-ratings"


def _order_id(rw: RatingWorld, rating_id: int | None) -> int:
    with Session(rw.engine) as s:
        return s.exec(select(RatingWorkOrder.id).where(RatingWorkOrder.rating_id == rating_id)).one() or 0


def build(rw: RatingWorld) -> None:
    w = rw.w
    c1, c2, _c3 = w.drive("approved"), w.drive("approved"), w.drive("approved")  # completed 09-28
    rw.qr(c1, 5, stage="after", dimensions={"efficiency": 4})  # good
    rw.qr(c2, 3, stage="after")  # neither good nor bad; c3 never rated
    r4 = rw.qr(w.drive("accepted"), 1)  # real-name 差评 worked to 销号, rater 满意
    order = wo.record_callback(rw.engine, rw.lead, _order_id(rw, r4.id), reached=True, note="已联系", at=EVE)
    wo.record_rectification(rw.engine, rw.lead, order.id or 0, kind="rectify", note="整改", at=EVE)
    wo.record_feedback(rw.engine, rw.lead, order.id or 0, view="满意", at=EVE)
    wo.close(rw.engine, rw.lead, order.id or 0, at=EVE)
    r5 = rw.qr(w.drive("accepted"), 2)  # appealed, upheld → excluded
    appeal = appeals.file_appeal(rw.engine, w.teller_a, r5.id or 0, reason="误点", at=EVE)
    appeals.decide_appeal(rw.engine, w.reviewer, appeal.id or 0, upheld=True, category="误评",
                          note="核实为误评", at=EVE)
    pad, _token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="1号", staff_id=w.teller_a.id)
    submit.submit_device(rw.engine, pad, "during", RatingInput(level=2, nonce=secrets.token_urlsafe(16)),
                         reasons_version=1, at=EVE)  # anonymous 差评, order open, due 10-13
    rw.qr(w.drive("approved", actor=w.teller_b), 4, stage="after")  # outlet B


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def rated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RatingWorld]:
    engine = _engine(request.param, tmp_path_factory.mktemp("rat"))
    SQLModel.metadata.create_all(engine)
    rw = rating_world(build_world(engine))
    build(rw)
    yield rw
    engine.dispose()


EXPECTED_A = {"ratings": 4, "active_rate": 2 / 3, "good_rate": 0.25, "bad": 2, "excluded": 1,
              "rectify_rate": 0.5, "callback_rate": 1.0, "satisfaction_rate": 1.0}  # fmt: skip


def test_rating_figures_by_hand(rated: RatingWorld) -> None:
    with Session(rated.engine) as s:
        got = headline(s, Scope(outlet_ids=frozenset({rated.w.outlet_a.id or 0})), PERIOD)
        early = headline(s, Scope(outlet_ids=frozenset({rated.w.outlet_a.id or 0})),
                         Period(PERIOD.start, date(2026, 10, 9)))
    assert {k: got[k] for k in EXPECTED_A} == pytest.approx(EXPECTED_A)
    # due 10-13, open: failed as of today whatever the period's last day
    assert early["rectify_rate"] == 0.5


def test_rating_figures_equal_the_ratings_pages(rated: RatingWorld) -> None:
    """The ratings pages and the dashboard read one definition: the pages' cards (per outlet
    and their total) carry exactly the dashboard's values."""
    with Session(rated.engine) as s:
        per, total = rating_figures.cards(s, Scope(), PERIOD, "outlet")
        new = headline(s, Scope(), PERIOD)
        rows = {r["group"]: r for r in breakdown(s, Scope(), PERIOD, "outlet")}
    keys = [d.key for d in rating_figures.DEFS]
    assert {k: total[k] for k in keys} == {k: new[k] for k in keys}
    for outlet_id, card in per.items():
        assert {k: card[k] for k in keys} == {k: rows[outlet_id][k] for k in keys}, outlet_id
    assert sum(c["ratings"] for c in per.values()) == new["ratings"]


def test_rating_figures_of_a_staff_member(rated: RatingWorld) -> None:
    with Session(rated.engine) as s:
        b = headline(s, Scope(staff_id=rated.w.teller_b.id), PERIOD)
    assert b["ratings"] == 1 and b["good_rate"] == 1.0 and b["active_rate"] == 1.0


def test_audit_stats_equals_headline_with_ratings(rated: RatingWorld, tmp_path: Path) -> None:
    # The escalation job runs today: the log's newest entry (the export's "today" for
    # 差评整改率) is on the dashboards' today, as in a live log.
    wo.escalate_overdue(rated.engine)
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures ratings key")])
    log.sign_checkpoint(rated.engine)
    export(rated.engine, tmp_path / "x", log.policy())
    verifiable = {d.key for d in FIGURES if d.verifiable}
    for scope, code in ((Scope(outlet_ids=frozenset({rated.w.outlet_a.id or 0})), rated.w.outlet_a.code),
                        (Scope(), None)):
        for period in (PERIOD, Period(PERIOD.start, date(2026, 10, 9))):
            offline = stats(tmp_path / "x", log.policy(), start=period.start, end=period.end, outlet=code)
            with Session(rated.engine) as s:
                online = headline(s, scope, period)
            assert offline.figures == pytest.approx({k: online[k] for k in verifiable}), (code, period)
