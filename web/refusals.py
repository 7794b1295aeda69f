"""Refused requests of logged-in staff become audit entries (GB/T 22239-2019 8.1.4.3: 安全审计
covers important security events; the README promises refusals are audited).

Delegated actions refused by ``partners.authorize`` or a domain rule are audited by
``delegated_action`` itself. This module covers the rest: a page or action a role lacks
(403), and records outside the user's scope or guessed ids (404). So that a scanner cannot
flood the log, refusals are tallied per actor × route template × minute (a
:class:`RefusalTally` row, counted in the same transaction as the entry):

- the **first** refusal of each minute is an entry at once (``state.to = "count:1"``) that
  names what was asked for: ``state.from`` is the request with its numeric ids filled in
  (``GET:/admin/staff/17``) and ``case`` the case number of a case route — ids and case
  numbers (or 服务记录 / 上门服务 numbers) only: any other path value (a token, free text that might be personal data) stays
  a ``:name`` placeholder;
- when the minute is over and more than one refusal was counted, :func:`flush` (a periodic
  job of one process) writes the minute's **total**: ``state = {"from": <route template>,
  "to": "total:N"}`` — so the signed log holds the exact count of every burst.

Anonymous requests carry no actor and are not audited (the throttle and the server log
cover them) — except on device pages (kiosk, hall display, 评价器): a refused device token
(none, unknown, revoked, another kind) is tallied like the rest by
:func:`record_device_refusal`, actor ``{"id": <device id>, "role": "device"}`` when the token
names a device, else ``{"id": 0, "role": "anonymous"}``; the token never reaches the entry.

Entry: action ``access.refused``, outcome ``{"result": "refused", "reason": "forbidden" |
"not_found"}``.

Failed logins (:func:`record_login_failure`) go through the same tally, so a burst of wrong
passwords cannot flood the signed log either: action ``security.login``, actor
``{"id": 0, "role": "anonymous"}`` (nobody is authenticated), one tally per account per
reason per minute and **one for all unknown login names together** (so cycling made-up
names adds nothing). ``state.from`` is ``staff:<id>`` or ``account:unknown``; the first
entry of an unknown name carries a keyed tag of it (``account:unknown:<12 hex>``, HMAC with
the pseudonym key) so repeated tries of one name can be told apart without the name — a
mistyped password in the name field never reaches the log. Reasons: ``bad_credentials``,
``inactive`` (right password, deactivated account), ``throttled`` (429, not even checked).
Each first entry names the client (field ``client``: the address's /24 or /48 network and a
keyed tag, never the address, :func:`client_fields`), and the tally counts each network
apart, so a burst from many networks is told apart; the minute's total names none.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Match, Mount

import audit
from outlet import devices
from partners.models import Staff, utcnow

REASONS = {403: "forbidden", 404: "not_found"}
ACTION = "access.refused"
LOGIN_ACTION = "security.login"
ANONYMOUS = "anonymous"  # the actor role of a failed login
# The record a refused request named: a case number (code + date + serial) or a service /
# home-visit number (``FW-`` / ``SM-`` + outlet code + date + serial, outlet/services/records.py).
# Never an ID number (18 characters) nor free text.
CASE_NUMBER = re.compile(r"[0-9A-Z]{20,48}|(?:FW|SM)-[0-9A-Z][0-9A-Z-]{0,38}-[0-9]{12,16}")
log = logging.getLogger("servicepoint")


class RefusalTally(SQLModel, table=True):
    """Refusals of one actor on one route template in one minute (until :func:`flush`)."""

    __tablename__ = "refusal_tally"

    key: str = Field(primary_key=True, max_length=64)  # SHA-256 of action, actor, route, reason, minute
    action: str = Field(default=ACTION, max_length=32)
    actor_id: int
    role: str = Field(max_length=32)
    route: str = Field(max_length=64)
    reason: str = Field(max_length=16)
    minute: NaiveDatetime = Field(index=True)
    count: int = 0


@dataclass(frozen=True)
class Target:
    """What a refused request asked for: its route template, the request with numeric ids
    filled in, and the case or service number of a record route (None otherwise)."""

    route: str
    asked: str
    case: str | None = None


def target_of(request: Request) -> Target:
    """``GET:/cases/:number`` as template; ids (``:id`` convertors) filled in; a case number
    only when it looks like one (never arbitrary text from the URL)."""
    routed = request.scope.get("route")
    scope = request.scope if routed is not None and not isinstance(routed, Mount) else _routed(request)
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return Target(f"{request.method}:unmatched"[:64], f"{request.method}:unmatched"[:64])
    root = scope.get("root_path", "")
    params = scope.get("path_params", {})
    case = None

    def fill(m: re.Match[str]) -> str:
        nonlocal case
        name = m.group(1)
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if name == "number" and isinstance(value, str) and CASE_NUMBER.fullmatch(value):
            case = value
        return ":" + name

    plain = re.sub(r"\{(\w+)(:\w+)?\}", r":\1", root + template)
    asked = re.sub(r"\{(\w+)(:\w+)?\}", fill, root + template)
    route_text = f"{request.method}:{plain}"[:64]
    asked_text = f"{request.method}:{asked}"
    return Target(route_text, asked_text if len(asked_text) <= 64 else route_text, case)


def _routed(request: Request) -> dict[str, Any]:
    """The scope routing would give ``request``, walked from the app's root: for a refusal
    answered before routing (CSRF) or by a mounted app none of whose routes matched (an id
    its convertor refuses, "²"), so every refusal names its real route. Starlette's own
    matching, a full match before a partial one (a method the route lacks, which still names
    the route), as the router does; when nothing under a mount matches, the route whose
    template matches with any value in each ``{param}`` (:func:`_loose`), left unfilled."""
    scope: dict[str, Any] = dict(request.scope)
    scope.update(root_path=scope.get("app_root_path", scope.get("root_path", "")), path_params={})
    scope.pop("route", None)
    routes = list(getattr(getattr(scope.get("app"), "router", None), "routes", []))
    mounted = False
    while routes:
        matches = [(m, r, child) for r in routes for m, child in [r.matches(scope)] if m != Match.NONE]
        if not matches:
            if mounted:
                scope["route"] = _loose(routes, scope)
            break
        _, found, child = next((x for x in matches if x[0] == Match.FULL), matches[0])
        scope.update(child)
        if isinstance(found, Mount):
            routes, mounted = list(found.routes), True
            continue
        scope["route"] = found
        break
    return scope


def _loose(routes: list[Any], scope: dict[str, Any]) -> Any:
    """The first route of ``routes`` whose template matches the rest of the path when each
    ``{param}`` takes any one path segment (None if none does)."""
    path = get_route_path(scope)
    for r in routes:
        template = getattr(r, "path", None)
        if template and not isinstance(r, Mount):
            pattern = re.sub(r"\\\{\w+(?::\w+)?\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path):
                return r
    return None


def route_of(request: Request) -> str:
    """``GET:/cases/:number`` — the route template, never the ids a user typed."""
    return target_of(request).route


def _entry(now: datetime, actor_id: int, role: str, reason: str, state: dict[str, str],
           case: str | None = None, action: str = ACTION, client: dict[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": now.isoformat(timespec="microseconds") + "Z",
        "actor": {"id": actor_id, "role": role}, "action": action,
        "outcome": {"result": "refused", "reason": reason}, "state": state,
    }
    if case:
        entry["case"] = case
    if client:
        entry["client"] = client
    return entry


def client_fields(key: bytes, address: str) -> dict[str, str]:
    """What an audit leaf says of a client address (an IP address is personal data, PIPL):
    its network — IPv4 /24, IPv6 /48 — and a keyed tag (12 hex of HMAC-SHA256 with the
    pseudonym key) that tells repeated tries of one address apart without storing it. A
    peer that is no IP address (a test client) gets the tag only."""
    tag = hmac.new(key, b"client-address\x1f" + address.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return {"tag": tag}
    net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
    return {"net": str(net), "tag": tag}


def tally(engine: Engine, *, action: str, actor_id: int, role: str, route: str, reason: str,
          first: str | None = None, case: str | None = None, at: datetime | None = None,
          client: dict[str, str] | None = None) -> int:
    """Count one refusal of ``action`` in the tally of actor × ``route`` × reason × minute (×
    the client's network when ``client`` is given, :func:`client_fields`); the first of the
    minute is an entry at once (``state.from`` = ``first`` or ``route``, with ``client``),
    the total follows from :func:`flush`. Returns the minute's count so far."""
    now = at or utcnow()
    minute = now.replace(second=0, microsecond=0)
    net = (client or {}).get("net", "")
    key = hashlib.sha256(
        f"refusal\x1f{action}\x1f{actor_id}\x1f{route}\x1f{reason}\x1f{minute.isoformat()}\x1f{net}".encode()
    ).hexdigest()
    with Session(engine) as s, s.begin():
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        s.execute(insert(RefusalTally).values(key=key, action=action, actor_id=actor_id, role=role,
                                              route=route, reason=reason, minute=minute, count=0)
                  .on_conflict_do_nothing(index_elements=["key"]))
        row = s.get(RefusalTally, key, with_for_update=True)
        assert row is not None
        row.count += 1
        s.add(row)
        count = row.count
        if count == 1:
            audit.record(s, _entry(now, actor_id, role, reason, {"from": first or route, "to": "count:1"},
                                   case, action, client))
        return count


def record(engine: Engine, actor: Staff, target: Target | str, status: int, *, at: datetime | None = None) -> int:
    """Count one refused request of a logged-in user (``access.refused``); the first of the
    actor × route × minute is an entry at once. Returns the minute's count so far."""
    if isinstance(target, str):
        target = Target(target, target)
    assert actor.id is not None
    role = sorted(actor.role_set)[0] if actor.role_set else "none"
    return tally(engine, action=ACTION, actor_id=actor.id, role=role, route=target.route,
                 reason=REASONS.get(status, "refused"), first=target.asked, case=target.case, at=at)


def record_device_refusal(request: Request, token: str | None) -> None:
    """Audit a device page refused to ``token`` (403, tallied per actor × route × minute); the
    actor is the device the token names (revoked or of another kind) or anonymous."""
    engine = request.app.state.engine
    device_id = devices.token_owner(engine, token)
    target = target_of(request)
    actor_id, role = (device_id, "device") if device_id is not None else (0, ANONYMOUS)
    try:
        tally(engine, action=ACTION, actor_id=actor_id, role=role, route=target.route, reason=REASONS[403],
              first=target.asked, case=target.case)
    except Exception:  # never turn a refusal into a 500; the server log keeps the cause
        log.exception("could not audit a refused device request")


def unknown_tag(key: bytes, username: str) -> str:
    """``account:unknown:<12 hex>``: a keyed tag of a login name that matches no account
    (HMAC-SHA256 with ``key``), never the name itself."""
    mac = hmac.new(key, b"login-name\x1f" + username.strip().lower().encode("utf-8"), hashlib.sha256)
    return "account:unknown:" + mac.hexdigest()[:12]


def record_login_failure(engine: Engine, staff_id: int | None, reason: str, *, username: str,
                         key: bytes, at: datetime | None = None, address: str | None = None) -> int:
    """Count a failed login on account ``staff_id`` (None: no such account) with ``reason``
    (``bad_credentials``, ``inactive``, ``throttled``) from client ``address`` (as the
    trusted-proxy logic resolves it; recorded as :func:`client_fields`); see the module
    docstring."""
    if staff_id is None:
        route, first = "account:unknown", unknown_tag(key, username)
    else:
        route = first = f"staff:{staff_id}"
    return tally(engine, action=LOGIN_ACTION, actor_id=0, role=ANONYMOUS, route=route, reason=reason,
                 first=first, at=at, client=client_fields(key, address) if address else None)


def flush(engine: Engine, *, at: datetime | None = None) -> int:
    """Write the total of every finished minute that counted more than one refusal, and
    forget finished minutes. Returns the number of total entries written."""
    now = at or utcnow()
    this_minute = now.replace(second=0, microsecond=0)
    written = 0
    with Session(engine) as s, s.begin():
        rows = s.exec(select(RefusalTally).where(col(RefusalTally.minute) < this_minute)
                      .order_by(col(RefusalTally.minute), col(RefusalTally.key)).with_for_update()).all()
        for row in rows:
            if row.count > 1:
                audit.record(s, _entry(now, row.actor_id, row.role, row.reason,
                                       {"from": row.route, "to": f"total:{row.count}"}, action=row.action))
                written += 1
            s.delete(row)
    return written


def record_refusal(request: Request, status: int) -> None:
    """Audit a 403/404 answered to a logged-in user (rate-limited as described above).
    Synchronous like the session lookup: one short transaction, only on refusals."""
    if status not in REASONS or "session" not in request.scope:
        return
    from web.auth import current_user  # the login is resolved even for unmatched paths

    try:
        user = current_user(request)
        if user is None:
            return
        record(request.app.state.engine, user, target_of(request), status)
    except Exception:  # never turn a refusal into a 500; the server log keeps the cause
        log.exception("could not audit a refused request")
