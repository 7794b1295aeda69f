"""效能监测: the dashboard of service figures per scope. Mounted at ``/figures`` (files and
the report: :mod:`web.routes.figures_files`; the rows behind a number:
:mod:`web.routes.figures_rows`).

Who sees what is :func:`partners.authorize.figure_view` (center admin: every outlet;
合作方管理员: the partner's outlets; outlet lead: own outlet; teller, block agent, expert:
their own figures). ``?outlet=ID`` narrows to one outlet of the view; an outlet outside it
is 404, like a guessed case number. The figures themselves are :mod:`outlet.figures` (one
definition each, SQL aggregates); this module only picks the period and the scope and draws
the charts (:mod:`web.charts`). All database work runs in a worker thread on the read-only
engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.clock import local_day
from outlet.figures import (
    FIGURES,
    FigureDef,
    Period,
    Scope,
    breakdown,
    drilldown_filter,
    headline,
    heatmap,
    quiet_figures,
    trend,
)
from partners.authorize import FIGURE_ROLES, FigureView, figure_view
from partners.errors import RoleLacksAction
from partners.models import Matter, MatterVersion, Outlet, Partner, Staff, utcnow
from web import charts
from web.auth import requires_roles
from web.db import reader
from web.figure_exports import display
from web.params import int_param
from web.routes.case_views import actor_of, is_htmx, render

ROLES = tuple(sorted(FIGURE_ROLES))
PERIODS = {"day": ("当日", 1), "week": ("近 7 天", 7), "month": ("近 30 天", 30), "custom": ("自定义", 0)}
MAX_DAYS = 366
TREND_DAYS = 30
BAR_LIMIT = 15  # bars drawn; the table under the chart lists every row
BY_CHOICES = {"outlet": "按网点", "matter": "按事项"}
FAMILY_LABELS = {"cases": "办件", "video": "视频帮办与远程勘验", "ratings": "好差评", "queue": "排队叫号"}
UNIT_WORDS = {"days": "工作日", "seconds": "秒", "minutes": "分钟"}


class BadPeriod(ValueError):
    """A period the user typed that cannot be used; the message is Chinese."""


# No delegated action predates this; earlier dates (0001-01-01) overflowed the UTC bounds.
EARLIEST = date(2000, 1, 1)


def check_earliest(day: date) -> date:
    """``day`` when on or after :data:`EARLIEST`; :class:`BadPeriod` otherwise."""
    if day < EARLIEST:
        raise BadPeriod(f"日期不能早于 {EARLIEST.isoformat()}")
    return day


def parse_day(value: str | None, name: str) -> date:
    """An ISO date ``YYYY-MM-DD`` from a query value; :class:`BadPeriod` otherwise."""
    text = (value or "").strip()
    if not text:
        raise BadPeriod(f"请填写{name}（格式 YYYY-MM-DD）")
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise BadPeriod(f"{name}「{text[:20]}」不是有效日期（格式 YYYY-MM-DD）") from None
    return check_earliest(day)


def date_range(start_text: str | None, end_text: str | None, today: date) -> Period:
    """A custom period from two ISO dates (inclusive), at most :data:`MAX_DAYS` days, not
    ending after today (Asia/Shanghai). Raises :class:`BadPeriod` with the reason."""
    start, end = parse_day(start_text, "开始日期"), parse_day(end_text, "结束日期")
    if end < start:
        raise BadPeriod("结束日期不能早于开始日期")
    if end > today:
        raise BadPeriod(f"结束日期不能晚于今天（{today.isoformat()}）")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadPeriod(f"统计区间不能超过 {MAX_DAYS} 天")
    return Period(start, end)


def previous(period: Period) -> Period:
    """The period of the same length just before ``period``."""
    days = (period.end - period.start).days + 1
    return Period(period.start - timedelta(days=days), period.start - timedelta(days=1))


@dataclass
class Query:
    """The dashboard's query string, validated. ``error`` holds a Chinese message when the
    custom dates were unusable (the page then shows the default period and keeps them)."""

    period_key: str
    period: Period
    outlet_id: int | None
    by: str
    figure: str
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def link(self, **changes: Any) -> str:
        """Query string of this view with ``changes`` (None removes a parameter)."""
        params = {"period": self.period_key, "from": self.period.start.isoformat(),
                  "to": self.period.end.isoformat(), "outlet": self.outlet_id, "by": self.by,
                  "figure": self.figure}
        params.update(changes)
        return urlencode({k: v for k, v in params.items() if v is not None and v != ""})


def read_query(request: Request, today: date) -> Query:
    q = request.query_params
    raw = {k: q.get(k, "")[:20] for k in ("period", "from", "to", "outlet", "by", "figure")}
    key = raw["period"] if raw["period"] in PERIODS else "month"
    error = None
    if key == "custom":
        try:
            period = date_range(raw["from"], raw["to"], today)
        except BadPeriod as exc:
            error, key = str(exc), "month"
    if key != "custom":
        end = today
        if raw["to"]:  # day/week/month may end on another day (e.g. a day picked)
            try:
                end = min(parse_day(raw["to"], "结束日期"), today)
            except BadPeriod as exc:
                error = str(exc)
        period = Period(end - timedelta(days=PERIODS[key][1] - 1), end)
    outlet_id = int_param(raw["outlet"]) if raw["outlet"] else None
    if raw["outlet"] and outlet_id is None:
        raise HTTPException(404, "未找到该网点")
    by = raw["by"] if raw["by"] in BY_CHOICES else ""
    keys = {f.key for f in FIGURES}
    figure = raw["figure"] if raw["figure"] in keys else FIGURES[0].key
    return Query(key, period, outlet_id, by, figure, raw, error)


# --- scope -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seen:
    """The actor's view resolved against the database: the scope to compute and the
    outlets to offer in the picker (id → name)."""

    view: FigureView
    scope: Scope
    outlets: dict[int, str]
    outlet_id: int | None


def resolve_scope(session: Session, actor: Staff, outlet_id: int | None) -> Seen:
    """The figure scope of ``actor``, narrowed to ``outlet_id`` when given. An outlet outside
    the actor's view is 404 (HTTPException), exactly like a nonexistent one."""
    try:
        view = figure_view(session, actor, utcnow())
    except RoleLacksAction as exc:
        raise HTTPException(403, exc.message) from None
    stmt = select(Outlet.id, Outlet.name).order_by(col(Outlet.code))
    if view.outlet_ids is not None:
        stmt = stmt.where(col(Outlet.id).in_(view.outlet_ids))
    if view.staff_id is not None and view.outlet_ids is None:
        stmt = stmt.where(col(Outlet.id).in_([]))  # an expert has no outlets to pick
    outlets = {i: str(n) for i, n in session.exec(stmt).all() if i is not None}
    ids = view.outlet_ids
    if outlet_id is not None:
        if outlet_id not in outlets:
            raise HTTPException(404, "未找到该网点")
        ids = frozenset({outlet_id})
    return Seen(view, Scope(outlet_ids=ids, staff_id=view.staff_id), outlets, outlet_id)


