"""The 好差评 database paths on a real PostgreSQL server: submit, one per stage, the work
order to 销号, escalation and the grouped figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401  (all tables)
from outlet.figures import Period, Scope
from outlet.figures import ratings as rating_figures
from outlet.ratings import workorders as wo
from outlet.ratings.rules import RatingRefused
from tests.outlet.conftest import audit_rows, build_world
from tests.outlet.ratings.conftest import EVE, RatingWorld, rating_world
from web.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_rw() -> Iterator[RatingWorld]:
    from tests.conftest import new_pg_database

    engine: Engine = make_engine(new_pg_database())
    SQLModel.metadata.create_all(engine)
    yield rating_world(build_world(engine))
    engine.dispose()


def test_postgres_bad_rating_loop_and_figures(pg_rw: RatingWorld) -> None:
    number = pg_rw.w.drive("accepted")
    order = pg_rw.bad_order()
    pg_rw.qr(number, 4)
    with pytest.raises(RatingRefused, match="每个阶段只能评价一次"):
        pg_rw.qr(number, 1)
    assert wo.escalate_overdue(pg_rw.engine, at=datetime(2026, 10, 9, 1, 0)) >= 1
    wo.record_callback(pg_rw.engine, pg_rw.lead, order.id or 0, reached=True, note="已回访", at=EVE)
    wo.record_rectification(pg_rw.engine, pg_rw.lead, order.id or 0, kind="explain",
                            note="说明情况", at=EVE)
    assert wo.close(pg_rw.engine, pg_rw.lead, order.id or 0, at=EVE).state == "closed"
    with Session(pg_rw.engine) as s:
        _per, f = rating_figures.cards(s, Scope(outlet_ids=frozenset({pg_rw.w.outlet_a.id or 0})),
                                       Period(date(2026, 9, 1), date(2026, 10, 31)))
    assert (f["ratings"], f["good"], f["bad"], f["orders_closed"], f["real_name_called"]) == (2, 1, 1, 1, 1)
    assert f["rectify_rate"] == 1.0  # explained on its Beijing day, before the 整改时限
    assert [e["action"] for e in audit_rows(pg_rw.engine)][-3:] == [
        "rating.callback", "rating.rectify", "rating.close"]
