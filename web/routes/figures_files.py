"""Figures as files: the dashboard's scope and period as .xlsx and CSV, the printable
monthly report (A4, one page per outlet) and the center admin's
``/reports/summary.csv?from=&to=``. Scope and periods are those of :mod:`web.routes.figures`;
the writers are :mod:`web.figure_exports`. All database work runs in a worker thread."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, timedelta
from typing import Any

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
    headline,
    heatmap,
    quiet_figures,
)
from partners.models import Outlet, Partner, Staff, utcnow
from web import charts
from web.auth import requires_roles
from web.db import reader
from web.figure_exports import Column, Sheet, csv_bytes, display, header, xlsx_bytes
from web.params import int_param
from web.routes.case_views import actor_of, render
from web.routes.figures import (
    FAMILY_LABELS,
    ROLES,
    BadPeriod,
    Query,
    Seen,
    check_earliest,
    complete,
    date_range,
    group_labels,
    previous,
    read_query,
    resolve_scope,
    scope_title,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- exports ----------------------------------------------------------------------------------
def headline_columns() -> list[Column]:
    return [Column(header(f.label, f.unit), f.unit) for f in FIGURES]


def outlet_rows(session: Session, scope: Scope, period: Period) -> list[list[Any]]:
    """One row per outlet of ``scope`` (every outlet for the whole center): code, name,
    partner, then the headline figures (:data:`FIGURES` order) of that outlet alone — the
    numbers the dashboard shows with ``?outlet=`` that outlet."""
    stmt = (select(Outlet, Partner).join(Partner, col(Partner.id) == Outlet.partner_id)
            .order_by(col(Outlet.code)))
    if scope.outlet_ids is not None:
        stmt = stmt.where(col(Outlet.id).in_(scope.outlet_ids))
    quiet = quiet_figures()
    by_outlet = {r["group"]: complete(r, quiet) for r in breakdown(session, scope, period, "outlet")}
    rows = []
    for outlet, partner in session.exec(stmt).all():
        figures = by_outlet.get(outlet.id, quiet)
        rows.append([outlet.code, outlet.name, partner.name, *[figures.get(f.key) for f in FIGURES]])
    return rows


SUMMARY_COLUMNS = [Column("网点编码"), Column("网点名称"), Column("合作机构")]


def _filename(stem: str, period: Period, ext: str) -> str:
    return f"{stem}-{period.start.isoformat()}-{period.end.isoformat()}.{ext}"


def _download(data: bytes, media_type: str, filename: str) -> Response:
    ascii_name = filename.encode("ascii", "replace").decode()
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{ascii_name}"',
        "Cache-Control": "no-store",
    })


def workbook_sheets(session: Session, seen: Seen, q: Query) -> list[Sheet]:
    """The dashboard as sheets: 指标汇总 (this period, previous, change), 按网点, 按事项,
    按日 (every figure, one row for every day of the period, quiet days included) and 号票时段."""
    now = headline(session, seen.scope, q.period)
    before = headline(session, seen.scope, previous(q.period))
    summary = Sheet("指标汇总", [Column("类别"), Column("指标"), Column("单位"), Column("本期", "number"),
                                 Column("上期", "number")],
                    [[FAMILY_LABELS.get(f.family, f.family), f.label, UNIT_NAMES.get(f.unit, f.unit), _pct(f, now.get(f.key)),
                      _pct(f, before.get(f.key))] for f in FIGURES])
    sheets = [summary]
    quiet = quiet_figures()
    sheets.append(Sheet("按网点", SUMMARY_COLUMNS + headline_columns(), outlet_rows(session, seen.scope, q.period)))
    for by, name, label in (("matter", "按事项", "事项"), ("day", "按日", "日期")):
        rows = [complete(r, quiet) for r in breakdown(session, seen.scope, q.period, by)]
        if by == "day":  # every day of the period, a quiet one too (its counts 0, ratios empty)
            have = {r["group"]: r for r in rows}
            days = [q.period.start + timedelta(days=i) for i in range(q.period.days)]
            rows = [have.get(d) or {"group": d, **quiet} for d in days]
        names = group_labels(session, by, [r["group"] for r in rows])
        sheets.append(Sheet(name, [Column(label), *headline_columns()],
                            [[names[r["group"]], *[r.get(f.key) for f in FIGURES]] for r in rows]))
    grid = heatmap(session, seen.scope, q.period)
    sheets.append(Sheet("号票时段", [Column("星期"), *[Column(f"{h}时", "count") for h in range(24)]],
                        [[charts.WEEKDAYS[d], *grid[d]] for d in range(7)]))
    return sheets


UNIT_NAMES = {"count": "件/次", "ratio": "%", "days": "工作日", "seconds": "秒", "minutes": "分钟", "per_case": "次/件"}


def _pct(defn: FigureDef, value: Any) -> Any:
    """Summary sheet values are plain numbers: a ratio in percent (one decimal)."""
    if value is None:
        return None
    return round(float(value) * 100, 1) if defn.unit == "ratio" else value


def _export_query(request: Request) -> tuple[Staff, Query]:
    """The signed-in user and the dashboard's query of an export request.
    Raises HTTPException(422) with the query's Chinese reason (a bad date or range)."""
    q = read_query(request, local_day(utcnow()))
    if q.error:
        raise HTTPException(422, q.error)
    return actor_of(request), q


