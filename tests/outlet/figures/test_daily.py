"""The per-day rollup of case steps (``figures_daily``) kept by the actions equals its
recomputation from the raw case history, on SQLite and PostgreSQL: across a late completion
with a 补正 round, a withdrawal, 容缺, a refusal, another outlet, a refused attempt, and steps
either side of midnight Beijing time (the rollup's day is the Beijing date, not UTC's)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, SQLModel, select

import web.models  # noqa: F401
from outlet import decisions
from outlet.figures import Period, Scope, headline
from outlet.figures.daily import KEYS, NAMES, CaseDaily, rebuild, recomputed
from tests.outlet.conftest import World, build_world
from tests.outlet.figures.test_cases import _engine, build_cases

EVE = datetime(2026, 10, 9, 15, 59, 59)  # 23:59:59 Beijing, Friday 10-09
MIDNIGHT = datetime(2026, 10, 9, 16, 0, 0)  # 00:00:00 Beijing, Saturday 10-10 (a working day)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    engine = _engine(request.param, Path(tmp_path_factory.mktemp("daily")))
    SQLModel.metadata.create_all(engine)
    w = build_world(engine)
    build_cases(w)
    late = w.new_case(w.teller_a, w.instant, at=EVE)  # taken in on 10-09, accepted and done on 10-10
    w.receive(late.number, "m1", "m2", "m3", at=EVE)
    decisions.accept(engine, w.teller_a, late.number, at=MIDNIGHT)
    decisions.complete_onsite(engine, w.teller_a, late.number, at=MIDNIGHT)
    yield w
    engine.dispose()


def _table(s: Session) -> set[tuple[object, ...]]:
    cols = [*KEYS, "matter_id", *NAMES]
    return {tuple(getattr(r, c) for c in cols) for r in s.exec(select(CaseDaily)).all()}


def _raw(s: Session) -> set[tuple[object, ...]]:
    rows = s.execute(recomputed(s)).all()
    return {(d if isinstance(d, date) else date.fromisoformat(d), *(int(v) for v in rest)) for d, *rest in rows}


def test_rollup_kept_by_the_actions_equals_the_raw_rows(world: World) -> None:
    with Session(world.engine) as s:
        kept, raw = _table(s), _raw(s)
    assert kept and kept == raw
    # 按期/提前/超期 and the working days are counted on the completion's Beijing day
    done = {r[0]: r for r in kept if r[3] == world.reviewer.id}
    names = [*KEYS, "matter_id", *NAMES]
    late = dict(zip(names, done[date(2026, 10, 12)], strict=True))
    assert (late["completed"], late["completed_late"], late["on_time"], late["sum_workdays"],
            late["sum_corrections"]) == (1, 1, 0, 6, 1)


def test_day_is_the_beijing_date(world: World) -> None:
    teller = world.teller_a.id
    with Session(world.engine) as s:
        rows = [dict(zip([*KEYS, "matter_id", *NAMES], r, strict=True)) for r in _table(s)]
        eve = sum(r["received"] for r in rows if r["day"] == date(2026, 10, 9) and r["staff_id"] == teller)
        sat = [r for r in rows if r["day"] == date(2026, 10, 10) and r["staff_id"] == teller]
        got = headline(s, Scope(outlet_ids=frozenset({world.outlet_a.id or 0})), Period(date(2026, 10, 10), date(2026, 10, 10)))
    assert eve == 1  # 23:59:59 Beijing is still 10-09 (UTC 15:59:59)
    assert sum(r["accepted"] for r in sat) == 1 and sum(r["onsite"] for r in sat) == 1
    assert got["received"] == 0 and got["accepted"] == 1 and got["completed"] == 1 and got["on_time_rate"] == 1


def test_rebuild_gives_the_same_table(world: World) -> None:
    with Session(world.engine) as s:
        before = _table(s)
        n = rebuild(s)
        after = _table(s)
        s.rollback()
    assert n == len(before) and after == before


def test_a_step_undone_by_a_savepoint_is_not_counted(world: World) -> None:
    """Only the steps that commit count: one rolled back with its savepoint leaves nothing,
    the one after it in the same transaction is counted."""
    from outlet.models import Case, CaseEvent

    day = date(2026, 11, 2)
    with Session(world.engine) as s:
        case = s.exec(select(Case).where(Case.outlet_id == world.outlet_b.id)).first()
        assert case is not None and case.id is not None
        nested = s.begin_nested()
        s.add(CaseEvent(case_id=case.id, actor_id=world.teller_b.id or 0, at=datetime(2026, 11, 2, 2),
                        action="case.notice"))
        s.flush()
        nested.rollback()
        s.add(CaseEvent(case_id=case.id, actor_id=world.teller_b.id or 0, at=datetime(2026, 11, 2, 3),
                        action="case.notice"))
        s.commit()
    with Session(world.engine) as s:
        kept, raw = _table(s), _raw(s)
        got = headline(s, Scope(outlet_ids=frozenset({world.outlet_b.id or 0})), Period(day, day))
    assert kept == raw and got["notices"] == 1
