"""Case figures (办件), from the case history (``CaseEvent``, one row per audited step, same
time as its audit entry) joined with the case row.

A step belongs to the period (Asia/Shanghai days, inclusive) in which it happened: received
by its ``case.create``, accepted by its ``case.accept`` / ``case.accept_rongque``, completed by
its ``case.approve`` / ``case.reject`` / ``case.complete_onsite`` (办结). Refused attempts are
not steps (they leave no history row; the log records them with ``outcome: refused``). The
committed date (承诺办结日期) is set at acceptance on the working-day calendar
(``outlet.workdays``: weekends, the State Council holidays and the maintained overrides).
``audit stats`` recomputes every figure here from the entries alone (``audit/stats.py``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from outlet.clock import utc_bounds
from outlet.figures.base import (
    FigureDef,
    Number,
    Period,
    Scope,
    Value,
    as_date,
    avg,
    local_date,
    n_if,
    rate,
)
from outlet.figures.daily import ACCEPT, COMPLETE, NAMES, CaseDaily
from outlet.models import Case, CaseEvent
from partners.models import MatterVersion, Outlet

F = "cases"


def _d(key: str, label: str, unit: str, doc: str) -> FigureDef:
    return FigureDef(key, label, F, unit, doc, "cases")


DEFS: tuple[FigureDef, ...] = (
    _d("received", "收件数", "count", "收件数 = cases created (case.create) in the period."),
    _d("accepted", "受理数", "count",
       "受理数 = case.accept + case.accept_rongque steps in the period."),
    _d("refused", "不予受理数", "count", "不予受理数 = case.refuse steps in the period."),
    _d("notices", "一次性告知数", "count",
       "一次性告知数 = 一次性告知书 issued (case.notice) in the period."),
    _d("rongque", "容缺受理数", "count", "容缺受理数 = case.accept_rongque steps in the period."),
    _d("rongque_supplied_rate", "容缺补齐率", "ratio",
       "容缺补齐率 = 容缺-accepted cases of the period whose deferred materials were all "
       "supplied (case.supply moving 容缺 → 已受理) by the end of the period ÷ 容缺受理数."),
    _d("forwarded", "转报数", "count", "转报数 = case.forward steps in the period (a 补正 "
       "resubmission is not counted again)."),
    _d("completed", "办结数", "count",
       "办结数 = case.approve + case.reject + case.complete_onsite steps in the period."),
    _d("instant_share", "即办件占比", "ratio",
       "即办件占比 = cases completed on the spot (case.complete_onsite) ÷ 办结数."),
    _d("on_time_rate", "按期办结率", "ratio",
       "按期办结率 = cases completed on or before the committed date (Beijing completion "
       "date ≤ 承诺办结日期) ÷ 办结数."),
    _d("early_rate", "提前办结率", "ratio",
       "提前办结率 = cases completed before the committed date ÷ 办结数."),
    _d("completed_late", "超期办结数", "count",
       "超期办结数 = cases completed in the period after their committed date."),
    _d("overdue_open", "超期未办结数", "count",
       "超期未办结数 = cases accepted by the end of the period, neither completed nor withdrawn "
       "by then, whose committed date is before the period's last day (as of the last day; "
       "for a period ending today: overdue and still open today)."),
    _d("avg_handling_days", "平均办理时长（工作日）", "days",
       "平均办理时长 = mean over the period's completed cases of the working days from the "
       "acceptance date to the completion date (WorkCalendar.workdays_between: days in "
       "(accepted, completed] that are working days; same day = 0)."),
    _d("corrections_per_case", "平均补正次数", "per_case",
       "平均补正次数 = 补正 requests (case.request_correction) of the period's completed cases "
       "÷ 办结数."),
)


def _group(session: Session, by: str | None, ev: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """(group expression, joins) for ``by``; joins are (entity, on-clause)."""
    if by is None:
        return None, []
    if by == "outlet":
        return col(Case.outlet_id), []
    if by == "partner":
        return col(Outlet.partner_id), [(Outlet, col(Outlet.id) == Case.outlet_id)]
    if by == "matter":
        return col(Case.matter_id), []
    if by == "domain":
        return col(MatterVersion.domain), [(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)]
    if by == "staff":
        return ev.actor_id, []
    if by == "day":
        return local_date(session, ev.at), []
    raise ValueError(f"unknown grouping {by!r}")


def _daily_group(by: str | None, d: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """(group expression, joins) for ``by`` over the rollup ``figures_daily`` (``d``)."""
    if by is None:
        return None, []
    if by == "partner":
        return col(Outlet.partner_id), [(Outlet, col(Outlet.id) == d.c.outlet_id)]
    if by == "domain":
        return col(MatterVersion.domain), [(MatterVersion, col(MatterVersion.id) == d.c.matter_version_id)]
    column = {"outlet": "outlet_id", "matter": "matter_id", "staff": "staff_id", "day": "day"}.get(by)
    if column is None:
        raise ValueError(f"unknown grouping {by!r}")
    return d.c[column], []


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    """Additive counts per group: the period's step counts summed from the per-day rollup
    (``figures_daily``, kept with every step: :mod:`outlet.figures.daily`), then two grouped
    aggregates over the raw rows (容缺 acceptances supplied by the period's end; the cases
    open and overdue at its end)."""
    t0, t1 = period.utc
    d = CaseDaily.__table__  # type: ignore[attr-defined]
    key, joins = _daily_group(by, d)
    q = select(*([key] if key is not None else []), *[func.coalesce(func.sum(d.c[n]), 0) for n in NAMES])
    q = q.select_from(d)
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(d.c.day >= period.start, d.c.day <= period.end)
    if scope.outlet_ids is not None:
        q = q.where(d.c.outlet_id.in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(d.c.staff_id == scope.staff_id)
    norm = as_date if by == "day" else (lambda g: g)  # one key for a day, whatever the driver returns
    out: dict[Any, dict[str, Number]] = {}
    for row in session.execute(q.group_by(key) if key is not None else q).all():
        g, vals = (norm(row[0]), row[1:]) if key is not None else (None, row)
        out[g] = {n: int(v or 0) for n, v in zip(NAMES, vals, strict=True)}
    # 容缺 supplied by the period's end: a correlated look-up for the (few) 容缺 acceptances
    ev = CaseEvent.__table__.alias("ev")  # type: ignore[attr-defined]
    sup = aliased(CaseEvent)
    key, joins = _group(session, by, ev.c)
    q = select(*([key] if key is not None else []), func.count()).select_from(ev).join(
        Case, col(Case.id) == ev.c.case_id)
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(ev.c.action == "case.accept_rongque", ev.c.at >= t0, ev.c.at < t1,
                exists().where(col(sup.case_id) == ev.c.case_id, col(sup.action) == "case.supply",
                               col(sup.to_state) == "accepted", col(sup.at) < t1))
    if scope.outlet_ids is not None:
        q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(ev.c.actor_id == scope.staff_id)
    for row in session.execute(q.group_by(key) if key is not None else q).all():
        g, n = (norm(row[0]), row[1]) if key is not None else (None, row[0])
        if n:
            out.setdefault(g, {})["rongque_supplied"] = int(n)
    if by in (None, "outlet", "partner", "matter", "domain", "staff"):
        for g, n in _overdue_open(session, scope, period, by).items():
            out.setdefault(g, {})["overdue_open"] = n
    return out


def _open_at(t1: Any) -> Any:
    """SQL condition: the case was not completed before ``t1`` (naive UTC). Written as a
    look-up in the union of the two index ranges of ``completed_at`` (still open; completed
    at or after ``t1``) — a few thousand rows — so neither database walks every case whose
    committed date has passed (all of them, a year on)."""
    still_open = select(col(Case.id)).where(col(Case.completed_at).is_(None))
    later = select(col(Case.id)).where(col(Case.completed_at) >= t1)
    return col(Case.id).in_(still_open.union_all(later))


def _overdue_open(session: Session, scope: Scope, period: Period, by: str | None) -> dict[Any, int]:
    """Cases accepted before the period's end, not completed or withdrawn by then, with a
    committed date before the period's last day. ``staff``: the staff member who accepted."""
    _, t1 = period.utc
    w = aliased(CaseEvent)
    closed_by_withdraw = exists().where(col(w.case_id) == Case.id, col(w.action) == "case.withdraw",
                                        col(w.at) < t1)
    acc = CaseEvent.__table__.alias("acc")  # type: ignore[attr-defined]
    key, joins = _group(session, by, acc.c) if by != "staff" else (acc.c.actor_id, [])
    q = select(*([key] if key is not None else []), n_if(col(Case.id).is_not(None))).select_from(Case)
    if by == "staff" or scope.staff_id is not None:
        q = q.join(acc, and_(acc.c.case_id == Case.id, acc.c.action.in_(ACCEPT)))
    for entity, on in joins:
        q = q.join(entity, on)
    q = q.where(_open_at(t1), col(Case.accepted_at) < t1, col(Case.due_on) < period.end,
                ~closed_by_withdraw)
    if scope.outlet_ids is not None:
        q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(acc.c.actor_id == scope.staff_id)
    if key is not None:
        q = q.group_by(key)
        return {g: int(n) for g, n in session.execute(q).all()}
    return {None: int(session.execute(q).scalar_one() or 0)}


