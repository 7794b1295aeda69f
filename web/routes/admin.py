"""Center administration (role ``admin``), mounted at ``/admin``: the shared helpers,
partners, agreements and outlets here; staff and AB角 in :mod:`web.routes.admin_staff`,
the catalog and grants in :mod:`web.routes.admin_catalog`.

Every change runs through ``delegated_action(engine, admin, "admin.…")`` so it is
authorized and audited in the same transaction. Lists are paginated; a list's htmx request
(``HX-Target: admin-list``) gets only the ``#admin-list`` fragment. A failed form
re-renders with the input kept and the reasons next to the fields (422).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from partners import directory
from partners.authorize import local_day
from partners.delegation import ActionContext, delegated_action
from partners.errors import ActionRefused, PartnersError
from partners.models import (
    PARTNER_KIND_LABELS,
    Agreement,
    Grant,
    Matter,
    Outlet,
    Partner,
    Staff,
)
from partners.paging import clamp_page, paginate
from web.auth import current_user, requires_roles
from web.security import is_write

ADMIN = "admin"


# --- shared helpers (also used by admin_staff and admin_catalog) ---------------------
def actor_of(request: Request) -> Staff:
    user = current_user(request)
    assert user is not None  # guarded by requires_roles
    return user


def render(request: Request, name: str, ctx: dict[str, Any], *, status_code: int = 200) -> Response:
    ctx.setdefault("errors", {})
    ctx.setdefault("values", {})
    ctx.setdefault("flash", request.session.pop("flash", None))
    ctx.setdefault("partner_kinds", PARTNER_KIND_LABELS)
    ctx.setdefault("local_day", local_day)
    return request.app.state.templates.TemplateResponse(
        request, name, ctx, status_code=status_code, headers={"Vary": "HX-Request"}
    )


def render_list(
    request: Request, page_template: str, fragment: str, ctx: dict[str, Any]
) -> Response:
    """One URL, page or fragment: htmx pagination/search swaps ``#admin-list`` only."""
    wants_fragment = (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Target") == "admin-list"
    )
    return render(request, fragment if wants_fragment else page_template, ctx)


def done(request: Request, url: str, message: str) -> Response:
    """Post/redirect/get with a one-time message."""
    request.session["flash"] = message
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def form_values(form: FormData) -> dict[str, Any]:
    """Single-valued fields as stripped strings (the CSRF token left out)."""
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def error_context(exc: PartnersError | ActionRefused) -> dict[str, Any]:
    """Form errors of a validation error, or of a refusal shown on its form (DutyRuleRefused)."""
    field = getattr(exc, "field", None)
    errors = dict(getattr(exc, "errors", {}) or ({field: exc.message} if field else {}))
    return {"errors": errors, "error": exc.message}


def page_of(request: Request) -> int:
    return clamp_page(request.query_params.get("page", "1"))


def record_id(request: Request, name: str = "id") -> int:
    return int(request.path_params[name])


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)


# --- dashboard -------------------------------------------------------------------------
@requires_roles(ADMIN)
async def index(request: Request) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:

            def n(model: Any) -> int:
                return int(s.exec(select(func.count()).select_from(model)).one())

            return {
                "counts": {
                    "partners": n(Partner),
                    "agreements": n(Agreement),
                    "outlets": n(Outlet),
                    "staff": n(Staff),
                    "catalog": n(Matter),
                    "grants": n(Grant),
                }
            }

    return render(request, "admin/index.html", await in_thread(load))


# --- partners, agreements, outlets -----------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """A simple table the admin lists and edits with one form."""

    name: str  # URL segment and template stem
    label: str
    action: str
    model: Any
    save: Callable[..., Any]
    order: Any
    search: tuple[Any, ...]
    audit: Callable[[ActionContext, Session, Any, str | None], None]

    def stmt(self, q: str) -> Any:
        stmt = select(self.model).order_by(self.order)
        if q:
            stmt = stmt.where(or_(*[col(c).contains(q, autoescape=True) for c in self.search]))
        return stmt


def _active(obj: Any) -> str:
    return "active" if obj.active else "inactive"


def _audit_partner(act: ActionContext, _s: Session, partner: Partner, before: str | None) -> None:
    act.partner_code = partner.code
    act.state = (before, _active(partner))


def _audit_agreement(
    act: ActionContext, s: Session, agreement: Agreement, before: str | None
) -> None:
    partner = s.get(Partner, agreement.partner_id)
    act.partner_code = partner.code if partner else None
    act.state = (before, agreement.status)


