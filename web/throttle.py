"""Throttling of guessable secrets (passwords, check codes, rating and booking codes).

Growing delays instead of hard lockouts, stored in the database so every app process sees
the same counters (SQLite and PostgreSQL). API, for any endpoint that takes a secret::

    from web import throttle

    await throttle.check(request, "login", username)   # raises throttle.Throttled (429)
    ...verify the secret...
    await throttle.record_failure(request, "login", username)   # on a wrong secret
    await throttle.record_success(request, "login", username)   # on a right one

``scope`` names the form (``"login"``, ``"status"``, ``"rating"``, ``"booking"`` …);
``target`` is what is being guessed (login name, case number, booking code). Call ``check``
*before* looking the target up and ``record_failure`` whether or not the target exists:
counters are keyed by the target *string*, so existing and unknown targets behave alike
and the answer reveals nothing. :class:`Throttled` carries ``retry_after`` (seconds); the
app's error handler turns it into 429 with ``Retry-After``, or catch it to re-render a form.

Each attempt is counted under three keys, each with its own :class:`Rule`:

* ``addr`` — the client address (:func:`client_address`; forwarded-for only from
  ``SERVICEPOINT_TRUSTED_PROXIES``): one address guessing across many targets;
* ``pair`` — target × address: one client guessing one target;
* ``target`` — the target from any address: a distributed guess. Its delay is short and
  capped, and it holds back only addresses with recent failures: from a clean address the
  secret is checked at once (:func:`wait_seconds`), so strangers failing on a target from
  ever new addresses never keep its holder out, while each of their addresses gets one
  guess before it is slowed down.

After ``free`` failures, failure *n* makes the key wait ``min(cap, base · 2^(n-free-1))``
seconds; a key forgets its failures ``reset`` seconds after its last one. Keys are stored
as SHA-256 hashes: no login names or addresses at rest. Throttled attempts are not
counted (they never reach the secret). OWASP Authentication Cheat Sheet, "Protect Against
Automated Attacks"; GB/T 22239-2019 8.1.4.1 b (登录失败处理).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import NaiveDatetime
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from partners.models import utcnow
from web.settings import IPNetwork


class ThrottleCounter(SQLModel, table=True):
    """Failures under one hashed key (see module docstring)."""

    __tablename__ = "throttle_counter"

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failure: NaiveDatetime = Field(default_factory=utcnow, index=True)
    not_before: NaiveDatetime | None = None


@dataclass(frozen=True)
class Rule:
    """``free`` failures, then delays of ``base·2^k`` seconds capped at ``cap``; forgotten
    ``reset`` seconds after the last failure."""

    free: int
    base: float
    cap: float
    reset: float = 3600.0

    def delay(self, failures: int) -> float:
        over = failures - self.free
        return 0.0 if over <= 0 else min(self.cap, self.base * 2 ** (over - 1))


@dataclass(frozen=True)
class Policy:
    addr: Rule = Rule(free=10, base=2, cap=900)
    pair: Rule = Rule(free=3, base=2, cap=300)
    target: Rule = Rule(free=20, base=1, cap=60)


#: Per-scope policies; scopes not listed use ``Policy()``. Other modules may add theirs.
POLICIES: dict[str, Policy] = {
    "login": Policy(),
    "status": Policy(pair=Rule(free=5, base=2, cap=300)),
    "rating": Policy(pair=Rule(free=5, base=2, cap=300)),
}


class Throttled(Exception):
    """Too many recent failures: try again in ``retry_after`` seconds (HTTP 429)."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        self.message = f"尝试次数过多，请 {self.retry_after} 秒后再试"
        super().__init__(self.message)


