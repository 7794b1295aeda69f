"""Shared by the teller side (``cases``) and the center side (``review``): the case page
context, success and failure responses, printable notices, files and the audited reveal.

``side`` is "cases" or "review": it picks the templates, the URL prefix and which actions
are offered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from outlet import decisions, states
from outlet.cases import events_of, files_of, load_case, materials_of, notices_of
from outlet.clock import local_day
from outlet.errors import CaseError, CaseNotFound, FileNotFound
from outlet.files import KINDS
from outlet.ids import id_kind, mask_id
from outlet.intake import MATERIAL_STATUS_LABELS
from outlet.models import CaseFile, CaseMaterial, Notice
from outlet.notices import NOTICE_KINDS, one_time_items, qr_svg
from outlet.workdays import DEADLINE_LABELS, ESTIMATED_NOTE, WorkCalendar
from partners.errors import ActionRefused
from partners.models import Staff, utcnow
from partners.paging import clamp_page
from remote_assist import inspections
from web import errors
from web.auth import current_user, requires_roles
from web.db import reader
from web.inputs import refuse_control_chars
from web.security import upload_headers

APPLICANT_KINDS = {"person": "自然人", "enterprise": "企业法人"}


def actor_of(request: Request) -> Staff:
    """The logged-in staff member acting. Raises InvalidInput (422) once when the input guard
    removed a control character from this request's form (web/inputs.py): handlers resolve
    the actor inside their refusal handling, so the page comes back with the form kept."""
    user = current_user(request)
    assert user is not None  # guarded by requires_roles
    refuse_control_chars(request)
    return user


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: Request, name: str, ctx: dict[str, Any], *, status_code: int = 200) -> Response:
    ctx.setdefault("state_labels", states.STATE_LABELS)
    ctx.setdefault("deadline_labels", DEADLINE_LABELS)
    ctx.setdefault("estimated_note", ESTIMATED_NOTE)
    ctx.setdefault("mask_id", mask_id)
    ctx.setdefault("id_kind", id_kind)
    return request.app.state.templates.TemplateResponse(
        request, name, ctx, status_code=status_code, headers={"Vary": "HX-Request"}
    )


def page_param(request: Request) -> int:
    return clamp_page(request.query_params.get("page", "1"))


def fail(request: Request, status: int, message: str) -> Response:
    return errors.render_error(request, status, message)


def see_other(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def case_context(engine: Engine, actor: Staff, number: str, side: str) -> dict[str, Any]:
    """Everything the case page shows; raises CaseNotFound outside the actor's scope."""
    with Session(engine) as s:
        ref = load_case(s, actor, number)
        case, version = ref.case, ref.version
        assert case.id is not None
        mats = materials_of(s, case.id)
        files: dict[str, list[CaseFile]] = defaultdict(list)
        for f in files_of(s, case.id):
            files[f.material_key].append(f)
        cal = WorkCalendar.cached(s)
        today = local_day(utcnow())
        offered = states.OUTLET_ACTIONS if side == "cases" else states.CENTER_ACTIONS
        actions = [a for a in states.allowed_actions(case.state) if a in offered]
        if "case.complete_onsite" in actions and version.case_kind != "即办件":
            actions.remove("case.complete_onsite")
        reviewer = s.get(Staff, case.reviewer_id) if case.reviewer_id else None
        missing = [m for m in mats if m.necessity in states.REQUIRED and m.status != "received"]
        can_notice = (side == "cases" and case.state in states.NOTICE_STATES
                      and bool(one_time_items(mats)))
        review_side = side == "review"  # the teller side loads remote help lazily (/assist/cases/…)
        gate = inspections.inspection_gate_reason(s, case) if review_side else None
        inspection = inspections.inspection_record(s, case.id) if review_side else None
        return {
            "side": side, "base": f"/{side}/{case.number}", "ref": ref, "case": case,
            "version": version, "applicant": ref.applicant, "outlet": ref.outlet,
            "applicant_kinds": APPLICANT_KINDS, "materials": mats, "files": files,
            "status_labels": MATERIAL_STATUS_LABELS, "notices": notices_of(s, case.id),
            "notice_kinds": NOTICE_KINDS, "events": events_of(s, case.id),
            "action_labels": states.ACTION_LABELS, "actions": actions, "reviewer": reviewer,
            "deadline": cal.deadline_status(today, case.due_on) if case.state in states.OPEN else "ok",
            "rongque_max": cal.add_workdays(today, version.committed_days).day
            if case.state == "draft" else None,
            "missing_required": missing,
            "can_edit_materials": side == "cases" and case.state in states.MATERIAL_STATES,
            "can_supply": side == "cases" and case.state in states.SUPPLY_STATES,
            "can_notice": can_notice,
            "primary": primary_slug(actions, missing, can_notice=can_notice, gate=gate),
            "inspection": inspection, "inspection_gate": gate,
            "errors": {}, "values": {}, "error": None, "flash": None, "revealed": None,
        }