def overdue_by_day(session: Session, scope: Scope, first: date, last: date) -> dict[date, int]:
    """超期未办结数 as of each day ``first``..``last`` (each day's value is
    :func:`counts`' ``overdue_open`` for a period ending that day). A case counts on day D
    when it was accepted by the end of D, its committed date is before D, and it was neither
    completed nor withdrawn by the end of D: in Beijing dates, on the days from
    max(accepted, committed + 1) to min(completed, withdrawn) − 1 — one range per case. One
    grouped query gives the candidate cases (open at the end of ``first``, accepted by the end
    of ``last``, due before ``last``) counted per (accepted, committed, completed, withdrawn)
    dates; their ranges are added up per day here."""
    t1_first, t1_last = utc_bounds(first)[1], utc_bounds(last)[1]
    w = aliased(CaseEvent)
    withdrawn = (select(col(w.case_id).label("case_id"), func.min(col(w.at)).label("at"))
                 .where(col(w.action) == "case.withdraw").group_by(col(w.case_id)).subquery("wd"))
    dates = (local_date(session, col(Case.accepted_at)), col(Case.due_on),
             local_date(session, col(Case.completed_at)), local_date(session, withdrawn.c.at))
    q = (select(*dates, func.count()).select_from(Case)
         .outerjoin(withdrawn, withdrawn.c.case_id == Case.id)
         .where(_open_at(t1_first), col(Case.accepted_at) < t1_last, col(Case.due_on) < last))
    if scope.outlet_ids is not None:
        q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(_accepted_by(scope.staff_id))
    days = (last - first).days + 1
    step = [0] * (days + 1)  # differences: +n where a range starts, −n after it ends
    for accepted, due, done, gone, n in session.execute(q.group_by(*dates)).all():
        lo = max(first, as_date(accepted), as_date(due) + timedelta(days=1))
        hi = min([last, *(as_date(x) - timedelta(days=1) for x in (done, gone) if x is not None)])
        if lo <= hi:
            step[(lo - first).days] += int(n)
            step[(hi - first).days + 1] -= int(n)
    out: dict[date, int] = {}
    running = 0
    for i in range(days):
        running += step[i]
        out[first + timedelta(days=i)] = running
    return out