def _audit_outlet(act: ActionContext, s: Session, outlet: Outlet, before: str | None) -> None:
    act.set_outlet(s, outlet)
    act.state = (before, _active(outlet))


RESOURCES = {
    r.name: r
    for r in (
        Resource(
            "partners",
            "合作机构",
            "admin.partner.edit",
            Partner,
            directory.save_partner,
            Partner.code,
            (Partner.name, Partner.code),
            _audit_partner,
        ),
        Resource(
            "agreements",
            "合作协议",
            "admin.agreement.edit",
            Agreement,
            directory.save_agreement,
            col(Agreement.valid_from).desc(),
            (Agreement.number, Agreement.parties),
            _audit_agreement,
        ),
        Resource(
            "outlets",
            "网点",
            "admin.outlet.edit",
            Outlet,
            directory.save_outlet,
            Outlet.code,
            (Outlet.name, Outlet.code, Outlet.address),
            _audit_outlet,
        ),
    )
}


def _before(res: Resource, obj: Any) -> str | None:
    if obj is None:
        return None
    return obj.status if res.name == "agreements" else _active(obj)


def _choices(s: Session) -> dict[str, Any]:
    partners = s.exec(select(Partner).order_by(Partner.code)).all()
    return {
        "partner_options": [(p.id, p.name) for p in partners],
        "partner_names": {p.id: p.name for p in partners},
        "agreement_statuses": directory.AGREEMENT_STATUS_LABELS,
    }


def list_endpoint(res: Resource) -> Callable[[Request], Any]:
    @requires_roles(ADMIN)
    async def resource_list(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()[:60]

        def load() -> dict[str, Any]:
            with Session(request.app.state.engine) as s:
                page = paginate(s, res.stmt(q), page_of(request))
                return {"res": res, "q": q, "page": page, **_choices(s)}

        ctx = await in_thread(load)
        return render_list(request, f"admin/{res.name}.html", f"admin/_{res.name}_list.html", ctx)

    return resource_list


async def _form_page(
    request: Request, res: Resource, obj: Any, status: int = 200, **extra: Any
) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            return _choices(s)

    ctx = {"res": res, "obj": obj, **await in_thread(load), **extra}
    if "values" not in ctx:
        ctx["values"] = values_of(obj) if obj is not None else {}
    return render(request, f"admin/{res.name}_form.html", ctx, status_code=status)


def values_of(obj: Any) -> dict[str, Any]:
    values = {k: v for k, v in obj.model_dump().items() if v is not None}
    for key in ("active", "self_service_24h"):
        if key in values:
            values[key] = "1" if values[key] else "0"
    return values


def form_endpoint(res: Resource) -> Callable[[Request], Any]:
    @requires_roles(ADMIN)
    async def resource_form(request: Request) -> Response:
        obj = None
        if "id" in request.path_params:
            obj = await in_thread(get_record, request, res.model, record_id(request), res.label)
        if not is_write(request):
            return await _form_page(request, res, obj)
        values = form_values(await request.form())
        actor = actor_of(request)

        def save() -> Any:
            with delegated_action(request.app.state.engine, actor, res.action) as act:
                target = act.session.get(res.model, obj.id) if obj is not None else None
                before = _before(res, target)
                saved = res.save(act.session, values, target)
                res.audit(act, act.session, saved, before)
                return saved.id

        try:
            saved_id = await in_thread(save)
        except PartnersError as exc:
            return await _form_page(request, res, obj, 422, values=values, **error_context(exc))
        return done(request, f"/admin/{res.name}/{saved_id}", f"{res.label}已保存")

    return resource_form


def get_record(request: Request, model: Any, rid: int, label: str) -> Any:
    with Session(request.app.state.engine) as s:
        return directory.get_or_404(s, model, rid, label)


from web.routes import admin_calendar, admin_catalog, admin_queue, admin_staff  # noqa: E402  (they use the helpers above)

routes: list[Any] = [
    Route("/", index, name="admin_index"),
    *[
        route
        for name, res in RESOURCES.items()
        for route in (
            Route(f"/{name}", list_endpoint(res), name=f"admin_{name}"),
            Route(
                f"/{name}/new",
                form_endpoint(res),
                methods=["GET", "POST"],
                name=f"admin_{name}_new",
            ),
            Route(
                f"/{name}/{{id:id}}",
                form_endpoint(res),
                methods=["GET", "POST"],
                name=f"admin_{name}_edit",
            ),
        )
    ],
    *admin_staff.routes,
    *admin_catalog.routes,
    *admin_calendar.routes,
    *admin_queue.routes,
]