# Actions that move a case on, in the order one is preferred as the page's primary button.
PRIMARY_SLUGS = {
    "case.accept": "accept", "case.accept_rongque": "rongque", "case.resubmit": "resubmit",
    "case.forward": "forward", "case.complete_onsite": "complete", "case.deliver": "deliver",
    "case.review_claim": "claim", "case.approve": "approve",
}


def primary_slug(actions: list[str], missing: list[CaseMaterial], *, can_notice: bool,
                 gate: str | None) -> str | None:
    """The one action shown as the red primary button: what the teller should do next.

    While required materials are missing, accepting is refused anyway, so the primary action
    is the 一次性告知书 (Administrative Licensing Law art. 32), or 容缺受理 when only
    「容缺后补」 materials are missing. Approval is not primary while a required inspection
    has not passed (``gate``)."""
    if missing and ("case.accept" in actions or "case.resubmit" in actions):
        hard = [m for m in missing if m.necessity != "容缺后补"]
        if not hard and "case.accept_rongque" in actions:
            return "rongque"
        return "notice" if can_notice else None
    for action, slug in PRIMARY_SLUGS.items():
        if action in actions and not (action == "case.approve" and gate):
            return slug
    return "notice" if can_notice else None


def _templates(side: str) -> tuple[str, str]:
    return f"{side}/case.html", f"{side}/_case_body.html"


async def case_response(request: Request, side: str, **extra: Any) -> Response:
    number = request.path_params["number"]
    try:
        ctx = await run_in_threadpool(case_context, reader(request.app.state), actor_of(request),
                                      number, side)
    except CaseNotFound as exc:
        return fail(request, 404, exc.message)
    ctx["flash"] = request.session.pop("flash", None) if "session" in request.scope else None
    status = int(extra.pop("status_code", 200))
    ctx.update(extra)
    page, body = _templates(side)
    return render(request, body if is_htmx(request) else page, ctx, status_code=status)


async def case_success(request: Request, side: str, message: str | None) -> Response:
    """htmx: the refreshed case body with a message; plain: redirect back (PRG)."""
    if is_htmx(request):
        return await case_response(request, side, flash=message)
    if message:
        request.session["flash"] = message
    return RedirectResponse(f"/{side}/{request.path_params['number']}", status_code=303)


async def case_failure(request: Request, side: str, exc: ActionRefused | CaseError,
                       form: FormData, anchor: str) -> Response:
    """Re-render the case with the reason next to the form that failed and its input kept.
    Refusals were already audited by ``delegated_action``."""
    if isinstance(exc, CaseNotFound):
        return fail(request, 404, exc.message)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    return await case_response(
        request, side, status_code=exc.status_code, error=exc.message,
        errors={anchor: exc.message, **{f"{anchor}.{k}": v for k, v in getattr(exc, "errors", {}).items()}},
        values={"anchor": anchor, **values},
    )