def scope_title(seen: Seen) -> str:
    """What the figures are of, for a page title: the view's label (全部网点, the partner,
    the lead's outlet, "<name>（本人）"); narrowed to one outlet, that outlet — for a teller or
    an expert still their own figures there ("<name>（本人）· <outlet>")."""
    if seen.outlet_id is None:
        return seen.view.label
    outlet = seen.outlets.get(seen.outlet_id, "")
    return f"{seen.view.label} · {outlet}" if seen.view.staff_id is not None else outlet


# --- drill-down links ------------------------------------------------------------------------
def rows_link(q: Query, key: str, *, period: Period | None = None, **narrow: Any) -> str:
    """The list of rows behind figure ``key`` in this view (:func:`drilldown_filter` names
    the list; the period and the outlet/matter narrowing are added here)."""
    where = drilldown_filter(key)
    period = period or q.period
    params = {**where["params"], "from": period.start.isoformat(), "to": period.end.isoformat(),
              "outlet": q.outlet_id, **narrow}
    return where["path"] + "?" + urlencode({k: v for k, v in params.items() if v is not None})


# --- the dashboard ---------------------------------------------------------------------------
def _fmt(defn: FigureDef) -> Any:
    return lambda v: display(defn.unit, v)


def _change(defn: FigureDef, now: Any, before: Any) -> dict[str, Any] | None:
    """The change against the previous period: a count as a difference, a ratio in
    percentage points, a time as a difference; None when either side has no value."""
    if now is None or before is None:
        return None
    delta = float(now) - float(before)
    if defn.unit == "ratio":
        text = f"{delta * 100:+.1f} 个百分点"
    elif defn.unit == "count":
        text = f"{int(delta):+d}"
    else:
        text = f"{delta:+.1f}"
    return {"text": text, "dir": "up" if delta > 0 else "down" if delta < 0 else "flat"}


