"""Periodic jobs that must run in exactly one process at a time (checkpoint signing,
witness pushes, sweeps, pruning): a lease row per job, taken over when it expires.

A lease row rather than a PostgreSQL advisory lock: it works the same on SQLite, needs no
pinned connection, and survives a reconnect. The holder renews before every run; when it
dies, another process takes the job over within ``ttl`` + one ``interval``. Clocks of the
hosts must agree to well under ``ttl`` (NTP). A run that outlives its lease could overlap
the next holder's first run, so jobs stay idempotent (checkpoint signing also takes the
log's tree lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from outlet.events.models import HubLease
from partners.models import utcnow

log = logging.getLogger("servicepoint.events")

_lease = HubLease.__table__  # type: ignore[attr-defined]


def acquire(engine: Engine, name: str, holder: str, ttl: float) -> bool:
    """Take or renew lease ``name`` for ``ttl`` seconds. True if ``holder`` now has it."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    try:
        with engine.begin() as conn:
            done = conn.execute(update(_lease).where(
                _lease.c.name == name, or_(_lease.c.holder == holder, _lease.c.expires_at < now),
            ).values(holder=holder, expires_at=until))
            if done.rowcount:
                return True
            if conn.execute(select(_lease.c.name).where(_lease.c.name == name)).first() is not None:
                return False
            conn.execute(insert(_lease).values(name=name, holder=holder, expires_at=until))
            return True
    except IntegrityError:  # another process inserted it first
        return False


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up (clean shutdown) so another process takes over at once."""
    with engine.begin() as conn:
        conn.execute(update(_lease).where(_lease.c.name == name, _lease.c.holder == holder)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))


def holder_of(engine: Engine, name: str) -> str | None:
    """The current holder of an unexpired lease ``name``, if any."""
    with engine.connect() as conn:
        row = conn.execute(select(_lease.c.holder, _lease.c.expires_at).where(_lease.c.name == name)).first()
    return row.holder if row is not None and row.expires_at >= utcnow() else None


async def singleton(engine: Engine, holder: str, name: str, interval: float,
                    job: Callable[[], Awaitable[object]], ttl: float | None = None) -> None:
    """Run ``job`` every ``interval`` seconds while this process holds lease ``name``;
    poll for the lease otherwise. Runs until cancelled (then releases the lease)."""
    ttl = ttl if ttl is not None else max(3 * interval, 5.0)
    held = False
    try:
        while True:
            try:
                got = await asyncio.to_thread(acquire, engine, name, holder, ttl)
                if got != held:
                    log.info("%s %s periodic job %s", holder, "took" if got else "lost", name)
                held = got
                if held:
                    await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive; the next round retries
                log.error("periodic job %s: %s: %s", name, exc.__class__.__name__, exc)
            await asyncio.sleep(interval)
    finally:
        if held:
            try:
                await asyncio.shield(asyncio.to_thread(release, engine, name, holder))
            except Exception:  # noqa: BLE001 - the lease just expires instead
                log.debug("releasing lease %s failed", name, exc_info=True)
