"""Public status page (no login): case number + 6-digit check code → state and dates.
Mounted at ``/status``; the receipt's QR code opens ``/status/<case number>``.

Shows no personal data. Wrong codes are limited per case in the database
(``outlet.status``) and per client address here (in memory, per worker).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from outlet import status
from outlet.errors import CaseError
from web.routes.case_views import render

WINDOW_SECONDS = 600
MAX_WRONG_PER_CLIENT = 20


@dataclass
class ClientLimiter:
    """Wrong check codes per client address in a sliding window."""

    window: float = WINDOW_SECONDS
    limit: int = MAX_WRONG_PER_CLIENT
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self.hits.get(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, key: str) -> bool:
        return len(self._prune(key, time.monotonic())) >= self.limit

    def wrong(self, key: str) -> None:
        now = time.monotonic()
        if key not in self.hits and len(self.hits) >= 10_000:  # bound memory
            self.hits.pop(next(iter(self.hits)))
        q = self.hits.setdefault(key, deque())
        self._prune(key, now)
        q.append(now)


def _limiter(request: Request) -> ClientLimiter:
    limiter = getattr(request.app.state, "status_limiter", None)
    if limiter is None:
        limiter = ClientLimiter()
        request.app.state.status_limiter = limiter
    return limiter


def _page(request: Request, number: str, **ctx: Any) -> Response:
    status_code = int(ctx.pop("status_code", 200))
    return render(request, "public/status.html",
                  {"number": number, "result": None, "error": None, **ctx}, status_code=status_code)


async def lookup_form(request: Request) -> Response:
    number = request.query_params.get("number", "").strip()
    if number:
        return RedirectResponse(f"/status/{number}", status_code=303)
    return _page(request, "")


async def status_page(request: Request) -> Response:
    number = request.path_params["number"]
    if request.method == "GET":
        return _page(request, number)
    form = await request.form()
    code = str(form.get("check_code", "") or "").strip()
    client = request.client.host if request.client else "unknown"
    limiter = _limiter(request)
    if limiter.blocked(client):
        return _page(request, number, error="查询过于频繁，请稍后再试", status_code=429)
    if not (len(code) == 6 and code.isdigit()):
        return _page(request, number, error="请输入回执上的6位查询码", status_code=422)
    try:
        result = await run_in_threadpool(status.lookup, request.app.state.engine, number, code)
    except CaseError as exc:
        limiter.wrong(client)
        return _page(request, number, error=exc.message, status_code=exc.status_code)
    return _page(request, number, result=result)


routes = [
    Route("/", lookup_form, name="lookup"),
    Route("/{number}", status_page, methods=["GET", "POST"], name="status"),
]