def _accepted_by(staff_id: int) -> Any:
    """SQL condition: the case (``Case`` in the query) was 受理'd by staff ``staff_id`` —
    how a teller's own 超期未办结 cases are chosen."""
    acc = aliased(CaseEvent)
    return exists().where(col(acc.case_id) == Case.id, col(acc.action).in_(ACCEPT),
                          col(acc.actor_id) == staff_id)


def derive(c: dict[str, Number]) -> dict[str, Value]:
    """The figures of ``DEFS`` from one group's counts."""
    g = c.get
    done = g("completed", 0)
    return {
        "received": g("received", 0), "accepted": g("accepted", 0), "refused": g("refused", 0),
        "notices": g("notices", 0), "rongque": g("rongque", 0),
        "rongque_supplied_rate": rate(g("rongque_supplied", 0), g("rongque", 0)),
        "forwarded": g("forwarded", 0), "completed": done,
        "instant_share": rate(g("onsite", 0), done), "on_time_rate": rate(g("on_time", 0), done),
        "early_rate": rate(g("early", 0), done), "completed_late": g("completed_late", 0),
        "overdue_open": g("overdue_open", 0),
        "avg_handling_days": avg(g("sum_workdays", 0), g("n_workdays", 0)),
        "corrections_per_case": rate(g("sum_corrections", 0), done),
    }  # fmt: skip


