"""服务记录 at the counter: the list, 登记服务, the record page with 首问负责 handover and
close, the 代办 forms and their printable A4 pages. Mounted at ``/services``.

Every change goes through ``outlet.services`` (authorize + change + audit in one
transaction); refusals re-render the page with the reason and the form input kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from outlet.clock import local_day
from outlet.errors import CaseError, InvalidInput, ServiceNotFound
from outlet.ids import mask_id
from outlet.models import Case
from outlet.queue.bookings import mask_name
from outlet.services import daiban, records
from outlet.services.models import HomeVisit, ServiceStep
from outlet.services.records import CHANNELS, KINDS, OUTCOMES, STATE_LABELS, NewService
from outlet.states import TERMINAL
from partners.catalog import delegated_matters
from partners.errors import ActionRefused
from partners.models import Outlet, Staff, utcnow
from web.auth import requires_roles
from web.inputs import keeps_form
from web.params import form_id
from web.routes.case_views import actor_of, fail, is_htmx, render

OUTLET = ("teller", "block_agent", "outlet_lead")
NEW_FIELDS = ("kind", "matter_id", "topic", "channel", "applicant_kind", "applicant_name",
              "id_number", "phone")


def _common(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx.update(kinds=KINDS, outcomes=OUTCOMES, service_states=STATE_LABELS, channels=CHANNELS,
               forms=daiban.FORMS, mask_id=mask_id)
    ctx.setdefault("errors", {})
    ctx.setdefault("values", {})
    ctx.setdefault("error", None)
    return ctx


def _home_context(request: Request) -> dict[str, Any]:
    actor = actor_of(request)
    today = local_day(utcnow())
    with Session(request.app.state.engine) as s:
        outlet = s.get(Outlet, actor.outlet_id) if actor.outlet_id else None
        matters = delegated_matters(s, outlet, utcnow(), "") if outlet else []
        return _common({
            "today": today, "outlet": outlet, "matters": matters,
            "open_rows": records.service_rows(s, actor, open_only=True),
            "today_rows": records.service_rows(s, actor, day=today),
        })


@requires_roles(*OUTLET)
async def home(request: Request) -> Response:
    """服务记录: open records (owner shown: 首问负责), today's records, 登记服务 form."""
    ctx = await run_in_threadpool(_home_context, request)
    ctx["values"] = {"kind": request.query_params.get("kind", "咨询")}
    return render(request, "services/home.html", ctx)


@keeps_form
@requires_roles(*OUTLET)
async def create(request: Request) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "") or "").strip() for k in NEW_FIELDS}
    try:
        actor = actor_of(request)  # first: it refuses a form that carried a control character
        data = NewService(
            kind=values["kind"], matter_id=form_id(values, "matter_id", "所选事项不存在"),
            topic=values["topic"], channel=values["channel"],
            applicant_kind=values["applicant_kind"] or "person", applicant_name=values["applicant_name"],
            id_number=values["id_number"], phone=values["phone"],
        )
        record = await run_in_threadpool(records.open_service, request.app.state.engine,
                                         actor, data,
                                         pseudonym_key=request.app.state.pseudonym_key)
    except (ActionRefused, CaseError) as exc:
        ctx = await run_in_threadpool(_home_context, request)
        ctx.update(values=values, error=exc.message, errors=getattr(exc, "errors", {}) or {})
        return render(request, "services/home.html", ctx, status_code=exc.status_code)
    return _see_other(request, f"/services/{record.number}")


