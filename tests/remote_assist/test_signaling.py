"""Call signaling and the live feed over the event hub: relayed between exactly two
participants, in order, also when they are connected to two different processes (two hubs
on one real database file)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import Engine

from outlet.events import Hub
from remote_assist.signaling import CLOSE_ENDED, CLOSE_REPLACED, CallHub, EventHub

WAIT = 10.0  # seconds: a bounded wait for delivery, not a speed goal


class FakePeer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("closed")
        if message["type"] != "server-shutdown":  # sent when a scenario's processes stop
            self.sent.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def processes(engine: Engine, n: int) -> AsyncIterator[list[tuple[CallHub, EventHub]]]:
    """``n`` app processes' worth of hubs sharing one database (the SQLite poll stands in
    for PostgreSQL's NOTIFY between them; tests/outlet/test_events.py covers NOTIFY)."""
    hubs = [Hub(engine, poll_seconds=0.05) for _ in range(n)]
    out = []
    for hub in hubs:
        await hub.start()
        calls, events = CallHub(hub), EventHub(hub)
        await calls.start()
        await events.start()
        out.append((calls, events))
    try:
        yield out
    finally:
        for calls, events in out:
            await calls.close()
            await events.close()
        for hub in hubs:
            await hub.close()


def test_callhub_second_participant_triggers_peer_joined(engine: Engine) -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, bool, bool]:
        async with processes(engine, 1) as [(hub, _)]:
            teller, expert = FakePeer(), FakePeer()
            first = await hub.join(1, "teller", teller)
            await until(lambda: teller.sent != [])
            both = await hub.join(1, "expert", expert)
            await until(lambda: len(teller.sent) == 2 and expert.sent != [])
            return teller, expert, first, both

    teller, expert, first, both = asyncio.run(scenario())
    assert (first, both) == (False, True)
    assert teller.sent == [{"type": "welcome", "role": "teller", "peer_present": False},
                           {"type": "peer-joined", "role": "expert"}]
    assert expert.sent == [{"type": "welcome", "role": "expert", "peer_present": True}]


def test_callhub_relays_only_signaling_types_in_order_across_two_processes(engine: Engine) -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, list[bool]]:
        async with processes(engine, 2) as [(a, _), (b, _)]:
            teller, expert = FakePeer(), FakePeer()
            await a.join(7, "teller", teller)  # the teller's page came from process A …
            await b.join(7, "expert", expert)  # … the expert's from process B
            await until(lambda: "peer-joined" in teller.types() and expert.sent != [])
            results = [await b.relay(7, "expert", {"type": "offer", "sdp": "v=0"})]
            results += [await b.relay(7, "expert", {"type": "ice", "candidate": {"n": n}}) for n in range(5)]
            results += [await a.relay(7, "teller", {"type": "answer", "sdp": "v=0"}),
                        await a.relay(7, "teller", {"type": "hangup"}),  # the server ends calls
                        await a.relay(7, "teller", {"type": "welcome"})]
            await until(lambda: len(teller.sent) == 8 and len(expert.sent) == 2)
            return teller, expert, results

    teller, expert, results = asyncio.run(scenario())
    assert results == [True] * 7 + [False, False]
    assert teller.sent[2] == {"type": "offer", "sdp": "v=0", "from": "expert"}
    assert [m["candidate"]["n"] for m in teller.sent[3:]] == [0, 1, 2, 3, 4]
    assert expert.sent[-1] == {"type": "answer", "sdp": "v=0", "from": "teller"}


def test_callhub_reload_on_another_process_replaces_the_old_connection(engine: Engine) -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, FakePeer, set[str]]:
        async with processes(engine, 2) as [(a, _), (b, _)]:
            old, new, expert = FakePeer(), FakePeer(), FakePeer()
            await a.join(3, "teller", old)
            await a.join(3, "expert", expert)
            await until(lambda: "peer-joined" in old.types())
            await b.join(3, "teller", new)  # the reload landed on process B
            await until(lambda: old.closed is not None and new.sent != [])
            await a.leave(3, "teller", old)  # the old socket's reader exits late: no peer-left
            await b.relay(3, "teller", {"type": "chat", "text": "还在吗"})
            await until(lambda: expert.types()[-1] == "chat")
            return old, new, expert, await asyncio.to_thread(a.present, 3)

    old, new, expert, present = asyncio.run(scenario())
    assert old.closed is not None and old.closed[0] == CLOSE_REPLACED
    assert new.sent == [{"type": "welcome", "role": "teller", "peer_present": True}]
    assert new.closed is None or new.closed[0] != CLOSE_REPLACED
    assert present == {"teller", "expert"}
    assert expert.types() == ["welcome", "peer-joined", "chat"]  # the reloaded teller; no peer-left


def test_callhub_end_closes_both_sides_on_both_processes(engine: Engine) -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, list[int]]:
        ended: list[int] = []

        async def on_end(sid: int) -> None:
            ended.append(sid)

        async with processes(engine, 2) as [(a, _), (b, _)]:
            a.on_end = b.on_end = on_end
            teller, expert = FakePeer(), FakePeer()
            await a.join(5, "teller", teller)
            await b.join(5, "expert", expert)
            await until(lambda: expert.sent != [] and len(teller.sent) == 2)
            await a.end(5, {"type": "hangup", "reason": "hangup"})
            await until(lambda: teller.closed is not None and expert.closed is not None)
            return teller, expert, ended

    teller, expert, ended = asyncio.run(scenario())
    for peer in (teller, expert):
        assert peer.sent[-1] == {"type": "hangup", "reason": "hangup"}
        assert peer.closed is not None and peer.closed[0] == CLOSE_ENDED
    assert ended == [5, 5]  # each process finalizes what it holds of the call


def test_eventhub_queue_changes_reach_experts_of_the_domain_on_any_process(engine: Engine) -> None:
    async def scenario() -> tuple[FakePeer, FakePeer, FakePeer, FakePeer, int]:
        async with processes(engine, 2) as [(_, a), (_, b)]:
            biz, social, everything, teller = FakePeer(), FakePeer(), FakePeer(), FakePeer()
            await a.add(biz, 1, None, "商事登记", True)
            await b.add(social, 2, None, "社保", True)
            await b.add(everything, 3, None, None, True)
            await a.add(teller, 9, 4, None, False)
            await a.queue_changed({"商事登记"})
            await b.to_user(9, {"type": "accepted", "request": 1, "url": "/assist/sessions/1"})
            await until(lambda: biz.sent != [] and everything.sent != [] and len(teller.sent) == 2)
            online = await asyncio.to_thread(b.experts_online, "商事登记")
            return biz, social, everything, teller, online

    biz, social, everything, teller, online = asyncio.run(scenario())
    assert biz.types() == ["queue"] and everything.types() == ["queue"]
    assert social.sent == []
    assert teller.types() == ["queue", "accepted"]
    assert online == 2
