"""Refused requests of logged-in staff become audit entries (GB/T 22239-2019 8.1.4.3: 安全审计
covers important security events; the README promises refusals are audited).

Delegated actions refused by ``partners.authorize`` or a domain rule are audited by
``delegated_action`` itself. This module covers the rest: a page or action a role lacks
(403), and records outside the user's scope or guessed ids (404). So that a scanner cannot
flood the log, refusals are counted per actor × route × minute (a :class:`ThrottleCounter`
row under a hashed key, in the same transaction) and an entry is written only when that
count reaches 1, 10, 100, 1000 …: the first refusal of each minute is always in the signed
log, and the entry's ``state.to`` (``count:10``) says how far a burst went. Anonymous
requests carry no actor and are not audited (the throttle and the server log cover them).

Entry: action ``access.refused``, outcome ``{"result": "refused", "reason": "forbidden" |
"not_found"}``, ``state`` = ``{"from": "GET:/cases/:number", "to": "count:1"}``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import Request

import audit
from partners.models import Staff, utcnow
from web.throttle import ThrottleCounter

REASONS = {403: "forbidden", 404: "not_found"}
log = logging.getLogger("servicepoint")


def route_of(request: Request) -> str:
    """``GET:/cases/:number`` — the route template, never the ids a user typed."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    path = (request.scope.get("root_path", "") + template) if template else "unmatched"
    path = re.sub(r"\{(\w+)(:\w+)?\}", r":\1", path)
    return f"{request.method}:{path}"[:64]


def record(engine: Engine, actor: Staff, route: str, status: int, *, at: datetime | None = None) -> int:
    """Count one refusal; write the audit entry when the minute's count is 1, 10, 100 …
    Returns the minute's count so far."""
    now = at or utcnow()
    minute = now.replace(second=0, microsecond=0)
    assert actor.id is not None
    key = hashlib.sha256(f"refusal\x1f{actor.id}\x1f{route}\x1f{minute.isoformat()}".encode()).hexdigest()
    with Session(engine) as s, s.begin():
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        s.execute(insert(ThrottleCounter).values(key=key, failures=0, last_failure=now)
                  .on_conflict_do_nothing(index_elements=["key"]))
        row = s.get(ThrottleCounter, key, with_for_update=True)
        assert row is not None
        row.failures += 1
        row.last_failure = now
        s.add(row)
        count = row.failures
        if str(count).strip("0") == "1":  # 1, 10, 100, …
            role = sorted(actor.role_set)[0] if actor.role_set else "none"
            audit.record(s, {
                "time": now.isoformat(timespec="microseconds") + "Z",
                "actor": {"id": actor.id, "role": role}, "action": "access.refused",
                "outcome": {"result": "refused", "reason": REASONS.get(status, "refused")},
                "state": {"from": route, "to": f"count:{count}"},
            })
        return count


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
        record(request.app.state.engine, user, route_of(request), status)
    except Exception:  # never turn a refusal into a 500; the server log keeps the cause
        log.exception("could not audit a refused request")
