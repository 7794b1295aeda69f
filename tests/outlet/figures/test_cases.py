"""Case figures on a small hand-computed dataset (SQLite and PostgreSQL), and the same
numbers recomputed by ``audit stats`` from an export of the log.

Calendar: 2026-10-01..07 are National Day holidays, Saturday 10-10 is a working day, so a
5-working-day case accepted on Monday 09-28 is due on 10-10 (09-29, 09-30, 10-08, 10-09,
10-10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

import web.models  # noqa: F401
from audit import Checkpointer, export
from audit.stats import stats
from outlet import decisions, intake, review
from outlet.errors import IllegalTransition
from outlet.figures import FIGURES, Period, Scope, breakdown, drilldown_filter, headline, trend
from tests.audit.helpers import fixed_signer
from tests.outlet.conftest import AT, World, build_world
from web.db import make_engine

ORIGIN = "audit.example.gov.cn/figures-test"
PERIOD = Period(date(2026, 9, 28), date(2026, 10, 16))


def bj(day: date, hour: int = 10) -> datetime:
    """Naive UTC of ``hour``:00 Beijing time on ``day``."""
    return datetime(day.year, day.month, day.day, hour) - timedelta(hours=8)


def build_cases(w: World) -> dict[str, str]:
    e, t, r = w.engine, w.teller_a, w.reviewer
    n: dict[str, str] = {}

    def accepted(name: str, matter=None) -> str:  # type: ignore[no-untyped-def]
        num = w.new_case(t, matter).number
        w.receive(num, "m1", "m2", "m3")
        decisions.accept(e, t, num, at=AT)
        n[name] = num
        return num

    c1 = accepted("c1")  # approved 10-09: on time and early, 4 working days
    decisions.forward(e, t, c1, at=AT)
    review.claim(e, r, c1, at=AT)
    review.approve(e, r, c1, at=bj(date(2026, 10, 9)))
    c2 = accepted("c2")  # one 补正 round, approved 10-12: late, 6 working days
    decisions.forward(e, t, c2, at=AT)
    review.claim(e, r, c2, at=AT)
    review.request_correction(e, r, c2, items=[("m2", "签名缺失")], at=bj(date(2026, 9, 29)))
    w.receive(c2, "m2", at=bj(date(2026, 9, 30)))
    decisions.resubmit(e, t, c2, at=bj(date(2026, 9, 30)))
    review.claim(e, r, c2, at=bj(date(2026, 9, 30)))
    review.approve(e, r, c2, at=bj(date(2026, 10, 12)))
    accepted("c3")  # left open: overdue after 10-10
    c4 = accepted("c4", w.instant)  # 即办件 completed on the spot, same day
    decisions.complete_onsite(e, t, c4, at=AT)
    c5 = w.new_case(t).number  # 一次性告知, then 不予受理
    intake.mark_material(e, t, c5, "m1", "missing", at=AT)
    intake.one_time_notice(e, t, c5, at=AT)
    decisions.refuse(e, t, c5, reason="不属于受理范围", at=AT)
    for name, supply in (("c6", True), ("c7", False)):  # 容缺受理: one supplied, one not
        num = w.new_case(t).number
        w.receive(num, "m1", "m2")
        decisions.accept_rongque(e, t, num, deadline=date(2026, 9, 30), commitment_signed=True, at=AT)
        if supply:
            intake.mark_material(e, t, num, "m3", "received", at=bj(date(2026, 9, 29)))
        n[name] = num
    c8 = accepted("c8")  # withdrawn on 10-13
    decisions.withdraw(e, t, c8, reason="申请人撤回", at=bj(date(2026, 10, 13)))
    other = w.new_case(w.teller_b).number  # another outlet: accepted, open
    w.receive(other, "m1", "m2", "m3", actor=w.teller_b)
    decisions.accept(e, w.teller_b, other, at=AT)
    # a refused attempt counts nowhere
    with pytest.raises(IllegalTransition):
        decisions.accept(e, t, c1, at=AT)
    return n


EXPECTED_A = {
    "received": 8, "accepted": 7, "refused": 1, "notices": 1, "rongque": 2,
    "rongque_supplied_rate": 0.5, "forwarded": 2, "completed": 3, "instant_share": 1 / 3,
    "on_time_rate": 2 / 3, "early_rate": 1 / 3, "completed_late": 1, "overdue_open": 3,
    "avg_handling_days": 10 / 3, "corrections_per_case": 1 / 3,
}  # fmt: skip


def _engine(kind: str, tmp: Path) -> Engine:
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp / 'fig.db'}")
    from tests.conftest import new_pg_database

    return make_engine(new_pg_database())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fig_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    engine = _engine(request.param, tmp_path_factory.mktemp("fig"))
    SQLModel.metadata.create_all(engine)
    w = build_world(engine)
    build_cases(w)
    yield w
    engine.dispose()


def _case_figures(values: dict[str, object]) -> dict[str, object]:
    return {k: values[k] for k in EXPECTED_A}


def test_case_figures_match_hand_computed_values(fig_world: World) -> None:
    with Session(fig_world.engine) as s:
        got = headline(s, Scope(outlet_ids=frozenset({fig_world.outlet_a.id or 0})), PERIOD)
    assert _case_figures(got) == pytest.approx(EXPECTED_A)


def test_case_figures_all_outlets_and_staff(fig_world: World) -> None:
    with Session(fig_world.engine) as s:
        everything = headline(s, Scope(), PERIOD)
        reviewer = headline(s, Scope(staff_id=fig_world.reviewer.id), PERIOD)
        teller_b = headline(s, Scope(staff_id=fig_world.teller_b.id), PERIOD)
    assert everything["received"] == 9 and everything["accepted"] == 8
    assert everything["overdue_open"] == 4
    assert reviewer["completed"] == 2 and reviewer["received"] == 0
    assert reviewer["on_time_rate"] == pytest.approx(0.5)
    assert teller_b["accepted"] == 1 and teller_b["overdue_open"] == 1


def test_case_figures_of_a_later_day(fig_world: World) -> None:
    """10-12 alone: c2 completed late; open and overdue as of that day: c3, c6, c7 and c8
    (withdrawn only on 10-13)."""
    day = Period(date(2026, 10, 12), date(2026, 10, 12))
    with Session(fig_world.engine) as s:
        got = headline(s, Scope(outlet_ids=frozenset({fig_world.outlet_a.id or 0})), day)
    assert got["completed"] == 1 and got["completed_late"] == 1 and got["on_time_rate"] == 0
    assert got["received"] == 0 and got["overdue_open"] == 4
    assert got["avg_handling_days"] == 6 and got["corrections_per_case"] == 1


def test_case_breakdowns_add_up(fig_world: World) -> None:
    a, b = fig_world.outlet_a.id, fig_world.outlet_b.id
    with Session(fig_world.engine) as s:
        by_outlet = {r["group"]: r for r in breakdown(s, Scope(), PERIOD, "outlet")}
        by_day = {r["group"]: r for r in breakdown(s, Scope(), PERIOD, "day")}
        by_week = breakdown(s, Scope(), PERIOD, "week")
        by_month = {r["group"]: r for r in breakdown(s, Scope(), PERIOD, "month")}
        by_partner = breakdown(s, Scope(), PERIOD, "partner")
        by_domain = breakdown(s, Scope(), PERIOD, "domain")
        by_matter = breakdown(s, Scope(), PERIOD, "matter")
        with pytest.raises(ValueError):
            breakdown(s, Scope(), PERIOD, "colour")
    assert by_outlet[a]["received"] == 8 and by_outlet[b]["received"] == 1
    assert by_outlet[a]["overdue_open"] == 3 and by_outlet[b]["overdue_open"] == 1
    assert by_day[date(2026, 9, 28)]["received"] == 9
    assert by_day[date(2026, 10, 12)]["completed_late"] == 1
    assert sum(r["received"] for r in by_week) == 9
    assert [r["group"] for r in by_week] == [date(2026, 9, 28), date(2026, 10, 5), date(2026, 10, 12)]
    assert by_month[date(2026, 9, 1)]["received"] == 9 and by_month[date(2026, 10, 1)]["completed"] == 2
    assert len(by_partner) == 1 and by_partner[0]["received"] == 9
    assert [r["group"] for r in by_domain] == ["社保"]
    assert sum(r["received"] for r in by_matter) == 9


def test_case_trend_has_every_day(fig_world: World) -> None:
    with Session(fig_world.engine) as s:
        series = trend(s, Scope(), "received", date(2026, 10, 1), days=7)
        overdue = trend(s, Scope(), "overdue_open", date(2026, 10, 12), days=3)
    assert [d for d, _ in series] == [date(2026, 9, 25) + timedelta(days=i) for i in range(7)]
    assert dict(series)[date(2026, 9, 28)] == 9 and dict(series)[date(2026, 9, 29)] == 0
    # 10-11: c2 (completed only on 10-12), c3, c6, c7, c8 and the other outlet's case
    assert overdue == [(date(2026, 10, 10), 0), (date(2026, 10, 11), 6), (date(2026, 10, 12), 5)]


def test_overdue_trend_in_one_query_equals_each_days_figure(fig_world: World) -> None:
    """The one-query 超期未办结 trend gives, for every day, exactly the figure of a period
    ending that day — across the late completion of c2 (10-12), the withdrawal of c8 (10-13),
    for the center, one outlet and one teller."""
    from sqlalchemy import event

    a = frozenset({fig_world.outlet_a.id or 0})
    scopes = [Scope(), Scope(outlet_ids=a), Scope(outlet_ids=a, staff_id=fig_world.teller_a.id),
              Scope(staff_id=fig_world.teller_b.id)]
    statements: list[str] = []
    event.listen(fig_world.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with Session(fig_world.engine) as s:
        for scope in scopes:
            statements.clear()
            series = trend(s, scope, "overdue_open", date(2026, 10, 16), days=20)
            assert len(statements) == 1  # was one query per day
            for day, value in series:
                assert value == headline(s, scope, Period(day, day))["overdue_open"], (scope, day)
        values = dict(trend(s, Scope(outlet_ids=a), "overdue_open", date(2026, 10, 16), days=20))
    assert values[date(2026, 10, 11)] == 5 and values[date(2026, 10, 14)] == 3  # c2 done 10-12, c8 gone 10-13


def test_figure_definitions_are_complete() -> None:
    keys = [d.key for d in FIGURES]
    assert len(keys) == len(set(keys))
    for d in FIGURES:
        assert d.label and d.doc and d.unit in ("count", "ratio", "days", "seconds", "minutes", "per_case")
        assert drilldown_filter(d.key)["params"] == {"figure": d.key}


def test_audit_stats_equals_headline(fig_world: World, tmp_path: Path) -> None:
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures log key")])
    log.sign_checkpoint(fig_world.engine)
    export(fig_world.engine, tmp_path / "x", log.policy())
    a = fig_world.outlet_a
    for scope, code in ((Scope(outlet_ids=frozenset({a.id or 0})), a.code), (Scope(), None)):
        for period in (PERIOD, Period(date(2026, 10, 12), date(2026, 10, 12))):
            offline = stats(tmp_path / "x", log.policy(), start=period.start, end=period.end, outlet=code)
            with Session(fig_world.engine) as s:
                online = headline(s, scope, period)
            verifiable = {d.key for d in FIGURES if d.verifiable}
            assert offline.figures == pytest.approx({k: online[k] for k in verifiable}), (code, period)


def test_audit_stats_labels_match_the_definitions() -> None:
    from audit.stats import LABELS, RATIOS

    defs = {d.key: d for d in FIGURES if d.verifiable}
    assert LABELS == {k: d.label for k, d in defs.items()}
    assert RATIOS == {k for k, d in defs.items() if d.unit == "ratio"}
    assert defs["corrections_per_case"].unit == "per_case"  # a mean count, not a percentage


def test_audit_stats_cli_prints_figures_and_refuses_a_tampered_export(fig_world: World, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from audit.cli import audit as audit_cli

    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures log key")])
    log.sign_checkpoint(fig_world.engine)
    export(fig_world.engine, tmp_path / "x", log.policy())
    args = ["stats", str(tmp_path / "x"), "--from", "2026-09-28", "--to", "2026-10-16",
            "--outlet", fig_world.outlet_a.code]
    res = CliRunner().invoke(audit_cli, args)
    assert res.exit_code == 0, res.output
    assert "按期办结率\ton_time_rate\t66.7%" in res.output and "verified" in res.output
    res = CliRunner().invoke(audit_cli, [*args, "--json"])
    assert json.loads(res.output)["figures"]["received"] == 8
    entries = tmp_path / "x" / "entries.jsonl"
    entries.write_bytes(entries.read_bytes().replace(b'"case.refuse"', b'"case.accept"', 1))
    res = CliRunner().invoke(audit_cli, args)
    assert res.exit_code == 1 and "FAILED" in res.output and "受理数" not in res.output


def test_audit_stats_cli_refuses_an_outlet_the_export_does_not_name(fig_world: World, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from audit.cli import audit as audit_cli

    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "figures log key")])
    log.sign_checkpoint(fig_world.engine)
    export(fig_world.engine, tmp_path / "x", log.policy())
    res = CliRunner().invoke(audit_cli, ["stats", str(tmp_path / "x"), "--outlet", "NOPE"])
    assert res.exit_code == 1, res.output
    assert "no outlet 'NOPE' in the export" in res.output and fig_world.outlet_a.code in res.output
    assert "受理数" not in res.output  # no column of zeros that looks like a quiet outlet


def test_rows_behind_a_case_figure(fig_world: World) -> None:
    from outlet.figures import rows_behind
    from outlet.models import Case

    a = Scope(outlet_ids=frozenset({fig_world.outlet_a.id or 0}))
    with Session(fig_world.engine) as s:
        late = rows_behind(s, a, PERIOD, "completed_late")
        overdue = rows_behind(s, a, PERIOD, "overdue_open")
        received = rows_behind(s, a, PERIOD, "received", limit=5)
        numbers = {c.id: c.number for c in s.exec(select(Case)).all()}
    n = fig_world_numbers(fig_world)
    assert [numbers[i] for i in late] == [n["c2"]]
    assert sorted(numbers[i] for i in overdue) == sorted([n["c3"], n["c6"], n["c7"]])
    assert len(received) == 5
    assert drilldown_filter("on_time_rate")["list_kind"] == "cases"


def fig_world_numbers(w: World) -> dict[str, str]:
    """Case numbers of build_cases by name, found again from their histories."""
    from outlet.models import Case, CaseEvent

    with Session(w.engine) as s:
        cases = s.exec(select(Case).where(Case.outlet_id == w.outlet_a.id).order_by(Case.id)).all()
        corrected = {e.case_id for e in s.exec(select(CaseEvent).where(CaseEvent.action == "case.request_correction"))}
    accepted_plain = [c for c in cases if c.state in ("accepted",) and c.rongque_deadline is None]
    rongque = [c for c in cases if c.rongque_deadline is not None]
    return {"c2": next(c.number for c in cases if c.id in corrected), "c3": accepted_plain[0].number,
            "c6": rongque[0].number, "c7": rongque[1].number}
