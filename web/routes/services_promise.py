"""告知承诺制 panel of a case: the teller takes the applicant's signed promise (and prints the
告知承诺书 as a case notice); the center reviewer records the 核查 and, when 不属实, revokes
the decision. Mounted under ``/services/promise``; the case pages load the panel with htmx
(like the video-help slot), so the case templates only hold a placeholder.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from outlet import promise, states
from outlet.cases import load_case
from outlet.errors import CaseError, CaseNotFound
from outlet.models import Notice
from partners.errors import ActionRefused
from partners.models import Staff
from web.auth import requires_roles
from web.routes.case_views import actor_of, fail, is_htmx, render

OUTLET = ("teller", "block_agent", "outlet_lead")
SIDES = {"cases": OUTLET, "review": ("reviewer",)}


def _side(actor: Staff) -> str:
    return "review" if "reviewer" in actor.role_set and actor.outlet_id is None else "cases"


def panel_context(request: Request, number: str) -> dict[str, Any]:
    actor = actor_of(request)
    with Session(request.app.state.engine) as s:
        ref = load_case(s, actor, number)
        assert ref.case.id is not None
        p = promise.promise_of(s, ref.case.id)
        notice = s.exec(select(Notice).where(Notice.case_id == ref.case.id, Notice.kind == "promise")).first()
        checker = s.get(Staff, p.checked_by) if p and p.checked_by else None
        side = _side(actor)
        return {
            "case": ref.case, "version": ref.version, "promise": p, "notice": notice, "side": side,
            "checker": checker, "promisable": promise.promisable(ref.version),
            "can_sign": side == "cases" and p is None and ref.case.state in states.MATERIAL_STATES,
            "can_check": side == "review" and p is not None and p.check_result is None
            and ref.case.state in promise.CHECK_STATES,
            "can_revoke": side == "review" and p is not None and p.check_result == "不属实"
            and p.revoked_at is None and ref.case.state in ("approved", "delivered"),
            "results": promise.CHECK_RESULTS, "consequence": promise.CONSEQUENCE,
            "errors": {}, "values": {}, "error": None,
        }


async def _panel(request: Request, status_code: int = 200, **extra: Any) -> Response:
    number = request.path_params["number"]
    try:
        ctx = await run_in_threadpool(panel_context, request, number)
    except CaseNotFound as exc:
        return fail(request, 404, exc.message)
    ctx.update(extra)
    name = "services/_promise.html" if is_htmx(request) else "services/promise.html"
    return render(request, name, ctx, status_code=status_code)


@requires_roles(*OUTLET, "reviewer")
async def panel(request: Request) -> Response:
    """The 告知承诺 panel (fragment for htmx, a page otherwise)."""
    return await _panel(request)


async def _run(request: Request, call: Any, anchor: str) -> Response:
    number = request.path_params["number"]
    form = await request.form()
    try:
        await run_in_threadpool(call, request.app.state.engine, actor_of(request), number, form)
    except CaseNotFound as exc:
        return fail(request, 404, exc.message)
    except (ActionRefused, CaseError) as exc:
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        return await _panel(request, status_code=exc.status_code, error=exc.message,
                            errors={anchor: exc.message, **getattr(exc, "errors", {})},
                            values={"anchor": anchor, **values})
    return RedirectResponse(f"/{_side(actor_of(request))}/{number}", status_code=303)


@requires_roles(*OUTLET)
async def sign(request: Request) -> Response:
    return await _run(request, lambda e, a, n, f: promise.sign_promise(
        e, a, n, [str(k) for k in f.getlist("keys")]), "sign")


@requires_roles("reviewer")
async def check(request: Request) -> Response:
    return await _run(request, lambda e, a, n, f: promise.check_promise(
        e, a, n, result=str(f.get("result", "")), note=str(f.get("note", "") or "")), "check")


@requires_roles("reviewer")
async def revoke(request: Request) -> Response:
    return await _run(request, lambda e, a, n, f: promise.revoke(
        e, a, n, reason=str(f.get("reason", "") or "")), "revoke")


routes = [
    Route("/promise/{number}", panel, name="promise"),
    Route("/promise/{number}/sign", sign, methods=["POST"], name="promise_sign"),
    Route("/promise/{number}/check", check, methods=["POST"], name="promise_check"),
    Route("/promise/{number}/revoke", revoke, methods=["POST"], name="promise_revoke"),
]