# --- the client address -------------------------------------------------------------------
def _trusted(host: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def client_address(request: Request) -> str:
    """The client's address. ``X-Forwarded-For`` is believed only when the peer is a
    trusted proxy; then the right-most entry that is not itself a trusted proxy wins
    (entries to its left are client-supplied and may be forged)."""
    peer = request.client.host if request.client else "unknown"
    networks = request.app.state.settings.trusted_proxy_networks
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


# --- the counters -------------------------------------------------------------------------
def _keys(scope: str, target: str, address: str) -> dict[str, str]:
    def h(*parts: str) -> str:
        return hashlib.sha256("\x1f".join((scope, *parts)).encode()).hexdigest()

    target = target.strip().lower()[:200]
    return {"addr": h("addr", address), "pair": h("pair", target, address), "target": h("target", target)}


def wait_seconds(engine: Engine, scope: str, target: str, address: str, *, at: datetime | None = None) -> int:
    """Seconds the caller must still wait before the secret is checked (0: go ahead).
    Synchronous core of :func:`check`.

    The ``target`` delay applies only to an address with recent failures (any target,
    within the ``addr`` rule's ``reset``): a clean address has its secret checked at the
    usual cost, so a right one gets in however many strangers failed on the target, and a
    wrong one makes the address unclean — the next guess from it waits. The ``addr`` and
    ``pair`` delays always apply."""
    now = at or utcnow()
    keys = _keys(scope, target, address)
    policy = POLICIES.get(scope, Policy())
    with Session(engine, expire_on_commit=False) as s, s.begin():
        rows = s.exec(select(ThrottleCounter).where(col(ThrottleCounter.key).in_(keys.values()))).all()
    by_key = {r.key: r for r in rows}
    addr = by_key.get(keys["addr"])
    clean = addr is None or addr.failures == 0 or (now - addr.last_failure).total_seconds() > policy.addr.reset
    applies = [kind for kind in ("addr", "pair", "target") if kind != "target" or not clean]
    until = [r.not_before for kind in applies if (r := by_key.get(keys[kind])) is not None]
    waits = [(t - now).total_seconds() for t in until if t is not None and t > now]
    return math.ceil(max(waits)) if waits else 0


def add_failure(engine: Engine, scope: str, target: str, address: str, *, at: datetime | None = None) -> None:
    """Count one failure under the three keys. Synchronous core of :func:`record_failure`."""
    now = at or utcnow()
    policy = POLICIES.get(scope, Policy())
    keys = _keys(scope, target, address)
    with Session(engine) as s, s.begin():
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for key in keys.values():
            s.execute(
                insert(ThrottleCounter)
                .values(key=key, failures=0, last_failure=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
        rows = s.exec(
            select(ThrottleCounter).where(col(ThrottleCounter.key).in_(keys.values())).with_for_update()
        ).all()
        by_key = {r.key: r for r in rows}
        for kind, key in keys.items():
            row, rule = by_key[key], getattr(policy, kind)
            if (now - row.last_failure).total_seconds() > rule.reset:
                row.failures = 0
            row.failures += 1
            row.last_failure = now
            wait = rule.delay(row.failures)
            row.not_before = now + timedelta(seconds=wait) if wait else None
            s.add(row)
        # keep the table small: forget keys idle for a day
        s.execute(delete(ThrottleCounter).where(col(ThrottleCounter.last_failure) < now - timedelta(days=1)))


def clear(engine: Engine, scope: str, target: str, address: str) -> None:
    """Forget the target's failures (``pair`` and ``target``; the address keeps its count,
    or one valid account would let an address guess at others without delay)."""
    keys = _keys(scope, target, address)
    with Session(engine) as s, s.begin():
        s.execute(delete(ThrottleCounter).where(col(ThrottleCounter.key).in_([keys["pair"], keys["target"]])))


async def check(request: Request, scope: str, target: str) -> None:
    """Raise :class:`Throttled` when ``target`` (or this client) must wait."""
    wait = await run_in_threadpool(
        wait_seconds, request.app.state.engine, scope, target, client_address(request)
    )
    if wait > 0:
        raise Throttled(wait)


async def record_failure(request: Request, scope: str, target: str) -> None:
    """Count a wrong secret for ``target`` from this client."""
    await run_in_threadpool(add_failure, request.app.state.engine, scope, target, client_address(request))


async def record_success(request: Request, scope: str, target: str) -> None:
    """A right secret: forget ``target``'s failures."""
    await run_in_threadpool(clear, request.app.state.engine, scope, target, client_address(request))