# The rows behind each figure: a count lists its own cases; a ratio or a mean lists the
# cases of its denominator (the completed cases for 按期办结率, …).
_ROWS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "received": (("case.create",), None), "accepted": (ACCEPT, None), "refused": (("case.refuse",), None),
    "notices": (("case.notice",), None), "rongque": (("case.accept_rongque",), None),
    "rongque_supplied_rate": (("case.accept_rongque",), None), "forwarded": (("case.forward",), None),
    "completed": (COMPLETE, None), "instant_share": (COMPLETE, None), "on_time_rate": (COMPLETE, None),
    "early_rate": (COMPLETE, None), "completed_late": (COMPLETE, "late"),
    "avg_handling_days": (COMPLETE, None), "corrections_per_case": (COMPLETE, None),
}  # fmt: skip


def rows(session: Session, scope: Scope, period: Period, key: str, *, limit: int = 50,
         offset: int = 0, matter_id: int | None = None) -> list[int]:
    """Case ids behind figure ``key`` (newest step first); see ``_ROWS``. ``matter_id``:
    only that matter's cases."""
    t0, t1 = period.utc
    of_matter = [col(Case.matter_id) == matter_id] if matter_id is not None else []
    if key == "overdue_open":
        w = aliased(CaseEvent)
        q: Any = select(col(Case.id)).where(
            _open_at(t1), col(Case.accepted_at) < t1, col(Case.due_on) < period.end,
            ~exists().where(col(w.case_id) == Case.id, col(w.action) == "case.withdraw", col(w.at) < t1),
            *of_matter)
        if scope.outlet_ids is not None:
            q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
        if scope.staff_id is not None:
            q = q.where(_accepted_by(scope.staff_id))
        q = q.order_by(col(Case.due_on), col(Case.id)).limit(limit).offset(offset)
        return [int(i) for i in session.execute(q).scalars().all()]
    actions, extra = _ROWS[key]
    ev = aliased(CaseEvent)
    q = select(col(Case.id), func.max(col(ev.at))).join(ev, col(ev.case_id) == Case.id).where(
        col(ev.action).in_(actions), col(ev.at) >= t0, col(ev.at) < t1, *of_matter)
    if extra == "late":
        q = q.where(col(Case.completed_on) > col(Case.due_on))
    if scope.outlet_ids is not None:
        q = q.where(col(Case.outlet_id).in_(sorted(scope.outlet_ids)))
    if scope.staff_id is not None:
        q = q.where(col(ev.actor_id) == scope.staff_id)
    q = q.group_by(col(Case.id)).order_by(func.max(col(ev.at)).desc(), col(Case.id).desc())
    return [int(i) for i, _at in session.execute(q.limit(limit).offset(offset)).all()]
