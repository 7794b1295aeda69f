"""The published 好差评 indicators, defined once, as SQL aggregates per outlet.

Period: Beijing calendar days ``[start, end)``. A rating belongs to the period it was
given in; a case to the period it was completed in; a work order to its rating's period.
Excluded ratings (upheld appeal: 误评 / 恶意差评) are left out of every figure — they stay on
record and are counted separately as ``excluded``. A case nobody rated is 未评价, never a
good rating (GB/T 39734-2020 keeps 主动评价 apart). Each indicator is ``None`` when its
denominator is 0 (shown as "—", never as 100 %).

``audit stats`` recomputes the same figures from an export, independently of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlmodel import Session, col

from outlet.clock import utc_bounds
from outlet.models import Case
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import BAD_MAX, GOOD_MIN


def month_bounds(day: date) -> tuple[date, date]:
    """[first day of ``day``'s month, first day of the next month) — the usual period."""
    start = day.replace(day=1)
    end = (start.replace(year=start.year + 1, month=1) if start.month == 12
           else start.replace(month=start.month + 1))
    return start, end


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class Figures:
    """Counts of one outlet (or a total) for a period; the indicators are properties."""

    completed: int = 0  # cases completed in the period
    rated_cases: int = 0  # of those, with at least one (non-excluded) rating
    ratings: int = 0  # non-excluded ratings given in the period
    good: int = 0  # levels 4–5
    bad: int = 0  # levels 1–2 (差评数)
    excluded: int = 0  # ratings excluded after an upheld appeal
    orders: int = 0  # work orders of the period's 差评
    orders_due: int = 0  # … whose 整改 deadline has passed, or that are closed
    orders_closed: int = 0
    real_name_bad: int = 0
    real_name_called: int = 0  # … with at least one recorded call-back attempt
    feedback: int = 0  # work orders with the rater's view recorded
    feedback_satisfied: int = 0  # … 满意 or 基本满意
    sum_overall: int = 0
    sum_efficiency: int = 0
    n_efficiency: int = 0
    sum_competence: int = 0
    n_competence: int = 0
    sum_attitude: int = 0
    n_attitude: int = 0

    def add(self, other: Figures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def unrated(self) -> int:
        """未评价 = completed cases − rated cases."""
        return self.completed - self.rated_cases

    @property
    def active_rate(self) -> float | None:
        """主动评价率 = completed cases with ≥ 1 rating ÷ completed cases."""
        return _rate(self.rated_cases, self.completed)

    @property
    def good_rate(self) -> float | None:
        """好评率 = ratings of level 4–5 ÷ all ratings (excluded ones left out)."""
        return _rate(self.good, self.ratings)

    @property
    def rectify_rate(self) -> float | None:
        """差评整改率 = closed work orders ÷ work orders due (deadline passed or closed)."""
        return _rate(self.orders_closed, self.orders_due)

    @property
    def callback_rate(self) -> float | None:
        """实名差评回访率 = real-name 差评 with a recorded call-back ÷ real-name 差评."""
        return _rate(self.real_name_called, self.real_name_bad)

    @property
    def satisfaction_rate(self) -> float | None:
        """回访整改满意率 = feedback 满意 or 基本满意 ÷ work orders with feedback."""
        return _rate(self.feedback_satisfied, self.feedback)

    @property
    def averages(self) -> dict[str, float | None]:
        """Mean of each dimension over the ratings that gave it (整体 = every rating)."""
        return {"overall": _rate(self.sum_overall, self.ratings),
                "efficiency": _rate(self.sum_efficiency, self.n_efficiency),
                "competence": _rate(self.sum_competence, self.n_competence),
                "attitude": _rate(self.sum_attitude, self.n_attitude)}


def _n(cond: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def outlet_figures(
    session: Session, start: date, end: date, *, outlet_ids: Sequence[int] | None = None,
    staff_id: int | None = None, as_of: date | None = None,
) -> dict[int, Figures]:
    """Figures per outlet id for Beijing days ``[start, end)``; ``staff_id`` narrows to the
    ratings of one staff member and the cases they took in. ``as_of`` (default ``end``)
    decides which work orders are due. Three grouped queries, whatever the outlet count."""
    t0, _ = utc_bounds(start)
    t1, _ = utc_bounds(end)
    due_day = as_of or end
    out: dict[int, Figures] = {}

    def fig(oid: int) -> Figures:
        return out.setdefault(oid, Figures())

    r_scope: ColumnElement[bool] = and_(col(Rating.created_at) >= t0, col(Rating.created_at) < t1)
    if outlet_ids is not None:
        r_scope = and_(r_scope, col(Rating.outlet_id).in_(list(outlet_ids)))
    if staff_id is not None:
        r_scope = and_(r_scope, col(Rating.staff_id) == staff_id)
    kept = col(Rating.excluded).is_(False)
    level = col(Rating.level)
    # Grouping by ``outlet_id + 0`` stops SQLite from walking the (outlet, time) index row
    # by row with a table lookup each; it reads the period's range of the covering index
    # ``ix_rating_figures`` instead (no row visited) and sorts the small result.
    r_key = (col(Rating.outlet_id) + 0).label("oid")
    columns: list[Any] = [
        r_key, _n(kept), _n(and_(kept, level >= GOOD_MIN)),
        _n(and_(kept, level <= BAD_MAX)), _n(col(Rating.excluded).is_(True)),
        func.coalesce(func.sum(case((kept, level), else_=0)), 0),
        *[x for d in (Rating.efficiency, Rating.competence, Rating.attitude) for x in (
            func.coalesce(func.sum(case((kept, col(d)), else_=0)), 0),
            _n(and_(kept, col(d).is_not(None))))],
    ]
    rows = session.execute(select(*columns).where(r_scope).group_by(r_key)).all()
    for oid, n, good, bad, excl, s_all, s_e, n_e, s_c, n_c, s_a, n_a in rows:
        f = fig(oid)
        f.ratings, f.good, f.bad, f.excluded, f.sum_overall = n, good, bad, excl, s_all
        f.sum_efficiency, f.n_efficiency, f.sum_competence, f.n_competence = s_e, n_e, s_c, n_c
        f.sum_attitude, f.n_attitude = s_a, n_a

    c_scope: ColumnElement[bool] = and_(col(Case.completed_at) >= t0, col(Case.completed_at) < t1)
    if outlet_ids is not None:
        c_scope = and_(c_scope, col(Case.outlet_id).in_(list(outlet_ids)))
    if staff_id is not None:
        c_scope = and_(c_scope, col(Case.created_by) == staff_id)
    rated = exists().where(col(Rating.case_id) == Case.id, kept)
    c_key = (col(Case.outlet_id) + 0).label("oid")
    for oid, completed, rated_n in session.execute(
            select(c_key, func.count(), _n(rated)).where(c_scope).group_by(c_key)).all():
        fig(oid).completed, fig(oid).rated_cases = completed, rated_n

    # Work orders from their own (small) table: opened_at is the rating's time, outlet_id
    # the rating's outlet, so the period and scope match the ratings' without scanning them.
    w = RatingWorkOrder
    w_scope: ColumnElement[bool] = and_(col(w.opened_at) >= t0, col(w.opened_at) < t1, kept)
    if outlet_ids is not None:
        w_scope = and_(w_scope, col(w.outlet_id).in_(list(outlet_ids)))
    if staff_id is not None:
        w_scope = and_(w_scope, col(Rating.staff_id) == staff_id)
    closed = col(w.state) == "closed"
    real = col(Rating.real_name).is_(True)
    for oid, orders, due, n_closed, rn, rn_called, fb, fb_ok in session.execute(
        select(col(w.outlet_id), func.count(), _n(closed | (col(w.rectify_due) < due_day)),
               _n(closed), _n(real), _n(and_(real, col(w.callback_at).is_not(None))),
               _n(col(w.feedback_view).is_not(None)),
               _n(col(w.feedback_view).in_(["满意", "基本满意"])))
        .join(Rating, col(Rating.id) == w.rating_id)
        .where(w_scope).group_by(col(w.outlet_id))
    ).all():
        f = fig(oid)
        f.orders, f.orders_due, f.orders_closed = orders, due, n_closed
        f.real_name_bad, f.real_name_called, f.feedback, f.feedback_satisfied = rn, rn_called, fb, fb_ok
    return out


def total(figures: dict[int, Figures]) -> Figures:
    """The sum over outlets (rates recomputed from the summed counts, not averaged)."""
    t = Figures()
    for f in figures.values():
        t.add(f)
    return t


def one_outlet(session: Session, outlet_id: int, start: date, end: date, **kw: object) -> Figures:
    """Figures of one outlet (all zeros when nothing happened)."""
    return outlet_figures(session, start, end, outlet_ids=[outlet_id], **kw).get(  # type: ignore[arg-type]
        outlet_id, Figures())

