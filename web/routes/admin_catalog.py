"""Center administration, part two: the matter catalog (versioned) and delegation grants.
Routes are mounted by :mod:`web.routes.admin` under ``/admin``."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partners import catalog, grants
from partners.delegation import delegated_action
from partners.directory import get_or_404
from partners.errors import InvalidFields, PartnersError
from partners.models import Agreement, Matter, MatterVersion, Outlet, Partner, utcnow
from partners.paging import paginate
from web.auth import requires_roles
from web.params import int_param
from web.routes.admin import (
    ADMIN,
    actor_of,
    done,
    error_context,
    form_values,
    in_thread,
    page_of,
    record_id,
    render,
    render_list,
)
from web.security import is_write

BLANK_MATERIAL_ROWS = 3
MATERIAL_FIELDS = ("key", "name", "form", "copies", "necessity", "note", "promise")


def _catalog_choices() -> dict[str, Any]:
    return {
        "matter_types": catalog.MATTER_TYPES,
        "domains": catalog.DOMAINS,
        "case_kinds": catalog.CASE_KINDS,
        "material_forms": catalog.MATERIAL_FORMS,
        "necessities": catalog.NECESSITIES,
        "scopes": catalog.SCOPES,
        "blank_rows": BLANK_MATERIAL_ROWS,
    }


def matter_form(form: FormData) -> dict[str, Any]:
    """The catalog form as ``create_matter``/``edit_matter`` input (and to re-render)."""
    values = form_values(form)
    values["service_modes"] = [m for m in form.getlist("service_modes") if isinstance(m, str)]
    values["inspection_required"] = values.get("inspection_required") == "1"
    values["recording_required"] = values.get("recording_required") == "1"
    text = str(values.get("inspection_checklist_text", ""))
    values["inspection_checklist"] = [line.strip() for line in text.splitlines() if line.strip()]
    columns = [form.getlist(f"material_{f}") for f in MATERIAL_FIELDS]
    rows = []
    for cells in zip(*columns, strict=False):
        row = {f: str(v).strip() for f, v in zip(MATERIAL_FIELDS, cells, strict=True)}
        if row["name"]:
            rows.append(row)
    values["materials"] = rows
    return values


def _as_values(version: MatterVersion, matter: Matter) -> dict[str, Any]:
    values = catalog.version_as_form(version)
    values["inspection_checklist_text"] = "\n".join(version.inspection_checklist)
    values.update(
        basic_code=matter.basic_code,
        implementation_code=matter.implementation_code,
        expected_version=matter.current_version,
    )
    return values


# --- catalog ---------------------------------------------------------------------------
@requires_roles(ADMIN)
async def catalog_list(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()[:60]

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            stmt = (
                select(Matter, MatterVersion)
                .join(
                    MatterVersion,
                    (col(MatterVersion.matter_id) == Matter.id)
                    & (col(MatterVersion.version) == Matter.current_version),
                )
                .order_by(MatterVersion.domain, MatterVersion.name)
            )
            if q:
                stmt = stmt.where(
                    col(MatterVersion.name).contains(q, autoescape=True)
                    | col(Matter.implementation_code).contains(q.upper(), autoescape=True)
                    | (col(MatterVersion.domain) == q)
                )
            return {"page": paginate(s, stmt, page_of(request)), "q": q, **_catalog_choices()}

    return render_list(
        request, "admin/catalog.html", "admin/_catalog_list.html", await in_thread(load)
    )


async def _matter_form_page(
    request: Request, matter: Matter | None, values: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    ctx = {"matter": matter, "values": values, **_catalog_choices(), **extra}
    return render(request, "admin/catalog_form.html", ctx, status_code=status)


@requires_roles(ADMIN)
async def catalog_new(request: Request) -> Response:
    if not is_write(request):
        return await _matter_form_page(
            request,
            None,
            {"materials": [], "service_modes": [], "fee": "不收费", "service_object": "自然人"},
        )
    values = matter_form(await request.form())
    actor = actor_of(request)

    def save() -> int:
        with delegated_action(request.app.state.engine, actor, "admin.catalog.edit") as act:
            matter = catalog.create_matter(act.session, values, created_by=actor.id)
            act.set_matter(matter, 1)
            act.state = (None, "v1")
            assert matter.id is not None
            return matter.id

    try:
        mid = await in_thread(save)
    except PartnersError as exc:
        return await _matter_form_page(request, None, values, 422, **error_context(exc))
    return done(request, f"/admin/catalog/{mid}", "事项已创建（第 1 版）")


def _load_matter(request: Request, version: int | None = None) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        matter = get_or_404(s, Matter, record_id(request), "事项")
        shown = catalog.get_version(s, matter, version or matter.current_version)
        return {"matter": matter, "version": shown, "versions": catalog.list_versions(s, matter)}


@requires_roles(ADMIN)
async def catalog_view(request: Request) -> Response:
    number = request.path_params.get("version")
    ctx = await in_thread(_load_matter, request, int(number) if number else None)
    return render(request, "admin/catalog_view.html", {**ctx, **_catalog_choices()})


@requires_roles(ADMIN)
async def catalog_edit(request: Request) -> Response:
    ctx = await in_thread(_load_matter, request)
    matter: Matter = ctx["matter"]
    if not is_write(request):
        return await _matter_form_page(request, matter, _as_values(ctx["version"], matter))
    values = matter_form(await request.form())
    values.update(basic_code=matter.basic_code, implementation_code=matter.implementation_code)
    expected = str(values.get("expected_version", ""))
    actor = actor_of(request)

    def save() -> int:
        with delegated_action(request.app.state.engine, actor, "admin.catalog.edit") as act:
            row = act.session.get(Matter, matter.id)
            assert row is not None
            before = row.current_version
            version = catalog.edit_matter(
                act.session,
                row,
                values,
                created_by=actor.id,
                expected_version=int_param(expected),
            )
            act.set_matter(row, version.version)
            act.state = (f"v{before}", f"v{version.version}")
            return version.version

    try:
        number = await in_thread(save)
    except PartnersError as exc:
        return await _matter_form_page(request, matter, values, 422, **error_context(exc))
    return done(
        request,
        f"/admin/catalog/{matter.id}",
        f"已保存为第 {number} 版；已受理的办件仍按原版本办理",
    )


@requires_roles(ADMIN)
async def catalog_active(request: Request) -> Response:
    """Suspend or resume a matter (not versioned: it stops new cases, old ones go on)."""
    mid = record_id(request)
    active = str((await request.form()).get("active", "")) == "1"
    actor = actor_of(request)

    def save() -> None:
        with delegated_action(request.app.state.engine, actor, "admin.catalog.edit") as act:
            matter = get_or_404(act.session, Matter, mid, "事项")
            act.set_matter(matter)
            act.state = (
                "active" if matter.active else "inactive",
                "active" if active else "inactive",
            )
            matter.active = active
            act.session.add(matter)

    await in_thread(save)
    return done(request, f"/admin/catalog/{mid}", "事项已恢复办理" if active else "事项已暂停办理")


# --- grants ----------------------------------------------------------------------------
def _grant_choices(s: Session) -> dict[str, Any]:
    partners = {p.id: p for p in s.exec(select(Partner)).all()}
    matters = s.exec(
        select(Matter, MatterVersion)
        .join(
            MatterVersion,
            (col(MatterVersion.matter_id) == Matter.id)
            & (col(MatterVersion.version) == Matter.current_version),
        )
        .where(Matter.active)
        .order_by(MatterVersion.domain, MatterVersion.name)
    ).all()
    return {
        "agreements": s.exec(
            select(Agreement).where(Agreement.status != "terminated").order_by(Agreement.number)
        ).all(),
        "partners_by_id": partners,
        "matter_rows": matters,
        "outlets": s.exec(select(Outlet).order_by(col(Outlet.partner_id), col(Outlet.code))).all(),
        "scopes": catalog.SCOPES,
        "status_labels": grants.STATUS_LABELS,
    }


@requires_roles(ADMIN)
async def grant_list(request: Request) -> Response:
    status = request.query_params.get("status") or None
    if status not in grants.STATUS_LABELS:
        status = None

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            page = grants.list_grants(s, utcnow(), page=page_of(request), status=status)
            return {"page": page, "status": status or "", "status_labels": grants.STATUS_LABELS}

    return render_list(
        request, "admin/grants.html", "admin/_grants_list.html", await in_thread(load)
    )


def _ints(form: FormData, name: str) -> list[int]:
    return [n for v in form.getlist(name) if (n := int_param(v)) is not None]


def _day(raw: Any, field: str, errors: dict[str, str]) -> date:
    try:
        return date.fromisoformat(str(raw or "").strip())
    except ValueError:
        errors[field] = "请填写日期（格式 2026-01-31）"
        return date.min


async def _grant_form_page(
    request: Request, values: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            return _grant_choices(s)

    ctx = {"values": values, **await in_thread(load), **extra}
    return render(request, "admin/grant_form.html", ctx, status_code=status)


@requires_roles(ADMIN)
async def grant_new(request: Request) -> Response:
    if not is_write(request):
        return await _grant_form_page(request, {"matter_ids": [], "outlet_ids": [], "scopes": []})
    form = await request.form()
    values = form_values(form)
    values.update(
        matter_ids=_ints(form, "matter_ids"),
        outlet_ids=_ints(form, "outlet_ids"),
        scopes=[v for v in form.getlist("scopes") if isinstance(v, str)],
    )
    actor = actor_of(request)

    def save() -> int:
        errors: dict[str, str] = {}
        start = _day(values.get("valid_from"), "valid_from", errors)
        end = _day(values.get("valid_to"), "valid_to", errors)
        agreement = int_param(values.get("agreement_id"))
        if agreement is None:
            errors["agreement_id"] = "请选择合作协议"
        if errors:
            raise InvalidFields(errors)
        assert agreement is not None
        return grants.create_grant(
            request.app.state.engine,
            actor,
            agreement_id=agreement,
            matter_ids=values["matter_ids"],
            scopes=values["scopes"],
            outlet_ids=values["outlet_ids"],
            valid_from=start,
            valid_to=end,
        )

    try:
        gid = await in_thread(save)
    except PartnersError as exc:
        return await _grant_form_page(request, values, 422, **error_context(exc))
    return done(request, f"/admin/grants/{gid}", "授权已创建")


async def _grant_page(request: Request, status: int = 200, **extra: Any) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            return {"row": grants.grant_row(s, record_id(request), utcnow())}

    ctx = {**await in_thread(load), **extra}
    return render(request, "admin/grant_view.html", ctx, status_code=status)


@requires_roles(ADMIN)
async def grant_view(request: Request) -> Response:
    return await _grant_page(request)


@requires_roles(ADMIN)
async def grant_revoke(request: Request) -> Response:
    gid = record_id(request)
    reason = str((await request.form()).get("reason", ""))
    try:
        await in_thread(
            grants.revoke_grant, request.app.state.engine, actor_of(request), gid, reason
        )
    except PartnersError as exc:
        errors = {"reason": exc.message} if isinstance(exc, InvalidFields) or exc.field else {}
        return await _grant_page(
            request, 422, values={"reason": reason}, errors=errors, error=exc.message
        )
    return done(request, f"/admin/grants/{gid}", "授权已撤销，相关网点即时停止办理")


routes: list[Any] = [
    Route("/catalog", catalog_list, name="admin_catalog"),
    Route("/catalog/new", catalog_new, methods=["GET", "POST"], name="admin_catalog_new"),
    Route("/catalog/{id:id}", catalog_view, name="admin_catalog_view"),
    Route("/catalog/{id:id}/v/{version:id}", catalog_view, name="admin_catalog_version"),
    Route(
        "/catalog/{id:id}/edit", catalog_edit, methods=["GET", "POST"], name="admin_catalog_edit"
    ),
    Route(
        "/catalog/{id:id}/active", catalog_active, methods=["POST"], name="admin_catalog_active"
    ),
    Route("/grants", grant_list, name="admin_grants"),
    Route("/grants/new", grant_new, methods=["GET", "POST"], name="admin_grants_new"),
    Route("/grants/{id:id}", grant_view, name="admin_grant_view"),
    Route("/grants/{id:id}/revoke", grant_revoke, methods=["POST"], name="admin_grant_revoke"),
]
