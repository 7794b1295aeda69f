"""Teller side of the case (办件): home, new case, the case page with its materials and
actions, printable notices, files. Mounted at ``/cases``; route names ``cases:<name>``.

One URL serves the page or, for htmx, the fragment (``#case-body``, ``#matter-results``).
Every change goes through ``outlet`` service functions (authorize + change + audit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from outlet import decisions, intake
from outlet.cases import home_lists, recent_cases, search_cases
from outlet.clock import local_day
from outlet.errors import CaseError, InvalidInput, UploadRejected
from outlet.files import read_chunks
from outlet.intake import NewCase
from outlet.overview import outlet_overview
from outlet.states import STATE_LABELS
from partners.availability import refused_matters
from partners.catalog import delegated_matters
from partners.errors import ActionRefused
from partners.models import Outlet, utcnow
from web.auth import requires_roles
from web.db import reader
from web.params import MAX_INDEX, int_param
from web.routes import case_views as views
from web.routes.case_views import actor_of, render

OUTLET = ("teller", "block_agent", "outlet_lead")
SIDE = "cases"


@requires_roles(*OUTLET)
async def home(request: Request) -> Response:
    """Teller home: today's cases, overdue (red) and due-soon (yellow), new case search,
    case search."""
    return await _home(request)


async def _home(request: Request, extra: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    actor = actor_of(request)
    today = local_day(utcnow())
    page = views.page_param(request)

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
            return {"today": today, "outlet": outlet, "page": page,
                    **home_lists(s, actor, today, page=page, per_page=20)}

    return render(request, "cases/home.html", {**await run_in_threadpool(load), **(extra or {})},
                  status_code=status_code)


@requires_roles(*OUTLET)
async def search(request: Request) -> Response:
    """POST ``q`` (and ``page``): this outlet's cases by case number, applicant name, ID
    number or phone. POST keeps ID and phone numbers out of URLs, histories and access logs.
    htmx gets the ``#case-search`` fragment, a plain form the home page with the results."""
    form = await request.form()
    query = str(form.get("q", "") or "")[:60]
    raw_page = str(form.get("page", "") or "")
    page = int_param(raw_page, low=1, high=9999) or 1
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            try:
                result = search_cases(s, actor, query, page=page)
            except InvalidInput as exc:
                return {"search": None, "search_q": query, "search_error": exc.message}
            return {"search": result, "search_q": query, "search_error": None}

    ctx = await run_in_threadpool(load)
    status = 422 if ctx["search_error"] else 200
    if views.is_htmx(request):
        return render(request, "cases/_case_search.html", ctx, status_code=status)
    return await _home(request, extra=ctx, status_code=status)


