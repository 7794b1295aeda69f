"""The event hub on a real SQLite file (in-process backend) and a real PostgreSQL server
(LISTEN/NOTIFY across two hubs = two processes' worth of connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401  (all tables)
from outlet.events import Hub, lease
from outlet.events.models import HubProcess
from outlet.events.presence import STALE_SECONDS
from partners.models import utcnow
from web.db import make_engine

WAIT = 10.0  # seconds; a bounded wait, not a speed goal


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def take(sub: Any, n: int) -> list[Any]:
    out = []
    async with asyncio.timeout(WAIT):
        async for ev in sub:
            out.append(ev)
            if len(out) == n:
                return out
    return out


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    from tests.conftest import new_pg_database

    engine = make_engine(new_pg_database())
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_hub_delivers_committed_events_in_order_and_drops_rolled_back_ones(engine: Engine) -> None:
    async def scenario() -> list[Any]:
        hub = Hub(engine, poll_seconds=3600)  # only the commit hook may wake it
        await hub.start()
        try:
            sub = hub.subscribe("assist.call.7")
            await hub.apublish("assist.call.7", {"n": 1})

            def rolled_back() -> None:
                with Session(engine) as s, s.begin():
                    hub.publish_in(s, "assist.call.7", {"n": "never"})
                    raise_in_txn()

            with pytest.raises(LookupError):
                await asyncio.to_thread(rolled_back)
            await hub.apublish("assist.call.8", {"n": "other call"})
            await hub.apublish("assist.call.7", {"n": 2})
            return await take(sub, 2)
        finally:
            await hub.close()

    events = run(scenario())
    assert [e.payload for e in events] == [{"n": 1}, {"n": 2}]
    assert events[0].seq < events[1].seq and {e.topic for e in events} == {"assist.call.7"}


def raise_in_txn() -> None:
    raise LookupError("the change failed")


def test_hub_event_published_inside_a_group_commit_unit_is_woken_after_the_batch_commit(engine: Engine) -> None:
    """A delegated action's session is a group-commit unit: its own after_commit fires before
    the batch's COMMIT, so the hub must wake on the batch's commit instead (no poll here)."""
    import sqlite3

    from audit.group import group_commit

    visible_at_wake: list[int] = []

    async def scenario() -> list[Any]:
        hub = Hub(engine, poll_seconds=3600)  # only the commit hook may wake it
        wake = hub.wake

        def checked_wake() -> None:  # what another connection sees when the hub is woken
            with sqlite3.connect(str(engine.url.database)) as other:
                visible_at_wake.append(other.execute("SELECT count(*) FROM hub_event").fetchone()[0])
            wake()

        hub.wake = checked_wake  # type: ignore[method-assign]
        await hub.start()
        try:
            sub = hub.subscribe("queue.panel.*")

            def action() -> None:
                with group_commit(engine).unit(Session) as s:
                    hub.publish_in(s, "queue.panel.1", {"n": 1})

            await asyncio.to_thread(action)
            return [ev.payload for ev in await take(sub, 1)]
        finally:
            await hub.close()

    assert run(scenario()) == [{"n": 1}]
    assert visible_at_wake and visible_at_wake[0] == 1  # woken once the event was committed


def test_hub_subscriber_catches_up_from_a_sequence_then_goes_live(engine: Engine) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        hub = Hub(engine)
        await hub.start()
        try:
            first = await hub.apublish("assist.queue", {"n": 1})
            await hub.apublish("assist.queue", {"n": 2})
            await hub.apublish("assist.user.5", {"n": "not mine"})
            sub = hub.subscribe("assist.queue", since=first)  # a reconnecting client
            await hub.apublish("assist.queue", {"n": 3})
            got = await take(sub, 2)
            prefix = hub.subscribe("assist.user.*", since=0)
            return got, await take(prefix, 1)
        finally:
            await hub.close()

    got, prefixed = run(scenario())
    assert [e.payload["n"] for e in got] == [2, 3]
    assert [e.topic for e in prefixed] == ["assist.user.5"]


def test_hub_prune_deletes_only_old_events(engine: Engine) -> None:
    hub = Hub(engine)
    hub.publish("t", {"old": True})
    with engine.begin() as conn:
        conn.execute(text("UPDATE hub_event SET created_at = :t"), {"t": utcnow() - timedelta(hours=2)})
    hub.publish("t", {"old": False})
    assert hub.prune(keep_seconds=3600) == 1
    assert [e.payload for e in hub.read_after(0)] == [{"old": False}]


def test_presence_counts_only_live_processes(engine: Engine) -> None:
    a, b = Hub(engine), Hub(engine)
    a.presence.register()
    b.presence.register()
    ta = a.presence.join("assist.call.1", "teller")
    b.presence.join("assist.call.1", "expert")
    assert a.presence.members("assist.call.1") == {("assist.call.1", "teller"), ("assist.call.1", "expert")}
    a.presence.leave(ta)
    assert a.presence.members("assist.call.1") == {("assist.call.1", "expert")}
    with Session(engine) as s, s.begin():  # b stops beating (SIGKILL)
        s.execute(update(HubProcess).where(HubProcess.id == b.process_id)
                  .values(seen_at=utcnow() - timedelta(seconds=STALE_SECONDS + 1)))
    assert a.presence.members("assist.call.1") == set()
    assert a.presence.forget_dead() == 1


def test_lease_has_one_holder_and_moves_when_it_expires(engine: Engine) -> None:
    assert lease.acquire(engine, "audit.checkpoint", "A", ttl=30)
    assert not lease.acquire(engine, "audit.checkpoint", "B", ttl=30)
    assert lease.acquire(engine, "audit.checkpoint", "A", ttl=0.0)  # renewed with no time left
    assert lease.acquire(engine, "audit.checkpoint", "B", ttl=30)  # A died: B takes over
    assert lease.holder_of(engine, "audit.checkpoint") == "B"
    lease.release(engine, "audit.checkpoint", "B")
    assert lease.holder_of(engine, "audit.checkpoint") is None


@pytest.mark.postgres
def test_postgres_event_published_by_one_process_reaches_the_other(pg_engine: Engine) -> None:
    other = make_engine(str(pg_engine.url.render_as_string(hide_password=False)))

    async def scenario() -> list[Any]:
        a, b = Hub(pg_engine, poll_seconds=3600), Hub(other, poll_seconds=3600)  # NOTIFY only
        await a.start()
        await b.start()
        try:
            await asyncio.wait_for(b.listener.connected.wait(), WAIT)
            sub = b.subscribe("assist.queue")

            def in_transaction() -> None:
                with Session(pg_engine) as s, s.begin():
                    a.publish_in(s, "assist.queue", {"domains": ["社保"]})

            await asyncio.to_thread(in_transaction)
            return await take(sub, 1)
        finally:
            await a.close()
            await b.close()
            other.dispose()

    [ev] = run(scenario())
    assert ev.topic == "assist.queue" and ev.payload == {"domains": ["社保"]}


@pytest.mark.postgres
def test_postgres_listener_killed_catches_up_after_reconnect(pg_engine: Engine) -> None:
    other = make_engine(str(pg_engine.url.render_as_string(hide_password=False)))

    async def scenario() -> tuple[list[int], int, int]:
        a, b = Hub(pg_engine, poll_seconds=3600), Hub(other, poll_seconds=3600)
        await a.start()
        await b.start()
        try:
            await asyncio.wait_for(b.listener.connected.wait(), WAIT)
            sub = b.subscribe("burst")
            killed = b.listener.backend_pid
            with pg_engine.begin() as conn:  # the listener's connection dies …
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": killed})
            for n in range(20):  # … while events keep being published
                await a.apublish("burst", {"n": n})
            got = await take(sub, 20)
            return [e.payload["n"] for e in got], killed, b.listener.connects
        finally:
            await a.close()
            await b.close()
            other.dispose()

    numbers, killed, connects = run(scenario())
    assert numbers == list(range(20))
    assert connects >= 2 and killed is not None
