"""好差评 figures: the one definition, used by the dashboards and the ratings pages (:func:`cards`).

A rating belongs to the period (Beijing days, inclusive) it was given in; a case to the period
it was completed in; a work order to its rating's period. Ratings excluded after an upheld
appeal (误评 / 恶意差评) are left out of every figure and counted as ``excluded``; a case
nobody rated is 未评价, never a good rating. ``staff``: the rated staff member (for
主动评价率, the ratings naming them). ``audit stats`` recomputes them from ``rating.*`` and
the completion entries (``rating.submit`` carries the level, real-name flag and, for a 差评,
the 整改 deadline in ``terms.due``; ``rating.feedback`` the rater's view). 主动评价率 with a
``staff`` scope: the cases that person took in.

差评整改率 — the rule (one, used by the dashboard, the ratings pages and ``audit stats``):
closed work orders ÷ work orders due (the issue's definition), over the work orders of the
period's kept 差评. Due (应整改) = orders already closed (销号) or whose 整改时限
(``rectify_due``, a Beijing date) is before *today*; an order still open and not yet due is
neither failed nor counted; a due order counts as done only once closed (销号), the end of the
loop (回访 → 整改 → 反馈 → 销号) — an order rectified in time but never closed is not. *Today*: online the Beijing date now
(:func:`counts`' ``today``); offline (``audit stats``) the Beijing date of the newest entry
the export's signed checkpoint covers — never the auditor's wall clock. Sources:
国办发〔2019〕51号 (差评 整改 and 反馈, 实名差评回访整改率 target 100 %); the 整改时限 is
``RatingPolicy.rectify_days`` working days (default 5, Dezhou; 10 Taiyuan, 15 Sichuan —
DOMAIN.md "Ratings — more rules").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlmodel import Session, col

from outlet.clock import local_day
from outlet.figures.base import (
    FigureDef,
    Number,
    Period,
    Scope,
    Value,
    local_date,
    merge,
    n_if,
    rate,
    sum_if,
)
from outlet.models import Case
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import BAD_MAX, GOOD_MIN
from partners.models import MatterVersion, Outlet, utcnow

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
       "差评整改率 = 已销号工单 ÷ 应整改工单, of the period's 差评: 应整改 = work orders closed (销号) "
       "or whose 整改时限 is before today (offline: the day of the export's newest entry)."),
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


DIMENSIONS = ("overall", "efficiency", "competence", "attitude")  # 整体满意度 (the level), 服务效率, 服务水平, 服务态度


def rectify_due(today: date) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """SQL conditions on ``RatingWorkOrder`` for 差评整改率 (the rule: module docstring):
    (应整改 — closed, or the 整改时限 is before ``today``, a Beijing date; closed — 销号)."""
    w = RatingWorkOrder
    due = or_(col(w.state) == "closed", col(w.rectify_due) < today)
    return due, col(w.state) == "closed"


def _scoped(q: Any, scope: Scope, period: Period, joins: list[tuple[Any, Any]]) -> Any:
    t0, t1 = period.utc
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(col(Rating.created_at) >= t0, col(Rating.created_at) < t1)
    if scope.outlet_ids is not None:
        q = q.where(col(Rating.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(col(Rating.staff_id) == scope.staff_id)
    return q


def _rows(session: Session, q: Any, key: Any, names: tuple[str, ...],
          out: dict[Any, dict[str, Number]]) -> None:
    if key is not None:
        q = q.group_by(key)
    for row in session.execute(q).all():
        g, vals = (row[0], row[1:]) if key is not None else (None, row)
        if key is None and not any(vals):
            continue
        c = out.setdefault(g, {})
        c.update({n: int(v or 0) for n, v in zip(names, vals, strict=True)})


def counts(session: Session, scope: Scope, period: Period, by: str | None = None, *,
           today: date | None = None) -> dict[Any, dict[str, Number]]:
    """Three grouped aggregates: the period's ratings (read from the covering index
    ``ix_rating_figures``, no row visited), the work orders of its 差评 (their own small
    table, joined to the rating), and the cases completed in it. Besides the counts the
    figures need: the sums and counts of each dimension (``sum_overall`` … ``n_attitude``),
    for the means the ratings pages show. ``today`` (Beijing date, default: now) decides
    which work orders are 应整改 (:func:`rectify_due`)."""
    key, joins = _rating_group(session, by)
    kept = col(Rating.excluded).is_(False)
    level = col(Rating.level)
    dims = (Rating.efficiency, Rating.competence, Rating.attitude)
    cols = [n_if(kept), n_if(and_(kept, level >= GOOD_MIN)), n_if(and_(kept, level <= BAD_MAX)),
            n_if(col(Rating.excluded).is_(True)), sum_if(kept, level),
            *[x for d in dims for x in (sum_if(and_(kept, col(d).is_not(None)), col(d)),
                                        n_if(and_(kept, col(d).is_not(None))))]]
    names = ("ratings", "good", "bad", "excluded", "sum_overall", "sum_efficiency", "n_efficiency",
             "sum_competence", "n_competence", "sum_attitude", "n_attitude")
    out: dict[Any, dict[str, Number]] = {}
    q = select(*([key] if key is not None else []), *cols).select_from(Rating)
    _rows(session, _scoped(q, scope, period, joins), key, names, out)
    w = RatingWorkOrder
    due, closed = rectify_due(today or local_day(utcnow()))
    real = col(Rating.real_name).is_(True)
    cols = [func.count(), n_if(due), n_if(closed), n_if(real),
            n_if(and_(real, col(w.callback_at).is_not(None))), n_if(col(w.feedback_view).is_not(None)),
            n_if(col(w.feedback_view).in_(["满意", "基本满意"]))]
    names = ("orders", "orders_due", "orders_closed", "real_name_bad", "real_name_called", "feedback",
             "feedback_satisfied")
    q = select(*([key] if key is not None else []), *cols).select_from(w).join(
        Rating, col(Rating.id) == w.rating_id).where(kept)
    _rows(session, _scoped(q, scope, period, joins), key, names, out)
    for g, (done, rated) in _completed(session, scope, period, by).items():
        if done or rated or g is not None:
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


def card(c: dict[str, Number]) -> dict[str, Any]:
    """One group's 好差评 figures as the ratings pages show them: the figures of ``DEFS``
    (:func:`derive`), the counts they come from, 未评价 (``unrated`` = completed − rated
    cases) and the mean of each dimension over the kept ratings that gave it
    (``averages``; 整体 = the level of every kept rating), None without ratings."""
    g = c.get
    return {**{k: g(k, 0) for k in ("completed", "rated_cases", "good", "orders", "orders_due",
                                    "orders_closed", "real_name_bad", "real_name_called")},
            **derive(c), "unrated": g("completed", 0) - g("rated_cases", 0),
            "averages": {"overall": rate(g("sum_overall", 0), g("ratings", 0)),
                         **{d: rate(g(f"sum_{d}", 0), g(f"n_{d}", 0)) for d in DIMENSIONS[1:]}}}


def cards(session: Session, scope: Scope, period: Period, by: str = "outlet", *,
          today: date | None = None) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """(per group ``by`` → :func:`card`, the card of the whole scope): one pass of
    :func:`counts` (``today`` as there), the total summed from the groups' counts (ratios
    recomputed, never averaged)."""
    per = counts(session, scope, period, by, today=today)
    total: dict[str, Number] = {}
    for c in per.values():
        merge(total, c)
    return {g: card(c) for g, c in per.items()}, card(total)


def rows(session: Session, scope: Scope, period: Period, key: str, *, limit: int = 50,
         offset: int = 0, matter_id: int | None = None, today: date | None = None) -> list[int]:
    """Ids behind figure ``key``, newest first: the period's kept ratings (评价数, 好评率),
    its kept 差评 (差评数), its excluded ones (申诉剔除数), the kept 差评 with a work order
    (回访率, 满意率), those whose order is 应整改 as of ``today`` (整改率, :func:`rectify_due`)
    — rating ids; for 主动评价率 the cases completed in the period (case ids, its
    denominator). ``matter_id``: only ratings of that matter's cases."""
    t0, t1 = period.utc
    if key == "active_rate":
        q: Any = select(col(Case.id)).where(col(Case.completed_at) >= t0, col(Case.completed_at) < t1)
        if scope.outlet_ids is not None:
            q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
        if scope.staff_id is not None:
            q = q.where(col(Case.created_by) == scope.staff_id)
        if matter_id is not None:
            q = q.where(col(Case.matter_id) == matter_id)
        q = q.order_by(col(Case.completed_at).desc(), col(Case.id).desc())
        return [int(i) for i in session.execute(q.limit(limit).offset(offset)).scalars().all()]
    kept = col(Rating.excluded).is_(False)
    where = {"ratings": kept, "good_rate": kept, "bad": and_(kept, col(Rating.level) <= BAD_MAX),
             "excluded": col(Rating.excluded).is_(True)}.get(key)
    q = _scoped(select(col(Rating.id)), scope, period, [])
    if where is None:  # the work-order figures: the kept 差评 that have one
        q = q.join(RatingWorkOrder, col(RatingWorkOrder.rating_id) == Rating.id).where(kept)
        if key == "rectify_rate":
            q = q.where(rectify_due(today or local_day(utcnow()))[0])
    else:
        q = q.where(where)
    if matter_id is not None:
        q = q.join(Case, col(Case.id) == Rating.case_id).where(col(Case.matter_id) == matter_id)
    q = q.order_by(col(Rating.created_at).desc(), col(Rating.id).desc())
    return [int(i) for i in session.execute(q.limit(limit).offset(offset)).scalars().all()]
