"""Security administration (role ``security_admin``, 三员分立): staff accounts, roles,
password resets (two-person rule for duty holders), login sessions and AB角.
Routes are mounted by :mod:`web.routes.admin` under ``/admin``; the system admin (``admin``)
has no access here, and the security admin has none to the rest of ``/admin``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partners import accounts, logins
from partners.accounts import EXPERT_LEVELS
from partners.authorize import local_day
from partners.catalog import DOMAINS
from partners.delegation import ActionContext, delegated_action
from partners.directory import get_or_404
from partners.errors import (
    ActionRefused,
    DutyRuleRefused,
    InvalidFields,
    PartnersError,
    RecordNotFound,
)
from partners.models import (
    PENDING_KINDS,
    ROLE_LABELS,
    BackupAssignment,
    Outlet,
    Partner,
    Staff,
    utcnow,
)
from partners.paging import Page, paginate
from web.auth import requires_roles
from web.params import int_param
from web.routes.admin import (
    actor_of,
    done,
    error_context,
    form_values,
    get_record,
    in_thread,
    page_of,
    record_id,
    render,
    render_list,
    values_of,
)
from web.security import is_write

SECURITY = "security_admin"


def _staff_choices(s: Session) -> dict[str, Any]:
    return {
        "outlets": s.exec(select(Outlet).order_by(Outlet.code)).all(),
        "partners": s.exec(select(Partner).order_by(Partner.code)).all(),
        "role_choices": ROLE_LABELS,
        "domains": DOMAINS,
        "levels": EXPERT_LEVELS,
        "pending_kinds": PENDING_KINDS,
    }


@requires_roles(SECURITY)
async def staff_list(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()[:60]

    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            stmt = select(Staff).order_by(Staff.username)
            if q:
                stmt = stmt.where(
                    or_(col(Staff.username).contains(q, autoescape=True), col(Staff.display_name).contains(q, autoescape=True))
                )
            page: Page[Staff] = paginate(s, stmt, page_of(request))
            names = {o.id: o.name for o in s.exec(select(Outlet)).all()}
            partner_names = {p.id: p.name for p in s.exec(select(Partner)).all()}
            pending = accounts.pending_requests(s)
            requesters = {p.id: p for p in s.exec(select(Staff).where(
                col(Staff.id).in_({r.pending_by for r in pending}))).all()} if pending else {}
            return {"page": page, "q": q, "outlet_names": names, "partner_names": partner_names,
                    "pending": pending, "people": requesters, **_staff_choices(s)}

    return render_list(request, "admin/staff.html", "admin/_staff_list.html", await in_thread(load))


def _staff_values(form: FormData) -> dict[str, Any]:
    values = form_values(form)
    values["roles"] = [r for r in form.getlist("roles") if isinstance(r, str)]
    return values


def _staff_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    outlet = values.get("outlet_id") or ""
    partner = values.get("partner_id") or ""
    return {
        "partner_id": int_param(partner),
        "display_name": values.get("display_name", ""),
        "roles": values.get("roles", []),
        "outlet_id": int_param(outlet),
        "domain": values.get("domain") or None,
        "expert_level": values.get("expert_level") or None,
        "phone": values.get("phone", ""),
    }


async def _staff_page(
    request: Request, staff: Staff | None, status: int = 200, **extra: Any
) -> Response:
    def load() -> dict[str, Any]:
        with Session(request.app.state.engine) as s:
            ctx = _staff_choices(s)
            if staff is not None:
                rows = s.exec(
                    select(BackupAssignment)
                    .where(
                        or_(
                            col(BackupAssignment.holder_id) == staff.id,
                            col(BackupAssignment.backup_id) == staff.id,
                        )
                    )
                    .order_by(col(BackupAssignment.valid_from).desc())
                ).all()
                people = {p.id: p for p in s.exec(select(Staff).order_by(Staff.username)).all()}
                candidates = [
                    p
                    for p in people.values()
                    if p.id != staff.id and p.active and p.role_set & staff.role_set
                ]
                idle = timedelta(minutes=request.app.state.settings.session_idle_minutes)
                ctx.update(
                    sessions=logins.live_sessions(s, staff.id or 0, idle=idle),
                    backups=rows,
                    people=people,
                    backup_candidates=candidates,
                    today=local_day(utcnow()),
                )
            return ctx

    ctx = {"staff": staff, **await in_thread(load), **extra}
    if "values" not in ctx and staff is not None:
        ctx["values"] = {**values_of(staff), "roles": sorted(staff.role_set)}
    return render(request, "admin/staff_form.html", ctx, status_code=status)


Post = dict[str, Any]


def _post_of(s: Session, staff: Staff, *, requested: bool = False) -> Post:
    """The account's post as an audit leaf names it (no name, no phone): roles joined by
    ``/``, outlet and partner codes, active, domain and expert level. ``requested`` gives
    the post its pending request asks for (what applies at approval) instead."""
    fields: dict[str, Any] = {k: getattr(staff, k) for k in accounts.POST_FIELDS}
    roles, active = staff.role_set, staff.active
    if requested and staff.pending_kind not in (None, "reset"):
        fields.update(json.loads(staff.pending_post or "{}"))
        roles = frozenset((staff.pending_roles or staff.roles).split(",")) - {""}
        active = {"activation": True, "deactivation": False}.get(staff.pending_kind or "", fields.pop("active", active))
    fields.pop("active", None)
    outlet = s.get(Outlet, fields["outlet_id"]) if fields["outlet_id"] is not None else None
    partner = s.get(Partner, fields["partner_id"]) if fields["partner_id"] is not None else None
    return {"roles": "/".join(sorted(roles)) or None, "outlet": outlet.code if outlet else None,
            "partner": partner.code if partner else None, "active": bool(active),
            "domain": fields["domain"], "level": fields["expert_level"]}


def _audit_staff(act: ActionContext, staff: Staff, before: str | None, after: str,
                 post_before: Post | None = None, post_after: Post | None = None) -> None:
    """Name the account's outlet and the state move; with ``post_after``, the leaf's
    ``terms`` carry every post field that changed as ``{from, to}`` (docs/audit.md, "Staff
    changes"; ``post_before`` None for a new account)."""
    if staff.outlet_id is not None:
        outlet = act.session.get(Outlet, staff.outlet_id)
        if outlet is not None:
            act.set_outlet(act.session, outlet)
    act.state = (before, after)
    if post_after is not None:
        old = post_before or {}
        change = {k: {"from": old.get(k), "to": v} for k, v in post_after.items() if old.get(k) != v}
        if change:
            act.extra["terms"] = change


@requires_roles(SECURITY)
async def staff_new(request: Request) -> Response:
    if not is_write(request):
        return await _staff_page(request, None, values={"roles": []})
    values = _staff_values(await request.form())
    actor = actor_of(request)

    def save() -> tuple[int, bool]:
        with delegated_action(request.app.state.engine, actor, "security.staff.edit") as act:
            act.state = (_roles_state(values.get("roles", [])), None)  # what a refusal names
            staff = accounts.create_staff(
                act.session,
                username=values.get("username", ""),
                password=values.get("password", ""),
                actor=actor,
                **_staff_kwargs(values),
            )
            pending = staff.pending_kind is not None
            _audit_staff(act, staff, None, "roles_pending" if pending else f"staff:{staff.id}",
                         None, _post_of(act.session, staff))
            assert staff.id is not None
            return staff.id, pending

    try:
        sid, pending = await in_thread(save)
    except (PartnersError, ActionRefused) as exc:  # refusals are audited by delegated_action
        values.pop("password", None)
        return await _staff_page(request, None, _status(exc), values=values, **error_context(exc))
    if pending:
        return done(request, f"/admin/staff/{sid}",
                    "账号已创建但未启用：管理员、安全管理员、审计人员账号须由另一名安全管理员批准后启用（双人复核）")
    return done(request, f"/admin/staff/{sid}", "账号已创建")


def _status(exc: PartnersError | ActionRefused) -> int:
    """A refusal shown on its form keeps its own status (422 duty rule, 409 a pending request)."""
    return exc.status_code if isinstance(exc, ActionRefused) else 422


def _roles_state(roles: Any) -> str:
    """``roles:admin/auditor`` — the roles a request asked for, as an audit state code."""
    names = sorted(r for r in roles if isinstance(r, str) and r.replace("_", "").isalpha())[:4]
    return ("roles:" + "/".join(names))[:64] if names else "roles:none"


@requires_roles(SECURITY)
async def staff_edit(request: Request) -> Response:
    staff = await in_thread(get_record, request, Staff, record_id(request), "人员")
    if not is_write(request):
        return await _staff_page(request, staff)
    values = _staff_values(await request.form())
    actor = actor_of(request)

    def save() -> bool:
        with delegated_action(request.app.state.engine, actor, "security.staff.edit") as act:
            act.state = (f"staff:{staff.id}", _roles_state(values.get("roles", [])))
            if staff.id == actor.id and (SECURITY not in values["roles"] or values.get("active") != "1"):
                raise DutyRuleRefused("不能停用自己的账号或移除自己的安全管理员岗位")
            row = get_or_404(act.session, Staff, staff.id, "人员")
            before, post_before = row.pending_kind, _post_of(act.session, row)
            accounts.update_staff(
                act.session, row, actor=actor, active=values.get("active") == "1", **_staff_kwargs(values)
            )
            pending = row.pending_kind is not None and before is None
            _audit_staff(act, row, f"staff:{staff.id}", f"{row.pending_kind}_pending" if pending else f"staff:{staff.id}",
                         post_before, _post_of(act.session, row, requested=pending))
            return pending

    try:
        pending = await in_thread(save)
    except (PartnersError, ActionRefused) as exc:  # refusals are audited by delegated_action
        return await _staff_page(request, staff, _status(exc), values=values, **error_context(exc))
    if pending:
        return done(request, f"/admin/staff/{staff.id}",
                    "已提交申请；授予或取消管理员、安全管理员、审计人员岗位，以及停用、启用这些账号，"
                    "须由另一名安全管理员批准后整体生效（双人复核）")
    return done(request, f"/admin/staff/{staff.id}", "账号已保存")


async def _one_time_password_page(request: Request, sid: int, password: str, message: str) -> Response:
    """The page that shows a generated one-time password, once, to whoever applied the
    reset: a response, never a redirect (the password is never stored in the session)."""
    staff = await in_thread(get_record, request, Staff, sid, "人员")
    return await _staff_page(request, staff, one_time_password=password, flash=message)


@requires_roles(SECURITY)
async def staff_password(request: Request) -> Response:
    """Reset a password; nobody chooses it: an ordinary account gets a generated one-time
    password at once (shown once on the response), a duty holder's reset waits for a second
    security admin (:func:`staff_request_decide`), who then sees the password."""
    sid = record_id(request)
    actor = actor_of(request)

    def save() -> str | None:
        with delegated_action(request.app.state.engine, actor, "security.password.reset") as act:
            act.state = (f"staff:{sid}", None)
            row = get_or_404(act.session, Staff, sid, "人员")
            password = accounts.reset_password(act.session, row, actor=actor)
            _audit_staff(act, row, f"staff:{sid}", "password_reset" if password else "reset_pending")
            return password

    try:
        password = await in_thread(save)
    except ActionRefused as exc:  # audited by delegated_action; shown by the reset form
        staff = await in_thread(get_record, request, Staff, sid, "人员")
        return await _staff_page(request, staff, exc.status_code, errors={"pending": exc.message}, error=exc.message)
    if password:
        return await _one_time_password_page(request, sid, password, "密码已重置，该账号的登录已全部结束")
    return done(request, f"/admin/staff/{sid}", "重置申请已提交：须由另一名安全管理员批准后生效（双人复核）")


@requires_roles(SECURITY)
async def staff_request_decide(request: Request) -> Response:
    """Settle the account's pending request, whatever its kind (two-person rule): form
    field ``decision`` = approve / refuse; ``/pending/cancel`` withdraws it. One helper
    (:func:`partners.accounts.settle_request`) decides who may; a refusal is one audited
    ``duty_separation`` entry naming the account."""
    sid = record_id(request)
    decision = "cancel" if request.url.path.endswith("/cancel") else \
        ("approve" if str((await request.form()).get("decision", "")) == "approve" else "refuse")
    actor = actor_of(request)
    done_as = {"approve": "approved", "refuse": "refused", "cancel": "cancelled"}[decision]

    def save() -> tuple[str, str | None]:
        with delegated_action(request.app.state.engine, actor, "security.request.decide") as act:
            act.state = (f"staff:{sid}", f"request_{decision}")  # what a refusal names
            row = get_or_404(act.session, Staff, sid, "人员")
            kind, post_before = row.pending_kind or "", _post_of(act.session, row)
            password = accounts.settle_request(act.session, row, actor=actor, decision=decision)
            _audit_staff(act, row, f"staff:{sid}", f"{kind}_{done_as}", post_before, _post_of(act.session, row))
            return kind, password

    kind, password = await in_thread(save)
    if password:
        return await _one_time_password_page(request, sid, password, "已批准：密码重置生效，该账号的登录已全部结束"
                                             if kind == "reset" else "已批准：岗位变更生效，系统已生成一次性密码"
                                             "（原密码作废，该账号的登录已全部结束），请当面交给本人")
    if decision != "approve":
        return done(request, f"/admin/staff/{sid}", "已撤销该申请" if decision == "cancel" else "已驳回该申请")
    if kind == "deactivation":
        return done(request, f"/admin/staff/{sid}", "已批准：该账号已停用，其登录已全部结束")
    if kind == "activation":
        return done(request, f"/admin/staff/{sid}", "已批准：该账号已启用")
    return done(request, f"/admin/staff/{sid}", "已批准：岗位变更生效（该账号的原有登录已结束）")


@requires_roles(SECURITY)
async def staff_sessions_end(request: Request) -> Response:
    """End one login session of the user (form field ``session``) or all of them."""
    sid = record_id(request)
    which = str((await request.form()).get("session", ""))[:64]
    actor = actor_of(request)

    def save() -> int:
        with delegated_action(request.app.state.engine, actor, "security.sessions.end") as act:
            row = get_or_404(act.session, Staff, sid, "人员")
            if which:
                login = act.session.get(logins.LoginSession, which)
                if login is None or login.staff_id != sid:
                    raise RecordNotFound("该会话不存在")
                ended = int(logins.end(act.session, which, "admin"))
            else:
                ended = logins.end_all(act.session, sid, "admin")
            _audit_staff(act, row, f"staff:{sid}", f"sessions_ended:{ended}")
            return ended

    ended = await in_thread(save)
    return done(request, f"/admin/staff/{sid}", f"已结束 {ended} 个登录会话")


@requires_roles(SECURITY)
async def staff_backup(request: Request) -> Response:
    """Add an AB角 assignment where this staff member is the holder (A角)."""
    staff = await in_thread(get_record, request, Staff, record_id(request), "人员")
    values = form_values(await request.form())
    actor = actor_of(request)

    def save() -> None:
        errors: dict[str, str] = {}
        start = _parse_day(values.get("backup_from", ""), "backup_from", errors)
        end = _parse_day(values.get("backup_to", ""), "backup_to", errors, optional=True)
        backup = int_param(values.get("backup_id"))
        if backup is None:
            errors["backup_id"] = "请选择 B 角人员"
        if errors or start is None:
            raise InvalidFields(errors or {"backup_from": "请填写开始日期"})
        assert backup is not None
        assert staff.id is not None
        with delegated_action(request.app.state.engine, actor, "security.staff.edit") as act:
            try:
                row = accounts.add_backup(
                    act.session,
                    holder_id=staff.id,
                    backup_id=backup,
                    valid_from=start,
                    valid_to=end,
                    note=values.get("backup_note", ""),
                )
            except InvalidFields as exc:
                renamed = {"valid_to": "backup_to", "note": "backup_note"}
                raise InvalidFields({renamed.get(k, k): v for k, v in exc.errors.items()}) from None
            _audit_staff(act, staff, f"staff:{staff.id}", f"backup:{row.id}")

    try:
        await in_thread(save)
    except PartnersError as exc:
        return await _staff_page(
            request,
            staff,
            422,
            values={**values_of(staff), "roles": sorted(staff.role_set), **values},
            **error_context(exc),
        )
    return done(request, f"/admin/staff/{staff.id}", "AB 角安排已添加")


@requires_roles(SECURITY)
async def backup_end(request: Request) -> Response:
    bid = record_id(request)
    actor = actor_of(request)

    def save() -> int:
        with delegated_action(request.app.state.engine, actor, "security.staff.edit") as act:
            row = accounts.end_backup(act.session, bid, local_day(utcnow()))
            act.state = (f"backup:{bid}", "ended")
            return row.holder_id

    holder = await in_thread(save)
    return done(request, f"/admin/staff/{holder}", "AB 角安排已结束（今天为最后一天）")


def _parse_day(
    raw: str, field: str, errors: dict[str, str], *, optional: bool = False
) -> date | None:
    if not raw and optional:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = "请填写日期（格式 2026-01-31）"
        return None


routes: list[Any] = [
    Route("/staff", staff_list, name="admin_staff"),
    Route("/staff/new", staff_new, methods=["GET", "POST"], name="admin_staff_new"),
    Route("/staff/{id:id}", staff_edit, methods=["GET", "POST"], name="admin_staff_edit"),
    Route(
        "/staff/{id:id}/password", staff_password, methods=["POST"], name="admin_staff_password"
    ),
    Route("/staff/{id:id}/pending/decide", staff_request_decide, methods=["POST"],
          name="admin_staff_pending_decide"),
    Route("/staff/{id:id}/pending/cancel", staff_request_decide, methods=["POST"],
          name="admin_staff_pending_cancel"),
    Route("/staff/{id:id}/sessions/end", staff_sessions_end, methods=["POST"], name="admin_staff_sessions_end"),
    Route("/staff/{id:id}/backups", staff_backup, methods=["POST"], name="admin_staff_backup"),
    Route("/backups/{id:id}/end", backup_end, methods=["POST"], name="admin_backup_end"),
]