def _see_other(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def record_context(request: Request, number: str) -> dict[str, Any]:
    actor = actor_of(request)
    with Session(request.app.state.engine) as s:
        ref = records.load_service(s, actor, number)
        rec = ref.record
        assert rec.id is not None
        owner = s.get(Staff, rec.owner_id)
        case = s.get(Case, rec.case_id) if rec.case_id else None
        visit = s.get(HomeVisit, rec.visit_id) if rec.visit_id else None
        return _common({
            "visit": visit,  # 上门办: the applicant is the request's contact (shown masked)
            "visit_contact": mask_name(visit.contact_name) if visit else None,
            "ref": ref, "record": rec, "owner": owner, "case": case, "applicant": ref.applicant,
            # 终止 of a 代办 does not end its case: the 终止 form says so
            "case_open": case is not None and case.state not in TERMINAL,
            "steps": records.steps_of(s, rec.id), "is_owner": rec.owner_id == actor.id,
            "colleagues": records.colleagues(s, actor, rec.outlet_id), "base": f"/services/{number}",
            "ended": rec.state in records.ENDED,
        })


@requires_roles(*OUTLET)
async def record_page(request: Request) -> Response:
    return await _record_response(request)


async def _record_response(request: Request, **extra: Any) -> Response:
    number = request.path_params["number"]
    try:
        ctx = await run_in_threadpool(record_context, request, number)
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    ctx["flash"] = request.session.pop("flash", None)
    status = int(extra.pop("status_code", 200))
    ctx.update(extra)
    return render(request, "services/record.html", ctx, status_code=status)


def _day(form: FormData, name: str) -> date | None:
    """A date field: None when empty, InvalidInput (422) when not a real date."""
    raw = str(form.get(name, "") or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        msg = f"日期「{raw[:20]}」无效，请按 年-月-日 填写（如 2027-03-31）"
        raise InvalidInput(msg, field=name, errors={name: msg}) from None


def _text(form: FormData, name: str) -> str:
    return str(form.get(name, "") or "")


ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "handover": (lambda e, a, n, f: records.handover(
        e, a, n, to_staff_id=form_id(f, "to_staff_id", "只能转交给本网点在岗的其他同事"),
        note=_text(f, "note")), "已转交，接手同事成为首问责任人"),
    "close": (lambda e, a, n, f: records.close(
        e, a, n, outcome=_text(f, "outcome"), note=_text(f, "note"),
        case_number=_text(f, "case_number") or None), "服务已办结"),
    "entrust": (lambda e, a, n, f: daiban.entrust(
        e, a, n, matters=_text(f, "matters"), valid_until=_day(f, "valid_until"),
        case_number=_text(f, "case_number")), "已签订委托书并受理，请打印委托书和受理单"),
    "suspend": (lambda e, a, n, f: daiban.suspend(e, a, n, reason=_text(f, "reason")),
                "已中止，请打印中止单"),
    "terminate": (lambda e, a, n, f: daiban.terminate(e, a, n, reason=_text(f, "reason")),
                  "已终止，请打印终止单"),
    "deliver": (lambda e, a, n, f: daiban.deliver(
        e, a, n, items=_text(f, "items"), received_by=_text(f, "received_by")),
        "已办结送达，请打印办结单由申请人签收"),
}


@keeps_form
@requires_roles(*OUTLET)
async def action(request: Request) -> Response:
    number, slug = request.path_params["number"], request.path_params["action"]
    if slug == "case":  # 代办 creates its case: on to the case page to take it in
        return await _create_case(request, number)
    if slug not in ACTIONS:
        return fail(request, 404, "未知操作")
    call, message = ACTIONS[slug]
    form = await request.form()
    try:
        await run_in_threadpool(call, request.app.state.engine, actor_of(request), number, form)
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    except (ActionRefused, CaseError) as exc:
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        return await _record_response(request, status_code=exc.status_code, error=exc.message,
                                 errors={slug: exc.message, **getattr(exc, "errors", {})},
                                 values={"anchor": slug, **values})
    request.session["flash"] = message
    return _see_other(request, f"/services/{number}")


async def _create_case(request: Request, number: str) -> Response:
    """代办新建办件 (outlet/services/daiban.create_case), then the new case's page."""
    try:
        case = await run_in_threadpool(lambda: daiban.create_case(
            request.app.state.engine, actor_of(request), number,
            pseudonym_key=request.app.state.settings.pseudonym_key()))
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    except (ActionRefused, CaseError) as exc:
        return await _record_response(request, status_code=exc.status_code, error=exc.message,
                                      errors={"case": exc.message, **getattr(exc, "errors", {})},
                                      values={"anchor": "case"})
    request.session["flash"] = f"已新建代办办件 {case.number}（代办服务 {number}），请核对材料后受理"
    return _see_other(request, f"/cases/{case.number}")


@requires_roles(*OUTLET)
async def form_page(request: Request) -> Response:
    """A printable 代办 form (A4): 委托书, 受理单, 续办委托书, 中止单, 终止单, 办结单."""
    number, form_number = request.path_params["number"], request.path_params["form"]

    def load() -> dict[str, Any]:
        ctx = record_context(request, number)
        with Session(request.app.state.engine) as s:
            step = s.exec(select(ServiceStep).where(ServiceStep.record_id == ctx["record"].id,
                                                    ServiceStep.form_number == form_number)).first()
            if step is None:
                raise ServiceNotFound("未找到该表单")
            ctx.update(step=step, issuer=s.get(Staff, step.actor_id), title=daiban.FORMS[step.form or ""][0])
            outlet = s.get(Outlet, ctx["record"].outlet_id)
            ctx["outlet"] = outlet
        return ctx

    try:
        ctx = await run_in_threadpool(load)
    except ServiceNotFound as exc:
        return fail(request, 404, exc.message)
    return render(request, "services/form.html", ctx)


def routes_with(visit_routes: list[Any]) -> list[Any]:
    return [
        Route("/", home, name="home"),
        Route("/new", create, methods=["POST"], name="create"),
        *visit_routes,
        Route("/{number}", record_page, name="record"),
        Route("/{number}/actions/{action}", action, methods=["POST"], name="action"),
        Route("/{number}/forms/{form}", form_page, name="form"),
    ]
