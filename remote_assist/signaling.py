"""Signaling for calls of two and the live feed (queue, request status), over the event hub.

Each process holds only its own WebSocket peers; everything between them travels as events
(``outlet.events``), so the two participants of a call, or an expert and the teller whose
request they accept, may be connected to different app processes. Events of one call share
the topic ``assist.call.<id>`` and arrive in commit order, so signaling stays in order.

A ``Peer`` is anything with ``send(dict)`` and ``close(code, reason)`` (the web layer adapts
Starlette WebSockets).

Close codes (4000–4999 are the application's):
4401 not logged in · 4403 not a participant · 4404 no such session · 4409 replaced by a
newer connection of the same participant · 4410 session ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from outlet.events import Event, Hub, Subscription

log = logging.getLogger("servicepoint.assist")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_REPLACED = 4409
CLOSE_ENDED = 4410

# Messages a participant may send to the other one (relayed verbatim, sender added).
RELAYED = frozenset({"offer", "answer", "ice", "chat", "restart-request", "mute", "camera", "screen"})
MAX_MESSAGE = 64 * 1024
CALL_TOPIC = "assist.call."
QUEUE_TOPIC = "assist.queue"
USER_TOPIC = "assist.user."
EXPERTS = "assist.experts"  # presence channel of experts on the live feed


class Peer(Protocol):
    async def send(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


async def _safe_send(peer: Peer, message: dict[str, Any]) -> bool:
    try:
        await peer.send(message)
        return True
    except Exception:  # noqa: BLE001 - a peer gone mid-send is cleaned up by its own reader
        return False


async def _pump(sub: Subscription, handle: Callable[[Event], Awaitable[None]]) -> None:
    """Feed a subscription to ``handle`` until cancelled; resubscribe if it fell behind."""
    while True:
        try:
            async for ev in sub:
                try:
                    await handle(ev)
                except Exception:
                    log.exception("handling event %s failed", ev.topic)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # SubscriptionLost: continue live, clients resync on their own
            log.warning("event subscription lost (%s); resubscribing", exc)
            sub = sub.hub.subscribe(*sub.patterns)


@dataclass
class _Member:
    peer: Peer
    conn: str
    token: int | None = None  # presence row
    then: tuple[dict[str, Any], ...] = ()  # sent right after the welcome
    ready: bool = False  # welcomed: its join event came back through the hub


class CallHub:
    """Participants of calls connected to this process, keyed by session id and role
    ("teller" / "expert"), and the protocol between them over the hub.

    ``on_end(session_id)`` runs in every process when a call ends (before the sockets are
    told), so a recorder of that call, wherever it runs, is finalized first."""

    def __init__(self, hub: Hub, on_end: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.hub = hub
        self.on_end = on_end
        self.rooms: dict[int, dict[str, _Member]] = {}
        self._current: dict[tuple[int, str], str] = {}  # (sid, role) → conn of the last join
        self._replaced: dict[Peer, _Member] = {}  # closed as replaced, reader not yet gone
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(_pump(self.hub.subscribe(CALL_TOPIC + "*"), self._handle))

    def present(self, session_id: int) -> set[str]:
        """Roles connected to the call, on any process (blocking)."""
        return {m for _c, m in self.hub.presence.members(f"{CALL_TOPIC}{session_id}")}

    def connected_sessions(self) -> set[int]:
        """Calls with at least one participant connected to any process (blocking)."""
        return {int(c.rsplit(".", 1)[1]) for c, _m in self.hub.presence.members(prefix=CALL_TOPIC)}

    def _publish(self, session_id: int, payload: dict[str, Any]) -> Awaitable[int]:
        return self.hub.apublish(f"{CALL_TOPIC}{session_id}", payload)

    async def join(self, session_id: int, role: str, peer: Peer, then: tuple[dict[str, Any], ...] = ()) -> bool:
        """Register ``peer``. Its ``welcome`` (then the ``then`` messages; and the other side's
        ``peer-joined``) follow when the join event comes back in order; a previous
        connection of the same role, on any process (reload, second tab), is closed. True
        when both are now present."""
        member = _Member(peer, uuid.uuid4().hex, then=then)
        room = self.rooms.setdefault(session_id, {})
        old = room.get(role)
        room[role] = member
        if old is not None:
            self._replaced[old.peer] = old
            await _close(old.peer, CLOSE_REPLACED, "已在其他页面重新加入")
        channel, other = f"{CALL_TOPIC}{session_id}", _other(role)

        def record() -> tuple[int, bool]:
            # One transaction under the hub's publish lock: of two participants joining at
            # once on two processes, exactly one sees the other (as one process would).
            with Session(self.hub.engine) as s, s.begin():
                self.hub.serialize(s)
                both = (channel, other) in self.hub.presence.members_in(s, channel)
                token = self.hub.presence.join_in(s, channel, role)
                self.hub.publish_in(s, channel, {"kind": "join", "role": role, "conn": member.conn,
                                                 "peer_present": both})
                return token, both

        member.token, both = await asyncio.to_thread(record)
        return both

    async def leave(self, session_id: int, role: str, peer: Peer) -> None:
        room = self.rooms.get(session_id, {})
        member = room.get(role)
        if member is not None and member.peer is peer:
            del room[role]
            if not room:
                self.rooms.pop(session_id, None)
            announce = True
        else:  # already replaced by a newer connection: nothing to tell the other side
            member, announce = self._replaced.pop(peer, None), False
        if member is None:
            return
        channel, token = f"{CALL_TOPIC}{session_id}", member.token

        def record() -> None:
            with Session(self.hub.engine) as s, s.begin():
                if token is not None:
                    self.hub.presence.leave_in(s, token)
                if announce:
                    self.hub.publish_in(s, channel, {"kind": "leave", "role": role, "conn": member.conn})

        await asyncio.to_thread(record)

    async def relay(self, session_id: int, role: str, message: dict[str, Any]) -> bool:
        """Forward an allowed message to the other participant. False if not allowed."""
        if message.get("type") not in RELAYED:
            return False
        await self._publish(session_id, {"kind": "msg", "to": _other(role), "msg": {**message, "from": role}})
        return True

    async def broadcast(self, session_id: int, message: dict[str, Any]) -> None:
        """Send ``message`` to both participants, wherever they are connected."""
        await self._publish(session_id, {"kind": "msg", "to": None, "msg": message})

    async def end(self, session_id: int, message: dict[str, Any], reason: str = "通话已结束") -> None:
        """Tell both sides the call is over and close their connections (every process)."""
        await self._publish(session_id, {"kind": "end", "msg": message, "reason": reason})

    async def _handle(self, ev: Event) -> None:
        sid = int(ev.topic.rsplit(".", 1)[1])
        p = ev.payload
        room = self.rooms.get(sid, {})
        kind = p.get("kind")
        if kind == "join":
            role, conn = str(p["role"]), str(p["conn"])
            self._current[(sid, role)] = conn
            mine = room.get(role)
            if mine is not None and mine.conn == conn:
                mine.ready = True
                await _safe_send(mine.peer, {"type": "welcome", "role": role,
                                             "peer_present": bool(p.get("peer_present"))})
                for message in mine.then:
                    await _safe_send(mine.peer, message)
            elif mine is not None and mine.ready:  # a newer connection of this participant
                # elsewhere (a member not yet welcomed is newer than any join before its own)
                del room[role]
                self._replaced[mine.peer] = mine
                await _close(mine.peer, CLOSE_REPLACED, "已在其他页面重新加入")
            other = room.get(_other(role))
            if p.get("peer_present") and other is not None and other.ready:
                await _safe_send(other.peer, {"type": "peer-joined", "role": role})
        elif kind == "leave":
            role = str(p["role"])
            if self._current.get((sid, role), p["conn"]) != p["conn"]:
                return  # an old connection that a newer one already replaced
            self._current.pop((sid, role), None)
            other = room.get(_other(role))
            if other is not None and other.ready:
                await _safe_send(other.peer, {"type": "peer-left", "role": role})
        elif kind == "msg":
            for role, member in list(room.items()):
                if p.get("to") in (None, role) and member.ready:
                    await _safe_send(member.peer, p["msg"])
        elif kind == "end":
            if self.on_end is not None:
                await self.on_end(sid)
            self.rooms.pop(sid, None)
            for key in [k for k in self._current if k[0] == sid]:
                del self._current[key]
            for member in room.values():
                await _safe_send(member.peer, p["msg"])
                await _close(member.peer, CLOSE_ENDED, str(p.get("reason") or "通话已结束"))
        if not room:
            self.rooms.pop(sid, None)

    async def close(self) -> None:
        """Shutdown of this process: tell its own peers, stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        rooms, self.rooms = self.rooms, {}
        for room in rooms.values():
            for member in room.values():
                await _safe_send(member.peer, {"type": "server-shutdown"})
                await _close(member.peer, CLOSE_ENDED, "服务正在重启，请稍后刷新页面")


