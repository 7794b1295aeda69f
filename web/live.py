"""Live connections end with the login (or the device pairing) behind them.

A WebSocket outlives the request that opened it, so checking the session once at the
handshake is not enough: after logout, a password change or reset, a role change,
deactivation or an end by the security admin, every socket of that login must close — in
every app process. Two mechanisms, each enough on its own for correctness, together fast:

1. **Push.** :mod:`partners.logins` notes every ended session on the SQLAlchemy session
   (``session.info``); :func:`install` publishes them as a ``session.ended`` hub event from
   the flush that ends them, in the same transaction (so the event exists if and only if the end commits), and the hub
   delivers it to every process (in-process wake on SQLite, NOTIFY on PostgreSQL, the slow
   poll for the CLI). Revoking a device publishes ``device.revoked`` the same way.
2. **Re-check.** Every socket re-checks its login on each message it receives and every
   ``live_recheck_seconds`` (default 30 s) — this also ends sockets whose session simply
   expired (idle timeout, absolute lifetime), which produces no event.

A socket whose login ended is closed with code 4401 and a Chinese reason. Feeds (expert
queue, request updates, counter panels) do not count as user activity, so an open page does
not keep a session alive for ever; an active call does (its signaling moves the idle clock
like a request, at most once a minute). GB/T 22239-2019 8.1.4.1 d (登录连接超时自动退出)
and 8.1.4.2 (访问控制).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session
from starlette.websockets import WebSocket

from outlet.events import Event, Hub
from partners import logins
from web.db import reader

SESSION_TOPIC = "session.ended"
DEVICE_TOPIC = "device.revoked"
CLOSE_SESSION_ENDED = 4401
SESSION_ENDED_REASON = "登录已结束，请重新登录"
DEVICE_REVOKED_REASON = "该终端已停用或取消配对"
MAX_IDS = 100  # more ended sessions of one user in one transaction: the event says "all"


class LiveEnded(Exception):
    """Raised inside a socket's loop when its login (or device) is no longer valid."""


def install(hub: Hub) -> Callable[[], None]:
    """Publish ended login sessions of ``hub.engine``'s transactions as ``session.ended``
    events (payload ``{"staff": id, "sessions": [stored ids] | None}``, None = all of that
    user's sessions). Returns the function that removes the hook (the lifespan calls it)."""
    engine = hub.engine

    def after_flush(session: OrmSession, _context: Any) -> None:
        # At the flush that ends the sessions, not at commit: the hub's lock is then taken
        # before the audit log's (as queue steps do), so two such transactions on PostgreSQL
        # never wait for each other's second lock.
        if logins.ENDED_KEY not in session.info:
            return  # the common case costs one dict look-up
        bind = session.get_bind()  # the engine, or a group-commit batch's connection
        if getattr(bind, "engine", bind) is not engine:
            return
        ended: dict[int, list[str]] | None = session.info.pop(logins.ENDED_KEY, None)
        for staff_id, ids in (ended or {}).items():
            unique = sorted(set(ids))
            hub.publish_in(session, SESSION_TOPIC,
                           {"staff": staff_id, "sessions": unique if len(unique) <= MAX_IDS else None})

    event.listen(OrmSession, "after_flush", after_flush)
    return lambda: event.remove(OrmSession, "after_flush", after_flush)


def _login_alive(state: Any, session_id: str, idle: timedelta, slide: bool) -> bool:
    """Read on the read-only engine; write (at most once a minute) only for a sliding call."""
    with Session(reader(state)) as db:
        if not slide:
            return logins.is_live(db, session_id, idle=idle)
        current, pending = logins.look_up_id(db, session_id, idle=idle)
    if pending is not None:  # an active call is activity: moves last_seen like a request would
        with Session(state.engine) as db, db.begin():
            logins.apply(db, pending)
    return current is not None


class Watch:
    """What keeps one socket honest: ``check()`` (a database look-up, run in a thread) and
    ``hit(event)`` (does a hub event end this socket?). Build one with :func:`login_watch`
    or :func:`device_watch`."""

    def __init__(self, ws: WebSocket, topic: str, check: Callable[[], bool], hit: Callable[[Event], bool],
                 reason: str) -> None:
        self.ws = ws
        self.topic = topic
        self._check = check
        self.hit = hit
        self.reason = reason
        self.every = float(ws.app.state.settings.live_recheck_seconds)

    async def check(self) -> None:
        """Raise :class:`LiveEnded` unless the login/device is still valid."""
        if not await asyncio.to_thread(self._check):
            raise LiveEnded(self.reason)

    async def watch(self) -> None:
        """Return when the login/device ends: a matching hub event, or a failed re-check
        (right after subscribing, then every ``every`` seconds)."""
        hub: Hub = self.ws.app.state.hub
        sub = hub.subscribe(self.topic)
        try:
            await self.check()  # an end committed between the handshake and the subscription
            it = aiter(sub)
            while True:
                try:
                    async with asyncio.timeout(self.every):
                        ev = await anext(it)
                    if self.hit(ev):
                        return
                except TimeoutError:
                    await self.check()
        except LiveEnded:
            return
        except StopAsyncIteration:  # the hub closed (shutdown): the server closes sockets anyway
            await asyncio.Event().wait()
        finally:
            sub.close()


def login_watch(ws: WebSocket, *, slide: bool = False) -> Watch:
    """The watch of a staff socket; ``current_user(ws)`` must have been resolved."""
    login: logins.Current = ws.state.login
    staff_id, session_id = login.staff.id, login.session_id
    state = ws.app.state
    idle = timedelta(minutes=ws.app.state.settings.session_idle_minutes)

    def hit(ev: Event) -> bool:
        p = ev.payload
        return bool(p.get("staff") == staff_id and (p.get("sessions") is None or session_id in p["sessions"]))

    return Watch(ws, SESSION_TOPIC, lambda: _login_alive(state, session_id, idle, slide), hit,
                 SESSION_ENDED_REASON)


def device_watch(ws: WebSocket, device_id: int, check: Callable[[], bool]) -> Watch:
    """The watch of a paired device's socket (``check`` re-resolves its token)."""
    return Watch(ws, DEVICE_TOPIC, check, lambda ev: ev.payload.get("device") == device_id, DEVICE_REVOKED_REASON)


async def guarded(ws: WebSocket, watch: Watch, body: Awaitable[None],
                  on_end: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Run ``body`` (the socket's loop) until it returns, or until the login/device ends —
    then cancel it (its ``finally`` blocks run), call ``on_end`` and close the socket with
    4401. ``body`` may also raise :class:`LiveEnded` (its per-message check)."""
    body_task = asyncio.ensure_future(body)
    watch_task = asyncio.ensure_future(watch.watch())
    failure: BaseException | None = None
    try:
        await asyncio.wait([body_task, watch_task], return_when=asyncio.FIRST_COMPLETED)
        ended = not body_task.done()
        if body_task.done() and not body_task.cancelled() and (failure := body_task.exception()) is not None:
            ended = isinstance(failure, LiveEnded)
    finally:
        for task in (body_task, watch_task):
            task.cancel()
        for task in (body_task, watch_task):
            with contextlib.suppress(BaseException):
                await task
    if failure is not None and not ended:
        raise failure
    if ended:
        if on_end is not None:
            await on_end()
        with contextlib.suppress(Exception):  # the client may be gone already
            await ws.close(code=CLOSE_SESSION_ENDED, reason=watch.reason)