@requires_roles(*ROLES)
async def export_xlsx(request: Request) -> Response:
    """The dashboard's period and scope as an .xlsx workbook (Chinese headers)."""
    actor, q = _export_query(request)

    def build() -> bytes:
        with Session(reader(request.app.state)) as s:
            return xlsx_bytes(workbook_sheets(s, resolve_scope(s, actor, q.outlet_id), q))

    return _download(await run_in_threadpool(build), XLSX, _filename("figures", q.period, "xlsx"))


@requires_roles(*ROLES)
async def export_csv(request: Request) -> Response:
    """One row per outlet of the view (UTF-8 with BOM), the headline figures as columns."""
    actor, q = _export_query(request)

    def build() -> bytes:
        with Session(reader(request.app.state)) as s:
            seen = resolve_scope(s, actor, q.outlet_id)
            return csv_bytes(Sheet("按网点", SUMMARY_COLUMNS + headline_columns(),
                                   outlet_rows(s, seen.scope, q.period)))

    return _download(await run_in_threadpool(build), "text/csv; charset=utf-8",
                     _filename("figures", q.period, "csv"))


@requires_roles("admin")
async def summary_csv(request: Request) -> Response:
    """``GET /reports/summary.csv?from=YYYY-MM-DD&to=YYYY-MM-DD``: every outlet, one row
    each, the headline figures as columns. Missing or bad dates: 400 with the reason."""
    today = local_day(utcnow())
    try:
        period = date_range(request.query_params.get("from"), request.query_params.get("to"), today)
    except BadPeriod as exc:
        raise HTTPException(400, str(exc)) from None

    def build() -> bytes:
        with Session(reader(request.app.state)) as s:
            return csv_bytes(Sheet("汇总", SUMMARY_COLUMNS + headline_columns(),
                                   outlet_rows(s, Scope(), period)))

    return _download(await run_in_threadpool(build), "text/csv; charset=utf-8",
                     _filename("summary", period, "csv"))


# --- printable monthly report ---------------------------------------------------------------
def parse_month(value: str | None, today: date) -> Period:
    """``YYYY-MM`` → that calendar month (up to today for the current month); default: the
    previous full month. Raises :class:`BadPeriod`."""
    text = (value or "").strip()
    if not text:
        first = today.replace(day=1) - timedelta(days=1)
        return Period(first.replace(day=1), first)
    try:
        if len(text) != 7:
            raise ValueError(text)
        year, month = int(text[:4]), int(text[5:])
        start = date(year, month, 1)
    except ValueError:
        raise BadPeriod(f"月份「{text[:20]}」无效（格式 YYYY-MM）") from None
    if start > today:
        raise BadPeriod("不能统计未来的月份")
    check_earliest(start)
    end = min(date(year, month, monthrange(year, month)[1]), today)
    return Period(start, end)


@requires_roles(*ROLES)
async def monthly_report(request: Request) -> Response:
    """Printable monthly report (A4): the scope's summary on the first page, then one page
    per outlet with its headline figures. ``?month=YYYY-MM`` (default: last month)."""
    actor = actor_of(request)
    today = local_day(utcnow())
    month_text = request.query_params.get("month", "")[:20]
    try:
        period = parse_month(month_text, today)
    except BadPeriod as exc:
        raise HTTPException(422, str(exc)) from None
    outlet_id = int_param(request.query_params.get("outlet", "")) if request.query_params.get("outlet") else None
    if request.query_params.get("outlet") and outlet_id is None:
        raise HTTPException(404, "未找到该网点")

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            seen = resolve_scope(s, actor, outlet_id)
            total = headline(s, seen.scope, period)
            pages = []
            if seen.view.staff_id is None:
                for row in outlet_rows(s, seen.scope, period):
                    pages.append({"code": row[0], "name": row[1], "partner": row[2],
                                  "values": dict(zip([f.key for f in FIGURES], row[3:], strict=True))})
            return {"period": period, "seen": seen, "total": total, "pages": pages, "figures": FIGURES,
                    "family_labels": FAMILY_LABELS,
                    "display": display, "month": period.start.strftime("%Y-%m"), "generated": utcnow(),
                    "scope_label": scope_title(seen)}

    return render(request, "figures/report.html", await run_in_threadpool(load))


routes = [
    Route("/export.xlsx", export_xlsx, name="export_xlsx"),
    Route("/export.csv", export_csv, name="export_csv"),
    Route("/report", monthly_report, name="report"),
]
report_routes = [Route("/summary.csv", summary_csv, name="summary_csv")]