class EventHub:
    """Live feed per logged-in user: experts get queue changes of their domain, outlet
    staff get updates of their outlet's requests. No polling: the server pushes, from
    whichever process the change happened in."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # peer → (user id, outlet id or None, expert domain or "*" for all, is expert)
        self.peers: dict[Peer, tuple[int, int | None, str | None, bool]] = {}
        self._tokens: dict[Peer, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            sub = self.hub.subscribe(QUEUE_TOPIC, USER_TOPIC + "*")
            self._task = asyncio.create_task(_pump(sub, self._handle))

    async def add(self, peer: Peer, user_id: int, outlet_id: int | None, domain: str | None,
                  is_expert: bool) -> None:
        self.peers[peer] = (user_id, outlet_id, (domain or "*") if is_expert else None, is_expert)
        if is_expert:
            member = f"{user_id}:{domain or '*'}"
            self._tokens[peer] = await asyncio.to_thread(self.hub.presence.join, EXPERTS, member)

    async def remove(self, peer: Peer) -> None:
        self.peers.pop(peer, None)
        token = self._tokens.pop(peer, None)
        if token is not None:
            await asyncio.to_thread(self.hub.presence.leave, token)

    def experts_online(self, domain: str) -> int:
        """Experts of ``domain`` (or of every domain) on the live feed, any process (blocking)."""
        users = set()
        for _c, member in self.hub.presence.members(EXPERTS):
            uid, _sep, d = member.partition(":")
            if d in ("*", domain):
                users.add(uid)
        return len(users)

    def queue_changed_in(self, db: Session, domains: set[str] | None = None) -> None:
        """Inside the change's transaction: experts of ``domains`` (all when None) and every
        outlet refresh their queue views once it commits."""
        self.hub.publish_in(db, QUEUE_TOPIC, {"domains": sorted(domains) if domains else None})

    async def queue_changed(self, domains: set[str] | None = None) -> None:
        await self.hub.apublish(QUEUE_TOPIC, {"domains": sorted(domains) if domains else None})

    async def to_user(self, user_id: int, message: dict[str, Any]) -> None:
        await self.hub.apublish(f"{USER_TOPIC}{user_id}", message)

    async def _handle(self, ev: Event) -> None:
        if ev.topic == QUEUE_TOPIC:
            domains = ev.payload.get("domains")
            message = {"type": "queue", "domains": domains}
            for peer, (_uid, _outlet, d, expert) in list(self.peers.items()):
                if expert and domains is not None and d != "*" and d not in domains:
                    continue
                await _safe_send(peer, message)
        else:
            uid = int(ev.topic.rsplit(".", 1)[1])
            for peer, (peer_uid, *_rest) in list(self.peers.items()):
                if peer_uid == uid:
                    await _safe_send(peer, ev.payload)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for peer in list(self.peers):
            await _close(peer, 1001, "服务正在重启")
        self.peers.clear()
        self._tokens.clear()


def _other(role: str) -> str:
    return "expert" if role == "teller" else "teller"


async def _close(peer: Peer, code: int, reason: str) -> None:
    try:
        await peer.close(code, reason)
    except Exception:
        log.debug("closing a peer that is already gone", exc_info=True)
