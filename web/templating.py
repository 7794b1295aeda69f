"""Jinja2 environment: filters and per-request context shared by every template."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from partners.models import ROLE_LABELS
from partners.numbers import ascii_digits
from web.security import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
HTMX_VERSION = "2.0.8"


def local_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a naive-UTC database timestamp in Beijing time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ).strftime(fmt)


def local_date(value: date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def case_no_parts(number: str) -> tuple[str, str]:
    """Split a case number (implementation code + YYYYMMDD + serial of 4–6 digits,
    outlet/cases.py) into ``(code, day + serial)`` for the compact display: the shortest
    serial whose 8 digits before it read as a date of this century (two widths can never
    both start with "20"). Anything else: ``(number, "")``."""
    for width in range(4, 7):
        cut = len(number) - width - 8
        day, serial = number[cut:cut + 8], number[cut + 8:]
        if cut <= 0 or not (ascii_digits(day) and ascii_digits(serial)) or not day.startswith("20"):
            continue
        try:
            date(int(day[:4]), int(day[4:6]), int(day[6:]))  # strptime cost more than the row
        except ValueError:
            continue
        return number[:cut], number[cut:]
    return number, ""


def _request_context(request: Request) -> dict[str, Any]:
    session = request.scope.get("session")
    token = csrf_token(session) if session is not None else ""
    user = getattr(request.state, "user", None)
    login = getattr(request.state, "login", None)
    roles: frozenset[str] = user.role_set if user else frozenset()
    session_info = None
    if user is not None and login is not None:
        idle = request.app.state.settings.session_idle_minutes * 60
        session_info = {"idle": idle, "left": int(login.expires_in)}
    return {
        "session_info": session_info,
        "csrf_token": token,
        "csrf_field": Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">'),
        "hx_headers": Markup(escape(json.dumps({"X-CSRF-Token": token}))),
        "user": user,
        "user_roles": sorted(roles),
        "has_role": lambda *wanted: not roles.isdisjoint(wanted),  # base.html asks ~16 times
        "role_labels": ROLE_LABELS,
        "htmx_version": HTMX_VERSION,
        "is_htmx": request.headers.get("HX-Request") == "true",
    }


def make_templates(static_url: Callable[[str], str] | None = None) -> Jinja2Templates:
    """The app's Jinja2 environment. ``static_url``: maps a path under web/static to its
    versioned URL (web/static_assets.py); templates call it as ``static('css/app.css')``."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_request_context])
    env = templates.env
    env.globals["static"] = static_url or (lambda path: f"/static/{path}")
    env.filters["local_dt"] = local_dt
    env.filters["local_date"] = local_date
    env.filters["case_no_parts"] = case_no_parts
    env.globals["role_labels"] = ROLE_LABELS
    env.auto_reload = False  # templates ship with the code: no stat() per render
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates
