"""Shared pieces of the figure families: scope, period, definitions, SQL helpers.

Every family module (``cases``, ``video``, ``ratings``, ``queue``) exposes ``DEFS`` (its
:class:`FigureDef` tuple), ``counts(session, scope, period, by)`` — additive counts per group,
one or a few grouped SQL aggregates — and ``derive(counts)`` — the figures from those counts.
Counts add up, so a week or a month is the sum of its days and a partner the sum of its
outlets; ratios are recomputed from the summed counts, never averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, case, cast, func
from sqlalchemy.sql.elements import literal_column
from sqlmodel import Session

from outlet.clock import utc_bounds

Number = int | float
Value = int | float | None
# Group keys: an id (outlet, partner, matter, staff), a domain code, an ISO date (day), or
# None for the whole scope.
GROUPINGS = ("outlet", "partner", "matter", "domain", "staff", "day", "week", "month")


@dataclass(frozen=True)
class Scope:
    """What rows count: ``outlet_ids`` None = every outlet; ``staff_id`` narrows to what that
    person did (the actor of the case step, the expert of a call, the rated staff member,
    the staff member at the counter)."""

    outlet_ids: frozenset[int] | None = None
    staff_id: int | None = None


@dataclass(frozen=True)
class Period:
    """Inclusive Asia/Shanghai calendar dates ``start``..``end``."""

    start: date
    end: date

    @property
    def utc(self) -> tuple[datetime, datetime]:
        """Naive-UTC ``[t0, t1)`` of the period."""
        return utc_bounds(self.start)[0], utc_bounds(self.end)[1]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class FigureDef:
    """One published figure. ``unit``: count | ratio (0..1) | days | seconds | minutes | per_case (a mean count).
    ``list_kind``: which list shows the rows behind it (cases | tickets | ratings | assist).
    ``verifiable``: ``servicepoint audit stats`` recomputes it from the log alone."""

    key: str
    label: str
    family: str
    unit: str
    doc: str
    list_kind: str
    verifiable: bool = True


def rate(num: Number, den: Number) -> float | None:
    """num ÷ den, None when the denominator is 0 (shown as "—", never as 100 %)."""
    return float(num) / float(den) if den else None


def avg(total: Number, n: Number) -> float | None:
    return float(total) / float(n) if n else None


def n_if(cond: ColumnElement[bool]) -> Any:
    """SUM(CASE WHEN cond THEN 1 ELSE 0 END), 0 for no rows."""
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def sum_if(cond: ColumnElement[bool], value: Any) -> Any:
    return func.coalesce(func.sum(case((cond, value), else_=0)), 0)


def local_date(session: Session, at: Any) -> Any:
    """SQL expression: the Beijing calendar date of a naive-UTC timestamp column, as an
    ISO ``YYYY-MM-DD`` string on SQLite and a DATE on PostgreSQL (normalised by
    :func:`as_date`)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(at + literal_column("interval '8 hours'"), Date)
    return func.date(at, "+8 hours")


def seconds_between(session: Session, a: Any, b: Any) -> Any:
    """SQL expression: ``b − a`` in seconds (float, exact to the microsecond) for two naive
    timestamp columns. SQLite's julianday() keeps only milliseconds, so there whole seconds
    come from strftime('%s') and the microseconds from the stored text
    (``YYYY-MM-DD HH:MM:SS.ffffff``, as SQLAlchemy writes it)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", b - a)

    def micros(x: Any) -> Any:
        return func.coalesce(cast(func.substr(x, 21, 6), Integer), 0)

    def whole(x: Any) -> Any:  # the text up to the seconds: SQLite would round .9995 up
        return cast(func.strftime("%s", func.substr(x, 1, 19)), Integer)

    return whole(b) - whole(a) + (micros(b) - micros(a)) / 1_000_000.0



def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def merge(into: dict[str, Number], more: Mapping[str, Number]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v
