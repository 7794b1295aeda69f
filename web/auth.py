"""Login, logout and the guards every endpoint uses.

``current_user`` loads the staff row for the signed session on each request; an endpoint
wrapped in ``requires_roles`` only runs for an active user holding one of the roles.
Outlet scoping of the data itself is the job of each query (see outlet/ and partners/).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from partners.accounts import LoginRefused, authenticate
from partners.models import Staff

Endpoint = Callable[[Request], Awaitable[Response]]


def current_user(request: Request) -> Staff | None:
    """The logged-in staff member, or None. Cached on ``request.state``."""
    if hasattr(request.state, "user"):
        return request.state.user  # type: ignore[no-any-return]
    user: Staff | None = None
    session_data = request.scope.get("session") or {}
    uid = session_data.get("uid")
    login_at = session_data.get("login_at", 0)
    settings = request.app.state.settings
    if uid and time.time() - float(login_at) < settings.session_max_hours * 3600:
        with Session(request.app.state.engine, expire_on_commit=False) as db:
            user = db.get(Staff, uid)
        if user is not None and not user.active:
            user = None
    if user is None and uid:
        session_data.clear()
    request.state.user = user
    return user


def _login_redirect(request: Request) -> Response:
    target = "/login?next=" + quote(request.url.path)
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
            if roles and not (user.role_set & set(roles)):
                raise HTTPException(403, "您的岗位无权访问此页面")
            return await endpoint(request)

        return wrapper

    return decorator


def home_for(user: Staff) -> str:
    """Where a user lands after login, by role."""
    roles = user.role_set
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
    if "auditor" in roles:
        return "/audit/"
    return "/"


def _safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def login_page(request: Request) -> Response:
    templates = request.app.state.templates
    if request.method == "GET":
        user = current_user(request)
        if user is not None:
            return RedirectResponse(home_for(user), status_code=303)
        return templates.TemplateResponse(
            request, "login.html", {"username": "", "error": None, "next": request.query_params.get("next", "")}
        )
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "")))
    try:
        with Session(request.app.state.engine, expire_on_commit=False) as db, db.begin():
            user = authenticate(db, username, password)
    except LoginRefused as refused:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"username": username, "error": refused.message, "next": next_url or ""},
            status_code=401,
        )
    session_data = request.scope["session"]
    session_data.clear()  # new session on login: no fixation
    session_data["uid"] = user.id
    session_data["login_at"] = int(time.time())
    return RedirectResponse(next_url or home_for(user), status_code=303)


async def logout(request: Request) -> Response:
    request.scope["session"].clear()
    return RedirectResponse("/login", status_code=303)


async def root(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_for(user), status_code=303)


routes: list[Any] = [
    Route("/", root, name="root"),
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]