async def notice_response(request: Request, side: str) -> Response:
    """A printable notice of this case (the QR code on receipts opens the status page)."""
    number, notice_no = request.path_params["number"], request.path_params["notice"]
    actor = actor_of(request)

    def load() -> dict[str, Any]:
        ctx = case_context(request.app.state.engine, actor, number, side)
        with Session(request.app.state.engine) as s:
            notice = s.exec(
                select(Notice).where(Notice.number == notice_no, Notice.case_id == ctx["case"].id)
            ).first()
            issuer = s.get(Staff, notice.issued_by) if notice else None
        if notice is None:
            raise CaseNotFound("未找到该告知书")
        ctx.update(notice=notice, issuer=issuer, title=NOTICE_KINDS[notice.kind][0])
        return ctx

    try:
        ctx = await run_in_threadpool(load)
    except CaseNotFound as exc:
        return fail(request, 404, exc.message)
    settings = request.app.state.settings
    status_url = settings.public_link(f"/status/{quote(number)}")
    ctx.update(status_url=status_url, qr=qr_svg(status_url) if ctx["notice"].kind in ("receipt", "rongque") else None)
    rate_url = settings.public_link(f"/rate/{quote(number)}")  # 好差评
    ctx.update(rate_url=rate_url, rate_qr=qr_svg(rate_url) if ctx["qr"] else None)
    return render(request, "cases/notice.html", ctx)


async def file_response(request: Request, side: str) -> Response:
    """An uploaded scan, only for users who may see the case; typed by its sniffed content."""
    number, file_id = request.path_params["number"], request.path_params["file_id"]
    actor = actor_of(request)
    settings = request.app.state.settings

    def load() -> tuple[str, CaseFile]:
        with Session(request.app.state.engine) as s:
            ref = load_case(s, actor, number)
            cf = s.get(CaseFile, file_id)
            if cf is None or cf.case_id != ref.case.id:
                raise FileNotFound()
            return str(settings.file_store().open(cf.sha256)), cf

    try:
        path, cf = await run_in_threadpool(load)
    except (CaseNotFound, FileNotFound) as exc:
        return fail(request, 404, exc.message)
    ext = KINDS.get(cf.content_type, ("", (".bin",)))[1][0]
    headers = upload_headers(cf.content_type, f"material-{cf.id}{ext}", cf.original_name,
                             download=bool(request.query_params.get("download")))
    return FileResponse(path, media_type=cf.content_type, headers=headers)


async def reveal_response(request: Request, side: str) -> Response:
    """POST: show the full ID number once (audited as case.reveal_pii)."""
    number = request.path_params["number"]
    try:
        revealed = await run_in_threadpool(decisions.reveal_pii, request.app.state.engine,
                                           actor_of(request), number)
    except CaseNotFound as exc:
        return fail(request, 404, exc.message)
    except (ActionRefused, CaseError) as exc:
        return fail(request, exc.status_code, exc.message)
    if is_htmx(request):
        return render(request, "cases/_reveal.html", {"revealed": revealed, "base": f"/{side}/{number}"})
    return await case_response(request, side, revealed=revealed)


ActionTable = dict[str, tuple[Callable[..., Any], str]]


def action_endpoint(side: str, roles: tuple[str, ...], table: ActionTable) -> Callable[[Request], Any]:
    """``POST /<side>/{number}/actions/{action}``: run one case action from ``table``
    (slug → (service call, success message)); refusals re-render the case with the reason."""

    @requires_roles(*roles)
    async def action(request: Request) -> Response:
        number, slug = request.path_params["number"], request.path_params["action"]
        if slug not in table:
            return fail(request, 404, "未知操作")
        call, message = table[slug]
        form = await request.form()
        try:
            await run_in_threadpool(call, request.app.state.engine, actor_of(request), number, form)
        except (ActionRefused, CaseError) as exc:
            return await case_failure(request, side, exc, form, slug)
        return await case_success(request, side, message)

    return action

