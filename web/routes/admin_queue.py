"""Center administration: 排队叫号默认设置 (``/admin/queue``). The rules, validation and the
audited save live in :mod:`outlet.queue.defaults`; a refused form re-renders with every
value typed kept and each bad field named in Chinese (422)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet.queue import defaults
from outlet.queue.errors import QueueInputError
from web.auth import requires_roles
from web.routes.admin import ADMIN, actor_of, done, in_thread, render
from web.security import is_write

LINE_KEYS = ("prefix", "name", "daily_cap", "warn_minutes")


async def _render(request: Request, values: dict[str, Any] | None = None, *, status: int = 200,
                  **extra: Any) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            row = defaults.load(s)
        return {"row": row, "values": values or defaults.form_values(row)}

    ctx = {**await in_thread(load), "fields": defaults.FIELDS, **extra}
    return render(request, "admin/queue.html", ctx, status_code=status)


def _submitted(form: Any) -> dict[str, Any]:
    """The form as :func:`outlet.queue.defaults.save` takes it (text, unstripped rows kept)."""
    values: dict[str, Any] = {k: str(form.get(k, "") or "") for k in defaults.FIELDS}
    rows = [{k: str(v or "") for k, v in zip(LINE_KEYS, cells, strict=True)}
            for cells in zip(*(form.getlist(f"line_{k}") for k in LINE_KEYS), strict=False)]
    values["lines"] = rows
    return values


@requires_roles(ADMIN)
async def queue_defaults(request: Request) -> Response:
    """GET: the form filled with the defaults in force; POST: validate and save them."""
    if not is_write(request):
        return await _render(request)
    values = _submitted(await request.form())
    try:
        await in_thread(defaults.save, request.app.state.engine, actor_of(request), values)
    except QueueInputError as exc:
        return await _render(request, values, status=exc.status_code, errors=exc.errors, error=exc.message)
    return done(request, "/admin/queue", "排队叫号默认设置已保存，各网点即时生效")


routes: list[Any] = [
    Route("/queue", queue_defaults, methods=["GET", "POST"], name="admin_queue"),
]