@requires_roles("outlet_lead")
async def overview(request: Request) -> Response:
    """The outlet lead's overview: staff on duty, cases by state (all of them, paginated),
    overdue and due-soon counts."""
    actor = actor_of(request)
    today = local_day(utcnow())
    page = views.page_param(request)
    state = request.query_params.get("state") or None
    state = state if state in STATE_LABELS else None
    per_page = 20

    def load() -> dict[str, Any]:
        with Session(reader(request.app.state)) as s:
            ov = outlet_overview(s, actor, today)
            total = ov.by_state.get(state, 0) if state else ov.total
            return {"overview": ov, "state": state, "page": page,
                    "pages": max(1, -(-total // per_page)),
                    "rows": recent_cases(s, actor, state=state, page=page, per_page=per_page)}

    return render(request, "cases/outlet.html", await run_in_threadpool(load))


def _found(request: Request, query: str) -> dict[str, Any]:
    """The matters this outlet may take in now and, with their reason, those it may not."""
    actor = actor_of(request)
    now = utcnow()
    with Session(reader(request.app.state)) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        if outlet is None:
            return {"matters": [], "refused": [], "q": query}
        matters = delegated_matters(s, outlet, now, query)
        refused = refused_matters(s, outlet, now, query, exclude=[d.matter.id for d in matters if d.matter.id])
        return {"matters": matters, "refused": refused, "q": query, "name_limits": intake.NAME_LIMITS}


@requires_roles(*OUTLET)
async def new(request: Request) -> Response:
    """Search this outlet's matters (those it may not take in shown with the reason); with
    ``matter_id`` show the intake form."""
    query = request.query_params.get("q", "").strip()[:60]
    found = await run_in_threadpool(_found, request, query)
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "matter-results":
        return render(request, "cases/_matter_results.html", found)
    chosen = _chosen(found["matters"], request.query_params.get("matter_id"))
    return render(request, "cases/new.html", {
        **found, "chosen": chosen, "values": {}, "errors": {}, "error": None,
    })


@requires_roles(*OUTLET)
async def attempt(request: Request) -> Response:
    """POST: the teller chose a matter in the search. Allowed → the intake form; refused →
    the search with the reason, the refused attempt being in the audit log."""
    form = await request.form()
    raw = str(form.get("matter_id", "") or "").strip()
    matter_id = int_param(raw)
    try:
        await run_in_threadpool(intake.check_matter, request.app.state.engine, actor_of(request), matter_id)
    except (ActionRefused, CaseError) as exc:
        found = await run_in_threadpool(_found, request, "")
        audited = "（本次办理尝试已记入审计日志）" if isinstance(exc, ActionRefused) else ""
        return render(request, "cases/new.html", {
            **found, "chosen": None, "values": {}, "errors": {}, "error": exc.message + audited,
        }, status_code=404 if raw and matter_id is None else exc.status_code)
    return views.see_other(request, f"/cases/new?matter_id={matter_id}")


def _chosen(matters: list[Any], matter_id: str | None) -> Any:
    for m in matters:
        if str(m.matter.id) == str(matter_id):
            return m
    return None


NEW_FIELDS = ("applicant_kind", "applicant_name", "id_number", "phone", "legal_representative",
              "service_mode", "agent_name", "agent_id_number", "agent_phone")


@requires_roles(*OUTLET)
async def create(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "") or "") for k in (*NEW_FIELDS, "matter_id")}
    values["service_mode"] = values["service_mode"] or "收件受理"
    raw_id = values["matter_id"]
    data = NewCase(matter_id=int_param(raw_id),
                   **{k: values[k] for k in NEW_FIELDS})
    actor = actor_of(request)
    key = request.app.state.pseudonym_key
    try:
        case = await run_in_threadpool(intake.create_case, request.app.state.engine, actor, data,
                                       pseudonym_key=key)
    except (ActionRefused, CaseError) as exc:
        found = await run_in_threadpool(_found, request, "")
        return render(request, "cases/new.html", {
            **found, "chosen": _chosen(found["matters"], raw_id), "values": values,
            "errors": getattr(exc, "errors", {}) or {}, "error": exc.message,
        }, status_code=exc.status_code)
    return views.see_other(request, f"/cases/{case.number}")


@requires_roles(*OUTLET)
async def case_page(request: Request) -> Response:
    return await views.case_response(request, SIDE)


def _reason(form: FormData, name: str = "reason") -> str:
    return str(form.get(name, "") or "")


def _deadline(form: FormData) -> date | None:
    raw = str(form.get("deadline", "") or "")
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


