"""Public status page (no login): case number + 6-digit check code → state and dates.
Mounted at ``/status``; the receipt's QR code opens ``/status/<case number>``.

Shows no personal data. Wrong codes are throttled by :mod:`web.throttle` (scope
``status``, per client address and per case number, growing delays); unknown and existing
case numbers answer alike, throttled or not.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from outlet import status
from outlet.errors import CaseError
from partners.numbers import ascii_digits, typed_code
from web import throttle
from web.routes.case_views import render
from web.security import is_write


def _page(request: Request, number: str, **ctx: Any) -> Response:
    status_code = int(ctx.pop("status_code", 200))
    headers = ctx.pop("headers", {})
    response = render(request, "public/status.html",
                      {"number": number, "result": None, "error": None, **ctx}, status_code=status_code)
    response.headers.update(headers)
    return response


async def lookup_form(request: Request) -> Response:
    number = request.query_params.get("number", "").strip()
    if number:
        return RedirectResponse(f"/status/{number}", status_code=303)
    return _page(request, "")


async def status_page(request: Request) -> Response:
    number = request.path_params["number"]
    if not is_write(request):
        return _page(request, number)
    form = await request.form()
    code = typed_code(form.get("check_code"))
    if not ascii_digits(code, 6):
        return _page(request, number, error="请输入回执上的6位查询码", status_code=422)
    try:
        await throttle.check(request, "status", number)
        result = await run_in_threadpool(status.lookup, request.app.state.engine, number, code)
    except throttle.Throttled as exc:
        return _page(request, number, error=exc.message, status_code=429,
                     headers={"Retry-After": str(exc.retry_after)})
    except CaseError as exc:
        await throttle.record_failure(request, "status", number)
        return _page(request, number, error=exc.message, status_code=exc.status_code)
    await throttle.record_success(request, "status", number)
    return _page(request, number, result=result)


routes = [
    Route("/", lookup_form, name="lookup"),
    Route("/{number}", status_page, methods=["GET", "POST"], name="status"),
]
