"""The public booking page (预约办, mobile first, no login): outlet → line → day → slot, name
and phone (masked on every page after entry), the booking code; cancel with code + the
phone's last 4 digits. Mounted under ``/queue/book``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from outlet.clock import local_day
from outlet.queue import bookings, counters, defaults
from outlet.queue.errors import QueueError, QueueInputError
from outlet.queue.models import QueueLine
from outlet.workdays import WorkCalendar
from partners.models import Outlet, utcnow
from web import throttle
from web.db import reader
from web.params import int_param
from web.routes import queue_floor
from web.routes.case_views import render
from web.security import is_write


async def outlets(request: Request) -> Response:
    """Step 1: outlets that take bookings."""
    def load() -> list[Outlet]:
        with Session(reader(request.app.state)) as s:
            ids = set(s.exec(select(QueueLine.outlet_id).where(col(QueueLine.bookable), col(QueueLine.active))).all())
            return [o for o in s.exec(select(Outlet).where(col(Outlet.active)).order_by(col(Outlet.id))).all()
                    if o.id in ids]
    return render(request, "queue/book_outlets.html", {"outlets": await run_in_threadpool(load)})


def _form_context(engine: Any, outlet_id: int, line_id: int | None, day_raw: str, **extra: Any) -> dict[str, Any]:
    with Session(engine) as s:
        outlet = s.get(Outlet, outlet_id)
        if outlet is None:
            raise QueueError("未找到该网点", code="not_found")
        lines = [ln for ln in counters.lines_of(s, outlet_id, active_only=True) if ln.bookable]
        line = next((ln for ln in lines if ln.id == line_id), lines[0] if lines else None)
        days = bookings.bookable_days(WorkCalendar.load(s), local_day(utcnow()), defaults.for_page(s).book_ahead_days)
        try:
            day = date.fromisoformat(day_raw) if day_raw else days[0]
        except ValueError:
            day = days[0]
        if day not in days:
            day = days[0]
        slots = bookings.slots(s, outlet, line, day) if line else []
    ctx: dict[str, Any] = {"outlet": outlet, "lines": lines, "line": line, "days": days, "day": day,
                           "slots": slots, "values": {}, "errors": {}, "error": None}
    ctx.update(extra)
    return ctx


async def book(request: Request) -> Response:
    """Step 2: line, day and slot, name and phone (GET); book (POST)."""
    outlet_id = int(request.path_params["outlet_id"])
    engine = request.app.state.engine
    if not is_write(request):
        q = request.query_params
        try:
            ctx = await run_in_threadpool(_form_context, reader(request.app.state), outlet_id, int_param(q.get("line")),
                                          q.get("day", "")[:10])
        except QueueError as exc:
            return render(request, "error.html", {"status": 404, "message": exc.message}, status_code=404)
        return render(request, "queue/book.html", ctx)
    form = await request.form()
    values = {k: str(form.get(k, "") or "")[:40] for k in ("name", "phone", "slot", "line_id", "day")}
    line_id = int_param(values["line_id"])
    try:
        start = datetime.fromisoformat(values["slot"]) if values["slot"] else None
    except ValueError:
        start = None
    try:
        if start is None or line_id is None:
            raise QueueInputError(errors={"slot": "请选择预约时段"})
        b = await run_in_threadpool(lambda: bookings.create(
            engine, outlet_id=outlet_id, line_id=line_id, slot_start=start, name=values["name"],
            phone=values["phone"], pseudonym_key=request.app.state.pseudonym_key))
    except QueueError as exc:
        ctx = await run_in_threadpool(_form_context, reader(request.app.state), outlet_id, line_id, values["day"], values=values,
                                      errors=getattr(exc, "errors", {}), error=exc.message)
        return render(request, "queue/book.html", ctx, status_code=exc.status_code)

    def done() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            return {"b": b, "outlet": s.get(Outlet, b.outlet_id), "line": s.get(QueueLine, b.line_id),
                    "masked_name": bookings.mask_name(b.name), "masked_phone": bookings.mask_phone(b.phone)}
    return render(request, "queue/book_done.html", await run_in_threadpool(done), status_code=201)


async def cancel(request: Request) -> Response:
    """Cancel with the booking code and the phone's last 4 digits (≥ 2 h before the slot)."""
    if not is_write(request):
        return render(request, "queue/book_cancel.html", {"values": {}, "error": None, "done": None})
    form = await request.form()
    values = {k: str(form.get(k, "") or "")[:12] for k in ("code", "last4")}
    try:
        b = await queue_floor.guarded(request, "booking", values["code"].strip().upper(), lambda: bookings.cancel(
            request.app.state.engine, values["code"], values["last4"], pseudonym_key=request.app.state.pseudonym_key))
    except throttle.Throttled as exc:
        return render(request, "queue/book_cancel.html", {"values": values, "error": exc.message, "done": None},
                      status_code=429)
    except QueueError as exc:
        return render(request, "queue/book_cancel.html", {"values": values, "error": exc.message, "done": None},
                      status_code=exc.status_code)
    return render(request, "queue/book_cancel.html", {"values": {}, "error": None, "done": b})


routes: list[BaseRoute] = [
    Route("/book", outlets, name="book_outlets"),
    Route("/book/cancel", cancel, methods=["GET", "POST"], name="book_cancel"),
    Route("/book/{outlet_id:id}", book, methods=["GET", "POST"], name="book"),
]
