"""Center side: the review queue of the reviewer's domain and the review page (claim,
approve, refuse with reason, request correction). Mounted at ``/review``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet import review
from outlet.cases import review_queue
from web.auth import requires_roles
from web.routes import case_views as views
from web.routes.case_views import actor_of, render

SIDE = "review"


@requires_roles("reviewer")
async def queue(request: Request) -> Response:
    actor = actor_of(request)
    page = views.page_param(request)

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            return {"rows": review_queue(s, actor, page=page), "page": page}

    return render(request, "review/queue.html", await run_in_threadpool(load))


@requires_roles("reviewer")
async def case_page(request: Request) -> Response:
    return await views.case_response(request, SIDE)


def _correction_items(form: FormData) -> list[tuple[str, str]]:
    return [(k[len("reason_"):], str(v)) for k, v in form.multi_items()
            if k.startswith("reason_") and isinstance(v, str) and v.strip()]


ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "claim": (lambda e, a, n, f: review.claim(e, a, n), "已认领，请审核"),
    "approve": (lambda e, a, n, f: review.approve(e, a, n, comment=str(f.get("comment", "") or "")),
                "已审核通过（准予）"),
    "reject": (lambda e, a, n, f: review.reject(e, a, n, reason=str(f.get("reason", "") or "")),
               "已作出不予许可决定"),
    "correction": (lambda e, a, n, f: review.request_correction(
        e, a, n, items=_correction_items(f), reason=str(f.get("reason", "") or "")),
        "已退回网点补正"),
}


@requires_roles("reviewer")
async def notice(request: Request) -> Response:
    return await views.notice_response(request, SIDE)


@requires_roles("reviewer")
async def file(request: Request) -> Response:
    return await views.file_response(request, SIDE)


@requires_roles("reviewer")
async def reveal(request: Request) -> Response:
    return await views.reveal_response(request, SIDE)


action = views.action_endpoint(SIDE, ("reviewer",), ACTIONS)


routes = [
    Route("/", queue, name="queue"),
    Route("/{number}", case_page, name="case"),
    Route("/{number}/actions/{action}", action, methods=["POST"], name="action"),
    Route("/{number}/notices/{notice}", notice, name="notice"),
    Route("/{number}/files/{file_id:id}", file, name="file"),
    Route("/{number}/reveal", reveal, methods=["POST"], name="reveal"),
]
