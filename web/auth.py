"""Login, logout, the user's own password, and the guards every endpoint uses.

The session cookie (Starlette's signed cookie, also holding the CSRF token) carries only a
random login-session token; :mod:`partners.logins` keeps the session in the database, so
logout, password and role changes end it at once in every process. ``current_user`` resolves
the token on each request (sliding idle timeout, absolute lifetime); an endpoint wrapped in
``requires_roles`` only runs for a live session holding one of the roles. An account whose
password someone else chose is sent to ``/account/password`` until it is changed. Outlet
scoping of the data itself is the job of each query (see outlet/ and partners/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import quote, urlparse

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

import audit
from partners import logins
from partners.accounts import LoginRefused, authenticate, change_password
from partners.errors import InvalidFields
from partners.models import Staff, utcnow
from web import refusals, throttle
from web.db import reader
from web.security import is_write

Endpoint = Callable[[Request], Awaitable[Response]]
PASSWORD_PAGE = "/account/password"


def _idle(conn: HTTPConnection) -> timedelta:
    return timedelta(minutes=conn.app.state.settings.session_idle_minutes)


def current_user(conn: HTTPConnection, *, touch: bool = False) -> Staff | None:
    """The logged-in staff member of a live session, or None. Cached on ``conn.state``
    (with ``conn.state.login``: the :class:`partners.logins.Current`)."""
    if hasattr(conn.state, "user") and not touch:
        return conn.state.user  # type: ignore[no-any-return]
    session_data = conn.scope.get("session") or {}
    token = session_data.get("sid")
    current = None
    if token:
        # read-only, on a bare connection (no ORM session: this runs on every request); the
        # look-up observes the reference-data version, so cached data is as new as the
        # database from here on, and the staff row comes from that cache
        with reader(conn.app.state).connect() as db:
            current, pending = logins.look_up(db, str(token), idle=_idle(conn), touch=touch,
                                              cache=conn.app.state.refdata)
        if pending is not None:  # at most once a minute per session, or the session ended
            with Session(conn.app.state.engine) as wdb, wdb.begin():
                logins.apply(wdb, pending)
        if current is None:
            session_data.pop("sid", None)
    conn.state.login = current
    conn.state.user = current.staff if current else None
    return conn.state.user  # type: ignore[no-any-return]


def _same_site_path(value: str | None) -> str | None:
    if not value:
        return None
    url = urlparse(value)
    path = url.path + (f"?{url.query}" if url.query else "")
    return _safe_next(path)


def _login_redirect(request: Request) -> Response:
    """To the login page, coming back afterwards to the page the user was on (for htmx and
    form posts that is the page, not the endpoint posted to)."""
    back = request.url.path
    if is_write(request):
        back = _same_site_path(request.headers.get("HX-Current-URL") or request.headers.get("referer")) or "/"
    target = "/login?next=" + quote(back)
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def requires_roles(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint: login required; with ``roles``, at least one of them."""

    def decorator(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            user = current_user(request)
            if user is None:
                return _login_redirect(request)
            if user.must_change_password:
                return RedirectResponse(PASSWORD_PAGE, status_code=303)
            if roles and not (user.role_set & set(roles)):
                raise HTTPException(403, "您的岗位无权访问此页面")
            return await endpoint(request)

        wrapper.required_roles = frozenset(roles)  # type: ignore[attr-defined]
        return wrapper

    return decorator


def home_for(user: Staff) -> str:
    """Where a user lands after login, by role."""
    roles = user.role_set
    if user.must_change_password:
        return PASSWORD_PAGE
    if "outlet_lead" in roles:
        return "/cases/outlet"  # the outlet's overview, not a teller's desk
    if roles & {"teller", "block_agent"}:
        return "/cases/"
    if "reviewer" in roles:
        return "/review/"
    if "expert" in roles:
        return "/assist/"
    if "admin" in roles:
        return "/admin/"
    if "security_admin" in roles:
        return "/admin/staff"
    if "auditor" in roles:
        return "/audit/"
    if "partner_manager" in roles:
        return "/figures/"
    return "/"


def _safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def client_summary(request: Request) -> str:
    """Address and browser of a login, shown on the sessions list (no other use)."""
    agent = request.headers.get("user-agent", "")[:120]
    return f"{throttle.client_address(request)} · {agent}"


def _start_session(request: Request, db: Session, user: Staff, *, audited: bool = True) -> None:
    settings = request.app.state.settings
    token = logins.start(db, user, client=client_summary(request),
                         lifetime=timedelta(hours=settings.session_max_hours), audited=audited)
    session_data = request.scope["session"]
    session_data.clear()  # new session on login: no fixation, new CSRF token
    session_data["sid"] = token


async def login_page(request: Request) -> Response:
    templates = request.app.state.templates
    if not is_write(request):
        user = current_user(request)
        if user is not None:
            return RedirectResponse(home_for(user), status_code=303)
        return templates.TemplateResponse(
            request, "login.html", {"username": "", "error": None, "next": request.query_params.get("next", "")}
        )
    form = await request.form()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:256]
    next_url = _safe_next(str(form.get("next", "")))

    def refuse(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return templates.TemplateResponse(
            request, "login.html", {"username": username, "error": message, "next": next_url or ""},
            status_code=status, headers=headers,
        )

    def verify() -> Staff:
        with Session(request.app.state.engine, expire_on_commit=False) as db, db.begin():
            user = authenticate(db, username, password)
            _start_session(request, db, user)
            return user

    def tally(staff_id: int | None, reason: str) -> None:  # 8.1.4.3: failed logins, aggregated
        refusals.record_login_failure(request.app.state.engine, staff_id, reason, username=username,
                                      key=request.app.state.pseudonym_key, address=throttle.client_address(request))

    def throttled_target() -> int | None:
        with Session(reader(request.app.state)) as db:
            return db.exec(select(Staff.id).where(Staff.username == username)).first()

    try:
        await throttle.check(request, "login", username)
        user = await run_in_threadpool(verify)
    except throttle.Throttled as exc:
        await run_in_threadpool(lambda: tally(throttled_target(), "throttled"))
        return refuse(exc.message, 429, {"Retry-After": str(exc.retry_after)})
    except LoginRefused as refused:
        await throttle.record_failure(request, "login", username)
        await run_in_threadpool(tally, refused.staff_id, refused.reason)
        return refuse(refused.message, 401)
    await throttle.record_success(request, "login", username)
    target = PASSWORD_PAGE if user.must_change_password else (next_url or home_for(user))
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    current_user(request)
    login = getattr(request.state, "login", None)
    if login is not None:
        with Session(request.app.state.engine) as db, db.begin():
            if logins.end(db, login.session_id, "logout"):  # 8.1.4.3: a logout is an entry
                staff = login.staff
                assert staff.id is not None
                role = sorted(staff.role_set)[0] if staff.role_set else "none"
                logins.audit_session(db, "security.logout", staff.id, role,
                                     (logins.tag(login.session_id), "ended:logout"), utcnow())
    request.scope["session"].clear()
    return RedirectResponse("/login", status_code=303)


async def session_ping(request: Request) -> Response:
    """``POST /session/ping`` (the expiry warning's "继续工作"): counts as activity.
    204 with ``X-Session-Idle`` (seconds left), or 401 when the session is gone."""
    if current_user(request, touch=True) is None:
        return Response(status_code=401)
    idle = int(request.state.login.idle_left)
    return Response(status_code=204, headers={"X-Session-Idle": str(idle)})


async def password_page(request: Request) -> Response:
    """The user's own password change (forced after a reset or on a new account). The
    current password is checked behind the login's throttle (scope ``login``, the account's
    name as target): a wrong one counts as a failure there and is tallied as a refused
    ``security.password.change`` (reason ``bad_credentials``; ``throttled`` when held back,
    429), like failed logins (:mod:`web.refusals`)."""
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    templates = request.app.state.templates
    forced = user.must_change_password
    if not is_write(request):
        return templates.TemplateResponse(request, "account_password.html", {"forced": forced, "errors": {}})
    form = await request.form()
    current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
    errors: dict[str, str] = {}
    if new != str(form.get("new_password2", "")):
        errors["new_password2"] = "两次输入的新密码不一致"
    role = sorted(user.role_set)[0] if user.role_set else "none"

    def tally(reason: str) -> None:  # 8.1.4.3: a wrong current password is counted like a failed login
        refusals.tally(request.app.state.engine, action="security.password.change", actor_id=user.id or 0,
                       role=role, route=f"staff:{user.id}", reason=reason,
                       client=refusals.client_fields(request.app.state.pseudonym_key, throttle.client_address(request)))

    def save() -> None:
        with Session(request.app.state.engine, expire_on_commit=False) as db, db.begin():
            row = db.get(Staff, user.id)
            assert row is not None
            change_password(db, row, current, new)  # ends every session of the user …
            _start_session(request, db, row, audited=False)  # … this browser continues in a new one
            audit.record(db, {  # 8.1.4.3: a change of one's own credentials is a security event
                "time": utcnow().isoformat(timespec="microseconds") + "Z", "actor": {"id": row.id, "role": role},
                "action": "security.password.change", "outcome": {"result": "done"},
                "state": {"from": f"staff:{row.id}", "to": "password_changed"},
            })

    if not errors:  # the current password is a secret like the login's: same throttle, same key
        try:
            await throttle.check(request, "login", user.username)
            await run_in_threadpool(save)
        except throttle.Throttled as exc:
            await run_in_threadpool(tally, "throttled")
            return templates.TemplateResponse(
                request, "account_password.html", {"forced": forced, "errors": {"current_password": exc.message}},
                status_code=429, headers={"Retry-After": str(exc.retry_after)})
        except InvalidFields as exc:
            errors = exc.errors
            if "current_password" in errors:
                await throttle.record_failure(request, "login", user.username)
                await run_in_threadpool(tally, "bad_credentials")
    if errors:
        return templates.TemplateResponse(
            request, "account_password.html", {"forced": forced, "errors": errors}, status_code=422
        )
    await throttle.record_success(request, "login", user.username)
    user.must_change_password = False
    return RedirectResponse(home_for(user), status_code=303)


async def root(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_for(user), status_code=303)


routes: list[Any] = [
    Route("/", root, name="root"),
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/session/ping", session_ping, methods=["POST"], name="session_ping"),
    Route(PASSWORD_PAGE, password_page, methods=["GET", "POST"], name="account_password"),
]
