"""Center administration, part three: the working-day calendar (工作日历).

When the State Council publishes next year's holiday schedule, the admin enters it here
(one day at a time or pasted in bulk) and deadlines crossing that year stop being
estimated. The rules (parsing, upserting) live in :mod:`outlet.workdays`; every change runs
through ``delegated_action(engine, admin, "admin.calendar.edit")``.

One URL serves page or fragment: htmx requests targeting ``#calendar-body`` get only that
fragment (forms post with htmx and swap it, the year links too); without JS the forms post
and redirect back (post/redirect/get). A failed form re-renders with the input kept (422).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet import workdays
from outlet.errors import CaseError
from outlet.workdays import KIND_LABELS, KIND_TITLES, ScheduleEntry, WorkCalendar
from partners.authorize import local_day
from partners.delegation import delegated_action
from partners.models import utcnow
from web.auth import requires_roles
from web.params import int_param
from web.routes.admin import ADMIN, actor_of, done, form_values, in_thread, render

ACTION = "admin.calendar.edit"
WEEKDAYS = "一二三四五六日"
FRAGMENT = "calendar-body"


def _default_year() -> int:
    """The current year while its schedule is unknown, else next year (what gets published)."""
    this_year = local_day(utcnow()).year
    return this_year if not workdays.bundled_covers(this_year) else this_year + 1


def _year(raw: Any) -> int:
    year = int_param(raw, low=workdays.MIN_YEAR, high=workdays.MAX_YEAR)
    return year if year is not None else _default_year()


def _wants_fragment(request: Request) -> bool:
    return (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == FRAGMENT
    )


def _load(request: Request, year: int) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        rows = workdays.year_overrides(s, year)
        calendar = WorkCalendar.load(s)
    return {
        "year": year,
        "rows": rows,
        "bundled": workdays.bundled_covers(year),
        "published": calendar.year_published(year),
        "holidays": sum(1 for r in rows if not r.is_workday),
        "workdays": sum(1 for r in rows if r.is_workday),
    }


async def _page(
    request: Request, year: int, *, status: int = 200, message: str = "", **extra: Any
) -> Response:
    ctx: dict[str, Any] = {
        **await in_thread(_load, request, year),
        "kind_labels": KIND_LABELS,
        "kind_titles": KIND_TITLES,
        "weekdays": WEEKDAYS,
        "estimated_note": workdays.ESTIMATED_NOTE,
        "message": message,
        **extra,
    }
    fragment = request.headers.get("HX-Request") == "true" and request.method == "POST"
    name = "admin/calendar_body.html" if fragment or _wants_fragment(request) else None
    return render(request, name or "admin/calendar.html", ctx, status_code=status)


async def _finish(request: Request, year: int, message: str) -> Response:
    """Success: htmx gets the refreshed fragment with the message, browsers a redirect."""
    if request.headers.get("HX-Request") == "true":
        return await _page(request, year, message=message)
    return done(request, f"/admin/calendar?year={year}", message)


@requires_roles(ADMIN)
async def calendar_page(request: Request) -> Response:
    return await _page(request, _year(request.query_params.get("year")))


@requires_roles(ADMIN)
async def calendar_add(request: Request) -> Response:
    """One override: a day off or a make-up working day (replaces that day's entry)."""
    values = form_values(await request.form())
    year = _year(values.get("year"))
    actor = actor_of(request)

    def save() -> ScheduleEntry:
        entry = workdays.check_entry(
            str(values.get("day", "")), str(values.get("kind", "")), str(values.get("name", ""))
        )
        with delegated_action(request.app.state.engine, actor, ACTION) as act:
            before = workdays.set_override(act.session, entry)
            act.state = (
                workdays.audit_state(entry.day, before.is_workday if before else None),
                workdays.audit_state(entry.day, entry.is_workday),
            )
        return entry

    try:
        entry = await in_thread(save)
    except CaseError as exc:
        return await _page(
            request,
            year,
            status=exc.status_code,
            values=values,
            errors=exc.errors,
            error=exc.message,
        )
    kind = KIND_TITLES[entry.is_workday]
    return await _finish(request, entry.day.year, f"已保存：{entry.day.isoformat()} 为{kind}")


@requires_roles(ADMIN)
async def calendar_bulk(request: Request) -> Response:
    """Pasted schedule: every line checked first, then all applied in one audited change."""
    form = await request.form()
    values = form_values(form)
    values["schedule"] = str(form.get("schedule", ""))  # unstripped: line numbers stay right
    year = _year(values.get("year"))
    actor = actor_of(request)

    def save() -> tuple[int, set[int]]:
        entries = workdays.parse_schedule(values["schedule"])
        with delegated_action(request.app.state.engine, actor, ACTION) as act:
            n = workdays.apply_schedule(act.session, entries)
            act.state = (None, workdays.schedule_summary(entries))
        return n, {e.day.year for e in entries}

    try:
        n, years = await in_thread(save)
    except CaseError as exc:
        return await _page(
            request,
            year,
            status=exc.status_code,
            values=values,
            errors=exc.errors,
            error="批量录入未保存：请修改标出的行后重新提交",
        )
    shown = year if year in years else min(years)
    return await _finish(request, shown, f"已批量保存 {n} 条日历调整")


@requires_roles(ADMIN)
async def calendar_delete(request: Request) -> Response:
    values = form_values(await request.form())
    day = workdays.parse_day(str(values.get("day", "")))
    if day is None:
        raise HTTPException(404, "未找到该日期的日历调整")
    actor = actor_of(request)

    def save() -> ScheduleEntry | None:
        with delegated_action(request.app.state.engine, actor, ACTION) as act:
            removed = workdays.remove_override(act.session, day)
            if removed is None:
                raise HTTPException(404, "未找到该日期的日历调整")
            act.state = (workdays.audit_state(day, removed.is_workday), None)
        return removed

    await in_thread(save)
    return await _finish(request, day.year, f"已删除 {day.isoformat()} 的日历调整")


routes: list[Any] = [
    Route("/calendar", calendar_page, name="admin_calendar"),
    Route("/calendar/add", calendar_add, methods=["POST"], name="admin_calendar_add"),
    Route("/calendar/bulk", calendar_bulk, methods=["POST"], name="admin_calendar_bulk"),
    Route("/calendar/delete", calendar_delete, methods=["POST"], name="admin_calendar_delete"),
]