# slug → (service call, success message)
ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "accept": (lambda e, a, n, f: decisions.accept(e, a, n), "已受理，请打印受理回执"),
    "rongque": (lambda e, a, n, f: decisions.accept_rongque(
        e, a, n, deadline=_deadline(f), commitment_signed=f.get("commitment_signed") == "1",
        commitment_text=_reason(f, "commitment_text")), "已容缺受理，请打印受理回执和容缺受理告知书"),
    "refuse": (lambda e, a, n, f: decisions.refuse(e, a, n, reason=_reason(f)),
               "已不予受理，请打印不予受理通知书"),
    "forward": (lambda e, a, n, f: decisions.forward(e, a, n), "已转报中心审核"),
    "resubmit": (lambda e, a, n, f: decisions.resubmit(e, a, n, note=_reason(f)), "已补正并重新转报"),
    "complete": (lambda e, a, n, f: decisions.complete_onsite(
        e, a, n, outcome=str(f.get("outcome", "approved")), reason=_reason(f)), "已当场办结"),
    "deliver": (lambda e, a, n, f: decisions.deliver(e, a, n), "已出件"),
    "withdraw": (lambda e, a, n, f: decisions.withdraw(e, a, n, reason=_reason(f)), "已撤回"),
    "notice": (lambda e, a, n, f: intake.one_time_notice(e, a, n), "已出具一次性告知书，请打印"),
}


@requires_roles(*OUTLET)
async def material(request: Request) -> Response:
    number, key = request.path_params["number"], request.path_params["key"]
    form = await request.form()
    status = str(form.get("status", ""))
    try:
        await run_in_threadpool(intake.mark_material, request.app.state.engine, actor_of(request),
                                number, key, status, _reason(form))
    except (ActionRefused, CaseError) as exc:
        return await views.case_failure(request, SIDE, exc, form, f"material-{key}")
    return await views.case_success(request, SIDE, None)


@requires_roles(*OUTLET)
async def upload(request: Request) -> Response:
    number, key = request.path_params["number"], request.path_params["key"]
    settings = request.app.state.settings
    length = int_param(request.headers.get("content-length"), high=MAX_INDEX) or 0
    if length > settings.max_upload_bytes + 64 * 1024:
        exc = UploadRejected(f"文件超过大小上限（{settings.max_upload_bytes // (1024 * 1024)} MB）",
                             status_code=413)
        return await views.case_failure(request, SIDE, exc, FormData(), f"material-{key}")
    form = await request.form(max_files=1, max_fields=10)
    file = form.get("file")
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            raise UploadRejected("请选择要上传的文件", status_code=422)
        store = settings.file_store()
        await run_in_threadpool(
            intake.upload_material, request.app.state.engine, actor_of(request), number, key,
            read_chunks(file.file), claimed_name=file.filename, store=store,
            max_bytes=settings.max_upload_bytes,
        )
    except (ActionRefused, CaseError) as exc:
        return await views.case_failure(request, SIDE, exc, form, f"material-{key}")
    finally:
        if isinstance(file, UploadFile):
            await file.close()
    return await views.case_success(request, SIDE, "已上传")


@requires_roles(*OUTLET)
async def notice(request: Request) -> Response:
    return await views.notice_response(request, SIDE)


@requires_roles(*OUTLET)
async def file(request: Request) -> Response:
    return await views.file_response(request, SIDE)


@requires_roles(*OUTLET)
async def reveal(request: Request) -> Response:
    return await views.reveal_response(request, SIDE)


action = views.action_endpoint(SIDE, OUTLET, ACTIONS)


routes = [
    Route("/", home, name="home"),
    Route("/search", search, methods=["POST"], name="search"),
    Route("/outlet", overview, name="overview"),
    Route("/new", new, name="new"),
    Route("/new", create, methods=["POST"], name="create"),
    Route("/new/attempt", attempt, methods=["POST"], name="attempt"),
    Route("/{number}", case_page, name="case"),
    Route("/{number}/actions/{action}", action, methods=["POST"], name="action"),
    Route("/{number}/materials/{key}", material, methods=["POST"], name="material"),
    Route("/{number}/materials/{key}/upload", upload, methods=["POST"], name="upload"),
    Route("/{number}/notices/{notice}", notice, name="notice"),
    Route("/{number}/files/{file_id:id}", file, name="file"),
    Route("/{number}/reveal", reveal, methods=["POST"], name="reveal"),
]