def group_labels(session: Session, by: str, groups: list[Any]) -> dict[Any, str]:
    """Chinese names of :func:`breakdown` groups (outlet, partner, matter or staff ids;
    domains and dates are their own names)."""
    ids = [g for g in groups if isinstance(g, int)]
    if by == "outlet":
        rows = session.exec(select(Outlet.id, Outlet.name).where(col(Outlet.id).in_(ids))).all()
    elif by == "partner":
        rows = session.exec(select(Partner.id, Partner.name).where(col(Partner.id).in_(ids))).all()
    elif by == "staff":
        rows = session.exec(select(Staff.id, Staff.display_name).where(col(Staff.id).in_(ids))).all()
    elif by == "matter":
        rows = session.exec(
            select(Matter.id, MatterVersion.name)
            .join(MatterVersion, (col(MatterVersion.matter_id) == Matter.id)
                  & (col(MatterVersion.version) == Matter.current_version))
            .where(col(Matter.id).in_(ids))).all()
    else:
        rows = []
    names: dict[Any, str] = {i: str(n) for i, n in rows if i is not None}
    return {g: names.get(g, "（未指定）" if g is None else str(g)) for g in groups}


def complete(row: dict[str, Any], quiet: dict[str, Any]) -> dict[str, Any]:
    """A :func:`breakdown` row with the figures of families that had nothing for the group
    (None there) set as the dashboard shows them for that group alone (0 for counts)."""
    return {**row, **{k: v for k, v in quiet.items() if row.get(k) is None}}


def dashboard_context(session: Session, actor: Staff, q: Query, today: date) -> dict[str, Any]:
    seen = resolve_scope(session, actor, q.outlet_id)
    now = headline(session, seen.scope, q.period)
    before = headline(session, seen.scope, previous(q.period))
    defs = {f.key: f for f in FIGURES}
    families: dict[str, list[dict[str, Any]]] = {}
    for f in FIGURES:
        families.setdefault(FAMILY_LABELS.get(f.family, f.family), []).append({
            "def": f, "value": now.get(f.key), "text": display(f.unit, now.get(f.key)),
            "unit": "" if "（" in f.label or now.get(f.key) is None else UNIT_WORDS.get(f.unit, ""),
            "before": display(f.unit, before.get(f.key)), "change": _change(f, now.get(f.key), before.get(f.key)),
            "href": rows_link(q, f.key),
        })
    figure = defs[q.figure]
    ratio = figure.unit == "ratio"
    trend_end = q.period.end
    points = trend(session, seen.scope, figure.key, trend_end, days=TREND_DAYS)
    trend_rows = [(d, v, rows_link(q, figure.key, period=Period(d, d))) for d, v in points]
    by = q.by or ("outlet" if len(seen.outlets) > 1 and q.outlet_id is None else "matter")
    quiet = quiet_figures()
    groups = [complete(r, quiet) for r in breakdown(session, seen.scope, q.period, by)]
    names = group_labels(session, by, [r["group"] for r in groups])
    bars = sorted(groups, key=lambda r: (r.get(figure.key) is None, -(r.get(figure.key) or 0)))
    narrowable = by == "outlet" or figure.list_kind != "tickets"  # tickets have no matter
    bar_rows = [(names[r["group"]], r.get(figure.key),
                 rows_link(q, figure.key, **{by: r["group"]}) if narrowable and r["group"] is not None else None)
                for r in bars]
    grid = heatmap(session, seen.scope, q.period)
    fmt = _fmt(figure)
    return {
        "q": q, "today": today, "periods": PERIODS, "by_choices": BY_CHOICES, "by": by,
        "seen": seen, "scope_label": scope_title(seen),
        "families": families, "figure": figure, "figures": FIGURES, "display": display,
        "previous": previous(q.period),
        "trend_svg": charts.line_chart(points, title=f"{figure.label} · 近 {TREND_DAYS} 天", fmt=fmt, ratio=ratio,
                                       integer=figure.unit == "count"),
        "trend_rows": trend_rows,
        "bar_svg": charts.bar_chart(bar_rows[:BAR_LIMIT], title=f"{figure.label} · {BY_CHOICES[by]}", fmt=fmt, ratio=ratio),
        "bar_rows": bar_rows,
        "heat_svg": charts.heat_map(grid, title="号票时段分布（周 × 小时）"),
        "heat_grid": grid, "weekdays": charts.WEEKDAYS,
        "heat_total": sum(sum(r) for r in grid),
    }


@requires_roles(*ROLES)
async def dashboard(request: Request) -> Response:
    """The dashboard; htmx gets the ``#figures-body`` fragment. Unusable custom dates answer
    422 with the message, the typed dates kept and the default period's figures."""
    actor = actor_of(request)
    today = local_day(utcnow())
    q = read_query(request, today)

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            return dashboard_context(s, actor, q, today)

    ctx = await run_in_threadpool(load)
    name = "figures/_body.html" if is_htmx(request) else "figures/dashboard.html"
    return render(request, name, ctx, status_code=422 if q.error else 200)


routes = [
    Route("/", dashboard, name="dashboard"),
]
