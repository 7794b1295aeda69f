"""The event hub: publish a topic and a small JSON payload; subscribe by topic or prefix.

Every event is a row of ``hub_event`` whose ``seq`` orders events in commit order, so a
subscriber (or a browser that reconnects, possibly to another process) catches up with
"everything after seq N". Publishing inside the caller's transaction means the event exists
if and only if the change commits. Writers are serialized for the insert (SQLite's
``BEGIN IMMEDIATE``; on PostgreSQL a transaction-scoped advisory lock taken just before the
insert), which is what makes sequence order equal commit order: a reader can never see
seq N+1 before N.

How a process learns that there is something new is the only difference between the two
backends: in-process (SQLite, one process) a commit hook wakes the dispatcher; on PostgreSQL
the same transaction sends a NOTIFY carrying only topic, seq and the publishing process
(delivered on commit) to every process' listening connection (``outlet.events.pg``). Either
way the dispatcher reads the new rows once and hands them to matching subscriptions. A slow
poll backs both up (an event committed by a command-line tool, a lost notification).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, event, func, insert, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from audit.group import AFTER_COMMIT
from outlet.events.models import HubEvent
from outlet.events.presence import HEARTBEAT_SECONDS, Presence
from partners.models import utcnow

log = logging.getLogger("servicepoint.events")

CHANNEL = "servicepoint_events"  # the PostgreSQL NOTIFY channel
PUBLISH_LOCK = 0x6576656E74_01  # pg_advisory_xact_lock key ("event" + 1)
MAX_PAYLOAD = 32 * 1024  # bytes of JSON; larger things belong in their own table
BATCH = 5000  # events read per query
QUEUE_LIMIT = 10_000  # events buffered per subscription before it is dropped as lagging

_events = HubEvent.__table__  # type: ignore[attr-defined]
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_NOTIFY = text("SELECT pg_notify(:c, :m)")


class HubError(Exception):
    """Base class of event hub errors."""


class SubscriptionLost(HubError):
    """The subscriber fell more than ``QUEUE_LIMIT`` events behind; resubscribe with
    ``since`` = the last seq it handled."""


@dataclass(frozen=True)
class Event:
    seq: int
    topic: str
    payload: dict[str, Any]


def _matches(patterns: tuple[str, ...], topic: str) -> bool:
    """A pattern is an exact topic or, ending in ``*``, a prefix (``assist.call.*``)."""
    return any(topic == p or (p.endswith("*") and topic.startswith(p[:-1])) for p in patterns)


class Subscription:
    """Events matching ``patterns`` in seq order: first those after ``since`` still in the
    table (catch-up), then live ones. An async iterator; ``close()`` ends it."""

    def __init__(self, hub: Hub, patterns: tuple[str, ...], since: int | None) -> None:
        self.hub = hub
        self.patterns = patterns
        self.since = since
        self.last = since if since is not None else hub.last_seq
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.lost = False
        self._caught_up = since is None
        self._backlog: deque[Event] = deque()

    def _offer(self, ev: Event) -> None:
        if self.lost or not _matches(self.patterns, ev.topic):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.lost = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(ev)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if not self._caught_up:
            self._caught_up = True
            backlog = await asyncio.to_thread(self.hub.read_after, self.since or 0, self.patterns)
            if len(backlog) >= BATCH:
                self.lost = True
                raise SubscriptionLost(f"more than {BATCH} events to catch up after seq {self.since}")
            self._backlog.extend(backlog)  # ahead of anything the dispatcher queued meanwhile
        while True:
            got = self._backlog.popleft() if self._backlog else await self.queue.get()
            if got is None:
                if self.lost:
                    raise SubscriptionLost(f"subscriber fell behind after seq {self.last}")
                raise StopAsyncIteration
            if got.seq > self.last:  # catch-up and live may overlap: each seq once, in order
                self.last = got.seq
                return got

    def close(self) -> None:
        self.hub._subs.discard(self)
        self.queue.put_nowait(None)


class Hub:
    """One per process (``app.state.hub``), opened and closed by the lifespan.

    ``engine`` is the app's engine, ``reader`` its read-only twin (``web.db.make_reader``)
    for reading events; ``listen_url`` (PostgreSQL only, a psycopg conninfo)
    turns on the LISTEN/NOTIFY backend, else events are woken in-process."""

    def __init__(self, engine: Engine, *, kind: str = "app", poll_seconds: float = 2.0,
                 reader: Engine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine  # reading events never waits for writers
        self.kind = kind
        self.process_id = f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.poll_seconds = poll_seconds
        self.is_pg = engine.dialect.name == "postgresql"
        self.last_seq = 0
        self._subs: set[Subscription] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.listener: Any = None  # outlet.events.pg.Listener on PostgreSQL
        self.presence = Presence(engine, self.process_id, kind)

    # --- publishing -------------------------------------------------------------------------

    def publish_in(self, db: Session | Connection, topic: str, payload: Mapping[str, Any]) -> int:
        """Add an event to the caller's open transaction; it is delivered once (and only if)
        that transaction commits. Returns its seq. Call it last in the transaction: on
        PostgreSQL it serializes publishers until commit. Raises ``HubError`` for a payload
        over ``MAX_PAYLOAD`` bytes."""
        body = json.dumps(dict(payload), ensure_ascii=False, separators=(",", ":"), default=str)
        if len(body.encode()) > MAX_PAYLOAD:
            raise HubError(f"event payload of {topic!r} is over {MAX_PAYLOAD} bytes")
        conn = db.connection() if isinstance(db, Session) else db
        if self.is_pg:
            conn.execute(_LOCK, {"k": PUBLISH_LOCK})
        seq = int(conn.execute(
            insert(_events).values(topic=topic, payload=body, created_at=utcnow()).returning(_events.c.seq)
        ).scalar_one())
        if self.is_pg:  # delivered by PostgreSQL on commit, to every listening process
            note = json.dumps({"t": topic, "s": seq, "p": self.process_id}, ensure_ascii=False)
            conn.execute(_NOTIFY, {"c": CHANNEL, "m": note})
        elif isinstance(db, Session) and (deferred := db.info.get(AFTER_COMMIT)) is not None:
            deferred.append(self.wake)  # a group-commit unit: wake after the batch's COMMIT
        elif isinstance(db, Session):
            event.listen(db, "after_commit", lambda _s: self.wake(), once=True)
        else:
            event.listen(db, "commit", lambda _c: self.wake(), once=True)
        return seq

    def serialize(self, db: Session | Connection) -> None:
        """Take the publishers' lock now, for a transaction that must read and publish as one
        step (e.g. "who is present" then "I joined"). SQLite's write transaction already is
        exclusive; on PostgreSQL this is the advisory lock ``publish_in`` takes anyway."""
        if self.is_pg:
            conn = db.connection() if isinstance(db, Session) else db
            conn.execute(_LOCK, {"k": PUBLISH_LOCK})

    def publish(self, topic: str, payload: Mapping[str, Any]) -> int:
        """Publish in a transaction of its own (blocking; from async code use ``apublish``)."""
        with Session(self.engine) as s, s.begin():
            return self.publish_in(s, topic, payload)

    async def apublish(self, topic: str, payload: Mapping[str, Any]) -> int:
        return await asyncio.to_thread(self.publish, topic, payload)

    # --- subscribing ------------------------------------------------------------------------

    def subscribe(self, *patterns: str, since: int | None = None) -> Subscription:
        """Events whose topic matches one of ``patterns`` (exact, or a prefix ending in
        ``*``). With ``since`` (a seq), first every such event after it that is still kept."""
        sub = Subscription(self, tuple(patterns), since)
        self._subs.add(sub)
        return sub

    def read_after(self, seq: int, patterns: tuple[str, ...] = ("*",), limit: int = BATCH) -> list[Event]:
        """Kept events after ``seq`` matching ``patterns``, oldest first (blocking)."""
        q = select(_events.c.seq, _events.c.topic, _events.c.payload).where(_events.c.seq > seq)
        if "*" not in patterns:
            q = q.where(or_(*(_events.c.topic.startswith(p[:-1], autoescape=True) if p.endswith("*")
                              else _events.c.topic == p for p in patterns)))
        with self.reader.connect() as conn:
            rows = conn.execute(q.order_by(_events.c.seq).limit(limit)).all()
        return [Event(int(r.seq), r.topic, json.loads(r.payload)) for r in rows]

    def wake(self) -> None:
        """Tell the dispatcher there may be new events (thread-safe)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop is shutting down
            pass

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives as the wake fires (gh-86296), and close() would then wait forever.
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while True:
                    batch = await asyncio.to_thread(self.read_after, self.last_seq)
                    for ev in batch:
                        self.last_seq = ev.seq
                        for sub in list(self._subs):
                            sub._offer(ev)
                    if len(batch) < BATCH:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database gone for a moment: the next round retries
                log.warning("event dispatch failed: %s: %s", exc.__class__.__name__, exc)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        def begin() -> int:
            self.presence.register()
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.max(_events.c.seq))).scalar() or 0)

        self.last_seq = await asyncio.to_thread(begin)
        self._tasks.append(asyncio.create_task(self._dispatch()))
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        if self.is_pg:
            from outlet.events.pg import Listener

            self.listener = Listener(self.engine.url, CHANNEL, on_notify=self.wake)
            self._tasks.append(asyncio.create_task(self.listener.run()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        for sub in list(self._subs):
            sub.close()
        try:
            await asyncio.to_thread(self.presence.unregister)
        except Exception as exc:  # noqa: BLE001 - rows of a dead process expire anyway
            log.warning("could not unregister process %s: %s", self.process_id, exc)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await asyncio.to_thread(self.presence.heartbeat)
            except Exception as exc:  # database gone for a moment: the next beat retries
                log.warning("presence heartbeat failed: %s: %s", exc.__class__.__name__, exc)

    # --- housekeeping -----------------------------------------------------------------------

    def prune(self, keep_seconds: float = 3600.0) -> int:
        """Delete events older than ``keep_seconds`` (a client away longer reloads its page).
        Returns the number deleted."""
        cutoff = utcnow() - timedelta(seconds=keep_seconds)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(_events).where(_events.c.created_at < cutoff)).rowcount or 0)

