"""Service figures (效能监测): defined once per family, computed by SQL aggregates.

    from outlet.figures import Scope, Period, headline, breakdown
    headline(session, Scope(outlet_ids=frozenset({3})), Period(date(2026, 11, 1), date(2026, 11, 30)))

Families (one module each, formulas in the docstrings of their ``DEFS``): ``cases``,
``video``, ``ratings``, ``queue``. Ratios are floats 0..1, None when the denominator is 0.
Every figure marked ``verifiable`` is recomputed from an audit export by
``servicepoint audit stats`` (``audit/stats.py``) with the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from types import ModuleType
from typing import Any

from sqlmodel import Session

from outlet.figures import cases, queue, ratings, video
from outlet.figures.base import GROUPINGS, FigureDef, Number, Period, Scope, Value, as_date, merge

__all__ = ["FIGURES", "FigureDef", "Period", "Scope", "breakdown", "drilldown_filter",
           "figure", "headline", "heatmap", "quiet_figures", "trend"]  # fmt: skip

FAMILIES: tuple[ModuleType, ...] = (cases, video, ratings, queue)
FIGURES: tuple[FigureDef, ...] = tuple(d for fam in FAMILIES for d in fam.DEFS)
_BY_KEY = {d.key: d for d in FIGURES}
_FAMILY = {fam.F: fam for fam in FAMILIES}


def figure(key: str) -> FigureDef:
    """The definition of ``key``; KeyError for an unknown key."""
    return _BY_KEY[key]


def _fold(rows: dict[Any, dict[str, Number]], key: Callable[[Any], Any]) -> dict[Any, dict[str, Number]]:
    out: dict[Any, dict[str, Number]] = {}
    for g, c in rows.items():
        merge(out.setdefault(key(g), {}), c)
    return out


def _week(g: Any) -> date:
    d = as_date(g)
    return d - timedelta(days=d.weekday())


def _family_rows(fam: ModuleType, session: Session, scope: Scope, period: Period,
                 by: str | None) -> dict[Any, dict[str, Value]]:
    if by in ("week", "month") and not getattr(fam, "ADDITIVE", True):
        per = {b.start: fam.counts(session, scope, b, None).get(None) for b in fam.buckets(period, by)}
        return {g: fam.derive(c) for g, c in per.items() if c}
    if by in ("week", "month", "day"):
        raw = {as_date(g): c for g, c in fam.counts(session, scope, period, "day").items()}
        if by == "week":
            raw = _fold(raw, _week)
        elif by == "month":
            raw = _fold(raw, lambda d: d.replace(day=1))
        return {g: fam.derive(c) for g, c in raw.items()}
    return {g: fam.derive(c) for g, c in fam.counts(session, scope, period, by).items()}


def headline(session: Session, scope: Scope, period: Period) -> dict[str, Value]:
    """Every figure of ``FIGURES`` for ``scope`` over ``period`` (key → value)."""
    out: dict[str, Value] = {}
    for fam in FAMILIES:
        rows = fam.counts(session, scope, period, None)
        out.update(fam.derive(rows.get(None, {})))
    return out


def quiet_figures() -> dict[str, Value]:
    """The figures of a scope or group with nothing in the period (counts 0, ratios, means
    and P90s None): each family's ``derive`` of no counts — what ``headline`` gives for an
    empty scope, without asking the database."""
    out: dict[str, Value] = {}
    for fam in FAMILIES:
        out.update(fam.derive({}))
    return out


def breakdown(session: Session, scope: Scope, period: Period, by: str) -> list[dict[str, Any]]:
    """One row per group: ``{"group": <outlet/partner/matter/staff id, domain code, or the
    first date of the day/week/month>, <figure key>: value, …}``, sorted by group. Groups
    with nothing in the period are absent. ``by``: outlet | partner | matter | domain |
    staff | day | week | month; ValueError otherwise."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPINGS)}")
    merged: dict[Any, dict[str, Any]] = {}
    for fam in FAMILIES:
        for g, vals in _family_rows(fam, session, scope, period, by).items():
            merged.setdefault(g, {}).update(vals)
    empty = {d.key: None for d in FIGURES}
    rows = [{"group": g, **empty, **vals} for g, vals in merged.items()]
    return sorted(rows, key=lambda r: (r["group"] is None, str(r["group"])))


def trend(session: Session, scope: Scope, key: str, end: date, days: int = 30) -> list[tuple[date, Value]]:
    """Daily values of figure ``key`` for the ``days`` days ending on ``end`` (every day
    present, oldest first). Figures that are a state at a moment (超期未办结数) are computed
    as of each day; others from that day's counts."""
    fam = _FAMILY[figure(key).family]
    period = Period(end - timedelta(days=days - 1), end)
    if key == "overdue_open":  # a state at each day's end: one query over the days
        return list(cases.overdue_by_day(session, scope, period.start, period.end).items())
    rows = _family_rows(fam, session, scope, period, "day")
    zero = fam.derive({})[key]
    return [(d, rows[d][key] if d in rows else zero)
            for d in (period.start + timedelta(days=i) for i in range(days))]


def heatmap(session: Session, scope: Scope, period: Period) -> list[list[int]]:
    """Tickets issued per [weekday 0=Monday..6][hour 0..23], Beijing time."""
    return queue.heatmap(session, scope, period)


_LISTS = {
    "cases": "/figures/rows/cases", "tickets": "/figures/rows/tickets",
    "ratings": "/figures/rows/ratings", "assist": "/figures/rows/assist",
}


def drilldown_filter(key: str) -> dict[str, Any]:
    """Where the rows behind figure ``key`` are listed: ``{"list_kind", "path", "params"}``;
    the caller adds the scope and period (``from``, ``to``, ``outlet``). The rows themselves
    come from :func:`rows_behind`."""
    d = figure(key)
    return {"list_kind": d.list_kind, "path": _LISTS[d.list_kind], "params": {"figure": key}}


def rows_behind(session: Session, scope: Scope, period: Period, key: str, *, limit: int = 50,
                offset: int = 0, matter_id: int | None = None) -> list[int]:
    """Ids of the rows (cases, tickets, ratings, assist requests — see ``list_kind``) behind
    figure ``key`` for ``scope`` and ``period``, newest first, in SQL pages (``limit``,
    ``offset``); ``matter_id`` narrows to one matter (tickets have none: ``[]``). Every
    family defines its ``rows`` beside its counts, so a list and its number agree."""
    fam = _FAMILY[figure(key).family]
    return list(fam.rows(session, scope, period, key, limit=limit, offset=offset, matter_id=matter_id))

