"""In-process signaling: call rooms of two and the live event feed (queue, request status).

Transport-neutral: a ``Peer`` is anything with ``send(dict)`` and ``close(code, reason)``
(the web layer adapts Starlette WebSockets). One process holds the rooms; several workers
would fan out through PostgreSQL LISTEN/NOTIFY (see docs/video.md).

Close codes (4000–4999 are the application's):
4401 not logged in · 4403 not a participant · 4404 no such session · 4409 replaced by a
newer connection of the same participant · 4410 session ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("servicepoint.assist")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_REPLACED = 4409
CLOSE_ENDED = 4410

# Messages a participant may send to the other one (relayed verbatim, sender added).
RELAYED = frozenset({"offer", "answer", "ice", "chat", "restart-request", "mute", "camera", "screen"})
MAX_MESSAGE = 64 * 1024


class Peer(Protocol):
    async def send(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


async def _safe_send(peer: Peer, message: dict[str, Any]) -> bool:
    try:
        await peer.send(message)
        return True
    except Exception:  # noqa: BLE001 - a peer gone mid-send is cleaned up by its own reader
        return False


class CallHub:
    """Rooms of at most two peers keyed by session id and role ("teller" / "expert")."""

    def __init__(self) -> None:
        self.rooms: dict[int, dict[str, Peer]] = {}

    def present(self, session_id: int) -> set[str]:
        return set(self.rooms.get(session_id, {}))

    def connected_sessions(self) -> set[int]:
        return {sid for sid, room in self.rooms.items() if room}

    async def join(self, session_id: int, role: str, peer: Peer) -> bool:
        """Register ``peer``; a previous connection of the same role (reload, second tab) is
        closed. Returns True when both participants are now present."""
        room = self.rooms.setdefault(session_id, {})
        old = room.get(role)
        room[role] = peer
        if old is not None and old is not peer:
            await _close(old, CLOSE_REPLACED, "已在其他页面重新加入")
        other = _other(role)
        both = other in room
        await _safe_send(peer, {"type": "welcome", "role": role, "peer_present": both})
        if both:
            await _safe_send(room[other], {"type": "peer-joined", "role": role})
        return both

    async def leave(self, session_id: int, role: str, peer: Peer) -> None:
        room = self.rooms.get(session_id)
        if not room or room.get(role) is not peer:
            return  # already replaced by a newer connection
        del room[role]
        other = room.get(_other(role))
        if other is not None:
            await _safe_send(other, {"type": "peer-left", "role": role})
        if not room:
            self.rooms.pop(session_id, None)

    async def relay(self, session_id: int, role: str, message: dict[str, Any]) -> bool:
        """Forward an allowed message to the other participant. False if not delivered."""
        if message.get("type") not in RELAYED:
            return False
        other = self.rooms.get(session_id, {}).get(_other(role))
        if other is None:
            return False
        return await _safe_send(other, {**message, "from": role})

    async def broadcast(self, session_id: int, message: dict[str, Any]) -> None:
        for peer in list(self.rooms.get(session_id, {}).values()):
            await _safe_send(peer, message)

    async def end(self, session_id: int, message: dict[str, Any], reason: str = "通话已结束") -> None:
        """Tell both sides the call is over and close their connections."""
        room = self.rooms.pop(session_id, {})
        for peer in list(room.values()):
            await _safe_send(peer, message)
            await _close(peer, CLOSE_ENDED, reason)

    async def close_all(self) -> None:
        for sid in list(self.rooms):
            await self.end(sid, {"type": "server-shutdown"}, "服务正在重启，请稍后刷新页面")


class EventHub:
    """Live feed per logged-in user: experts get queue changes of their domain, outlet
    staff get updates of their outlet's requests. No polling: the server pushes."""

    def __init__(self) -> None:
        # peer → (user id, outlet id or None, expert domain or "*" for all, is expert)
        self.peers: dict[Peer, tuple[int, int | None, str | None, bool]] = {}

    def add(self, peer: Peer, user_id: int, outlet_id: int | None, domain: str | None, is_expert: bool) -> None:
        self.peers[peer] = (user_id, outlet_id, (domain or "*") if is_expert else None, is_expert)

    def remove(self, peer: Peer) -> None:
        self.peers.pop(peer, None)

    def experts_online(self, domain: str) -> int:
        return len({uid for uid, _o, d, expert in self.peers.values() if expert and d in ("*", domain)})

    async def queue_changed(self, domains: set[str] | None = None) -> None:
        """Experts of ``domains`` (all when None) and every outlet refresh queue views."""
        message = {"type": "queue", "domains": sorted(domains) if domains else None}
        for peer, (_uid, _outlet, d, expert) in list(self.peers.items()):
            if expert and domains is not None and d != "*" and d not in domains:
                continue
            await _safe_send(peer, message)

    async def to_user(self, user_id: int, message: dict[str, Any]) -> None:
        for peer, (uid, *_rest) in list(self.peers.items()):
            if uid == user_id:
                await _safe_send(peer, message)

    async def close_all(self) -> None:
        for peer in list(self.peers):
            await _close(peer, 1001, "服务正在重启")
        self.peers.clear()


def _other(role: str) -> str:
    return "expert" if role == "teller" else "teller"


async def _close(peer: Peer, code: int, reason: str) -> None:
    try:
        await peer.close(code, reason)
    except Exception:
        log.debug("closing a peer that is already gone", exc_info=True)


async def periodic(interval: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` every ``interval`` seconds until cancelled; a failing run is logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("assist sweep failed")
