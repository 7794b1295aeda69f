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
from outlet.cases import home_lists
from outlet.clock import local_day
from outlet.errors import CaseError, UploadRejected
from outlet.files import FileStore, read_chunks
from outlet.intake import NewCase
from partners.catalog import delegated_matters
from partners.errors import ActionRefused
from partners.models import Outlet, utcnow
from web.auth import requires_roles
from web.params import MAX_INDEX, int_param
from web.routes import case_views as views
from web.routes.case_views import actor_of, render

OUTLET = ("teller", "block_agent", "outlet_lead")
SIDE = "cases"


@requires_roles(*OUTLET)
async def home(request: Request) -> Response:
    """Teller home: today's cases, overdue (red) and due-soon (yellow), new case search."""
    actor = actor_of(request)
    today = local_day(utcnow())
    page = views.page_param(request)

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
            return {"today": today, "outlet": outlet, "page": page,
                    **home_lists(s, actor, today, page=page, per_page=20)}

    return render(request, "cases/home.html", await run_in_threadpool(load))


def _matters(request: Request, query: str) -> list[Any]:
    actor = actor_of(request)
    with Session(request.app.state.engine) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        return delegated_matters(s, outlet, utcnow(), query) if outlet else []


@requires_roles(*OUTLET)
async def new(request: Request) -> Response:
    """Search this outlet's delegated matters; with ``matter_id`` show the intake form."""
    query = request.query_params.get("q", "").strip()[:60]
    matters = await run_in_threadpool(_matters, request, query)
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "matter-results":
        return render(request, "cases/_matter_results.html", {"matters": matters, "q": query})
    chosen = _chosen(matters, request.query_params.get("matter_id"))
    return render(request, "cases/new.html", {
        "matters": matters, "q": query, "chosen": chosen, "values": {}, "errors": {}, "error": None,
    })


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
        matters = await run_in_threadpool(_matters, request, "")
        return render(request, "cases/new.html", {
            "matters": matters, "q": "", "chosen": _chosen(matters, raw_id), "values": values,
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
        store = FileStore(settings.files_dir)
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
    Route("/new", new, name="new"),
    Route("/new", create, methods=["POST"], name="create"),
    Route("/{number}", case_page, name="case"),
    Route("/{number}/actions/{action}", action, methods=["POST"], name="action"),
    Route("/{number}/materials/{key}", material, methods=["POST"], name="material"),
    Route("/{number}/materials/{key}/upload", upload, methods=["POST"], name="upload"),
    Route("/{number}/notices/{notice}", notice, name="notice"),
    Route("/{number}/files/{file_id:id}", file, name="file"),
    Route("/{number}/reveal", reveal, methods=["POST"], name="reveal"),
]
