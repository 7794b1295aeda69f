"""The call hub relays between exactly two participants; the event hub pushes queue changes."""

from __future__ import annotations

import asyncio
from typing import Any

from remote_assist.signaling import CLOSE_ENDED, CLOSE_REPLACED, CallHub, EventHub


class FakePeer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("closed")
        self.sent.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_callhub_second_participant_triggers_peer_joined() -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, bool, bool]:
        hub, teller, expert = CallHub(), FakePeer(), FakePeer()
        first = await hub.join(1, "teller", teller)
        both = await hub.join(1, "expert", expert)
        return teller, expert, first, both

    teller, expert, first, both = run(scenario())
    assert (first, both) == (False, True)
    assert teller.sent[0] == {"type": "welcome", "role": "teller", "peer_present": False}
    assert teller.sent[1] == {"type": "peer-joined", "role": "expert"}
    assert expert.sent == [{"type": "welcome", "role": "expert", "peer_present": True}]


def test_callhub_relays_only_signaling_types_to_the_other_side() -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, list[bool]]:
        hub, teller, expert = CallHub(), FakePeer(), FakePeer()
        await hub.join(7, "teller", teller)
        await hub.join(7, "expert", expert)
        results = [
            await hub.relay(7, "expert", {"type": "offer", "sdp": "v=0"}),
            await hub.relay(7, "teller", {"type": "answer", "sdp": "v=0"}),
            await hub.relay(7, "teller", {"type": "hangup"}),  # not relayed: the server ends calls
            await hub.relay(7, "teller", {"type": "welcome"}),
        ]
        return teller, expert, results

    teller, expert, results = run(scenario())
    assert results == [True, True, False, False]
    assert teller.sent[-1] == {"type": "offer", "sdp": "v=0", "from": "expert"}
    assert expert.sent[-1] == {"type": "answer", "sdp": "v=0", "from": "teller"}


def test_callhub_reload_replaces_the_old_connection() -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, FakePeer, set[str]]:
        hub, old, new, expert = CallHub(), FakePeer(), FakePeer(), FakePeer()
        assert new is not old
        await hub.join(3, "teller", old)
        await hub.join(3, "expert", expert)
        await hub.join(3, "teller", new)
        await hub.leave(3, "teller", old)  # the old socket's reader exits late: no effect
        return old, new, expert, hub.present(3)

    old, new, expert, present = run(scenario())
    assert old.closed is not None and old.closed[0] == CLOSE_REPLACED
    assert new.sent == [{"type": "welcome", "role": "teller", "peer_present": True}] and new.closed is None
    assert present == {"teller", "expert"}
    assert expert.types() == ["welcome", "peer-joined"]  # the reloaded teller; no peer-left


def test_callhub_end_closes_both_with_reason() -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, set[int]]:
        hub, teller, expert = CallHub(), FakePeer(), FakePeer()
        await hub.join(5, "teller", teller)
        await hub.join(5, "expert", expert)
        await hub.end(5, {"type": "hangup", "reason": "hangup"})
        return teller, expert, hub.connected_sessions()

    teller, expert, connected = run(scenario())
    for peer in (teller, expert):
        assert peer.sent[-1] == {"type": "hangup", "reason": "hangup"}
        assert peer.closed is not None and peer.closed[0] == CLOSE_ENDED
    assert connected == set()


def test_eventhub_queue_changes_reach_experts_of_the_domain_only() -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, FakePeer, int]:
        hub = EventHub()
        biz, social, everything = FakePeer(), FakePeer(), FakePeer()
        hub.add(biz, 1, None, "商事登记", True)
        hub.add(social, 2, None, "社保", True)
        hub.add(everything, 3, None, None, True)
        await hub.queue_changed({"商事登记"})
        return biz, social, everything, hub.experts_online("商事登记")

    biz, social, everything, online = run(scenario())
    assert biz.types() == ["queue"] and everything.types() == ["queue"]
    assert social.sent == []
    assert online == 2
