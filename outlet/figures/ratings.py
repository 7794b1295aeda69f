"""好差评 figures, with the same definitions as the ratings pages (``outlet/ratings/figures.py``).

A rating belongs to the period (Beijing days, inclusive) it was given in; a case to the period
it was completed in; a work order to its rating's period. Ratings excluded after an upheld
appeal (误评 / 恶意差评) are left out of every figure and counted as ``excluded``; a case
nobody rated is 未评价, never a good rating. ``staff``: the rated staff member (for
主动评价率, the ratings naming them). ``audit stats`` recomputes them from ``rating.*`` and
the completion entries (``rating.submit`` carries the level, real-name flag and, for a 差评,
the 整改 deadline in ``terms.due``; ``rating.feedback`` the rater's view). 主动评价率 with a
``staff`` scope: the cases that person took in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, select
from sqlmodel import Session, col

from outlet.figures.base import FigureDef, Number, Period, Scope, Value, local_date, n_if, rate
from outlet.models import Case
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import BAD_MAX, GOOD_MIN
from partners.models import MatterVersion, Outlet

F = "ratings"


def _d(key: str, label: str, unit: str, doc: str, kind: str = "ratings") -> FigureDef:
    return FigureDef(key, label, F, unit, doc, kind)


DEFS: tuple[FigureDef, ...] = (
    _d("ratings", "评价数", "count", "评价数 = ratings given in the period, excluded ones left out."),
    _d("active_rate", "主动评价率", "ratio",
       "主动评价率 = cases completed in the period with ≥ 1 (non-excluded) rating ÷ cases "
       "completed in the period.", "cases"),
    _d("good_rate", "好评率", "ratio", "好评率 = ratings of level 4–5 ÷ 评价数."),
    _d("bad", "差评数", "count", "差评数 = ratings of level 1–2 in the period (excluded ones left out)."),
    _d("excluded", "申诉剔除数", "count",
       "申诉剔除数 = ratings of the period excluded after an upheld appeal."),
    _d("rectify_rate", "差评整改率", "ratio",
       "差评整改率 = work orders closed (销号) ÷ work orders due (整改 deadline on or before the "
       "period's last day, or closed), of the period's 差评."),
    _d("callback_rate", "实名差评回访率", "ratio",
       "实名差评回访率 = real-name 差评 of the period with a recorded call-back ÷ real-name 差评."),
    _d("satisfaction_rate", "回访整改满意率", "ratio",
       "回访整改满意率 = work orders whose rater said 满意 or 基本满意 ÷ work orders with the "
       "rater's view recorded (反馈), of the period's 差评."),
)


def _rating_group(session: Session, by: str | None) -> tuple[Any, list[tuple[Any, Any]]]:
    if by is None:
        return None, []
    if by == "outlet":
        return col(Rating.outlet_id), []
    if by == "partner":
        return col(Outlet.partner_id), [(Outlet, col(Outlet.id) == Rating.outlet_id)]
    if by == "staff":
        return col(Rating.staff_id), []
    if by == "day":
        return local_date(session, col(Rating.created_at)), []
    if by in ("matter", "domain"):  # only ratings of a case have a matter
        c = [(Case, col(Case.id) == Rating.case_id)]
        if by == "matter":
            return col(Case.matter_id), c
        return col(MatterVersion.domain), [*c, (MatterVersion, col(MatterVersion.id) == Case.matter_version_id)]
    raise ValueError(f"unknown grouping {by!r}")


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    """Two grouped aggregates over the ratings (with their work orders) of the period, one
    over the cases completed in it."""
    t0, t1 = period.utc
    key, joins = _rating_group(session, by)
    kept = col(Rating.excluded).is_(False)
    level = col(Rating.level)
    w = RatingWorkOrder
    bad_kept = and_(kept, col(w.id).is_not(None))
    closed = col(w.state) == "closed"
    real = col(Rating.real_name).is_(True)
    cols = [n_if(kept), n_if(and_(kept, level >= GOOD_MIN)), n_if(and_(kept, level <= BAD_MAX)),
            n_if(col(Rating.excluded).is_(True)), n_if(bad_kept),
            n_if(and_(bad_kept, closed | (col(w.rectify_due) <= period.end))),
            n_if(and_(bad_kept, closed)), n_if(and_(bad_kept, real)),
            n_if(and_(bad_kept, real, col(w.callback_at).is_not(None))),
            n_if(and_(bad_kept, col(w.feedback_view).is_not(None))),
            n_if(and_(bad_kept, col(w.feedback_view).in_(["满意", "基本满意"])))]
    names = ("ratings", "good", "bad", "excluded", "orders", "orders_due", "orders_closed",
             "real_name_bad", "real_name_called", "feedback", "feedback_satisfied")
    q = select(*([key] if key is not None else []), *cols).select_from(Rating).outerjoin(
        w, col(w.rating_id) == Rating.id)
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(col(Rating.created_at) >= t0, col(Rating.created_at) < t1)
    if scope.outlet_ids is not None:
        q = q.where(col(Rating.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(col(Rating.staff_id) == scope.staff_id)
    if key is not None:
        q = q.group_by(key)
    out: dict[Any, dict[str, Number]] = {}
    for row in session.execute(q).all():
        g, vals = (row[0], row[1:]) if key is not None else (None, row)
        out[g] = {n: int(v or 0) for n, v in zip(names, vals, strict=True)}
    for g, (done, rated) in _completed(session, scope, period, by).items():
        c = out.setdefault(g, {})
        c["completed"], c["rated_cases"] = done, rated
    return out


def _completed(session: Session, scope: Scope, period: Period, by: str | None) -> dict[Any, tuple[int, int]]:
    """Cases completed in the period and how many of them have a kept rating (any time);
    ``staff``: the cases that staff member took in (``Case.created_by``)."""
    from outlet.figures.cases import _group  # the case groupings (no event table here)

    t0, t1 = period.utc
    rated = exists().where(col(Rating.case_id) == Case.id, col(Rating.excluded).is_(False))
    key: Any
    joins: list[tuple[Any, Any]]
    if by == "day":
        key, joins = local_date(session, col(Case.completed_at)), []
    elif by == "staff":
        key, joins = col(Case.created_by), []
    elif by is not None:
        key, joins = _group(session, by, None)
    else:
        key, joins = None, []
    q = select(*([key] if key is not None else []), n_if(col(Case.id).is_not(None)), n_if(rated))
    q = q.select_from(Case)
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(col(Case.completed_at) >= t0, col(Case.completed_at) < t1)
    if scope.outlet_ids is not None:
        q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(col(Case.created_by) == scope.staff_id)
    if key is not None:
        q = q.group_by(key)
        return {g: (int(a), int(b)) for g, a, b in session.execute(q).all()}
    a, b = session.execute(q).one()
    return {None: (int(a or 0), int(b or 0))}


def derive(c: dict[str, Number]) -> dict[str, Value]:
    g = c.get
    return {
        "ratings": g("ratings", 0), "active_rate": rate(g("rated_cases", 0), g("completed", 0)),
        "good_rate": rate(g("good", 0), g("ratings", 0)), "bad": g("bad", 0),
        "excluded": g("excluded", 0),
        "rectify_rate": rate(g("orders_closed", 0), g("orders_due", 0)),
        "callback_rate": rate(g("real_name_called", 0), g("real_name_bad", 0)),
        "satisfaction_rate": rate(g("feedback_satisfied", 0), g("feedback", 0)),
    }  # fmt: skip
