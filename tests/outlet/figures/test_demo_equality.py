"""``audit stats`` on an export of the full demo data (what ``servicepoint demo`` seeds:
cases, ratings, services, queue) gives the dashboards' numbers (headline) for the whole
history, the last 30 days, and each demo outlet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

import web.models  # noqa: F401
from audit import Checkpointer, export
from audit.stats import stats
from outlet.figures import FIGURES, Period, Scope, headline
from partners.models import Outlet
from tests.audit.helpers import fixed_signer
from web.db import make_engine

ORIGIN = "audit.example.gov.cn/figures-demo"
VERIFIABLE = [d.key for d in FIGURES if d.verifiable]
KEY = b"demo-pseudonym-key-for-figures-test"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The whole ``servicepoint demo`` data set, seeded once for this module."""
    from outlet.demo import seed_demo_cases
    from outlet.queue.demo import seed_demo_queue
    from outlet.ratings.demo import seed_demo_ratings
    from outlet.services.demo import seed_demo_services
    from partners.demo import seed_demo

    d = tmp_path_factory.mktemp("demo-full")
    engine = make_engine(f"sqlite:///{d / 'demo.db'}")
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    seed_demo_cases(engine, KEY)
    seed_demo_ratings(engine, pii_key=KEY)
    seed_demo_services(engine, KEY, d / "files", pii_key=KEY)
    seed_demo_queue(engine, KEY)
    yield engine
    engine.dispose()


def test_audit_stats_equals_headline_on_the_demo(demo: Engine, tmp_path: Path) -> None:
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures demo key")])
    log.sign_checkpoint(demo)
    export(demo, tmp_path / "x", log.policy())
    whole = stats(tmp_path / "x", log.policy())
    assert whole.entries > 100
    with Session(demo) as s:
        outlets = s.exec(select(Outlet.id, Outlet.code)).all()
        cases_total = headline(s, Scope(), Period(whole.start, whole.end))
    assert cases_total["received"] > 0 and cases_total["ratings"] > 0 and cases_total["tickets"] > 0
    last30 = Period(whole.end - timedelta(days=29), whole.end)
    checks: list[tuple[Scope, str | None, Period]] = [
        (Scope(), None, Period(whole.start, whole.end)), (Scope(), None, last30),
        *[(Scope(outlet_ids=frozenset({oid or 0})), code, last30) for oid, code in outlets],
    ]
    for scope, code, period in checks:
        offline = stats(tmp_path / "x", log.policy(), start=period.start, end=period.end, outlet=code)
        with Session(demo) as s:
            online = headline(s, scope, period)
        assert offline.figures == pytest.approx({k: online[k] for k in VERIFIABLE}), (code, period)


def test_audit_stats_period_defaults_to_the_entries(demo: Engine, tmp_path: Path) -> None:
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures demo key")])
    log.sign_checkpoint(demo)
    export(demo, tmp_path / "x", log.policy())
    res = stats(tmp_path / "x", log.policy())
    assert res.start <= res.end <= date.today() + timedelta(days=1)
