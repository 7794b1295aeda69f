"""Who is connected, across processes: each process keeps a heartbeat row and one row per
live connection it holds (a participant in a call, an expert on the queue feed). A row
counts only while its process' heartbeat is fresh, so a process that dies (SIGKILL, power)
drops out within ``STALE_SECONDS`` without anyone cleaning up first."""

from __future__ import annotations

import socket
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from outlet.events.models import HubPresence, HubProcess
from partners.models import utcnow

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 20.0  # a process not heard from for this long is dead

_proc = HubProcess.__table__  # type: ignore[attr-defined]
_pres = HubPresence.__table__  # type: ignore[attr-defined]


class Presence:
    def __init__(self, engine: Engine, process_id: str, kind: str = "app") -> None:
        self.engine = engine
        self.process_id = process_id
        self.kind = kind

    def register(self) -> None:
        """Announce this process (blocking; once at start)."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(_proc).values(id=self.process_id, kind=self.kind,
                                              host=socket.gethostname()[:120], started_at=now, seen_at=now))

    def heartbeat(self) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(_proc).where(_proc.c.id == self.process_id).values(seen_at=utcnow()))
            if not done.rowcount:  # pruned while this process was stalled: come back
                now = utcnow()
                conn.execute(insert(_proc).values(id=self.process_id, kind=self.kind,
                                                  host=socket.gethostname()[:120], started_at=now, seen_at=now))

    def unregister(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_pres).where(_pres.c.process_id == self.process_id))
            conn.execute(delete(_proc).where(_proc.c.id == self.process_id))

    def join(self, channel: str, member: str) -> int:
        """Mark ``member`` present on ``channel`` through this process; returns a token."""
        with Session(self.engine) as s, s.begin():
            return self.join_in(s, channel, member)

    def join_in(self, db: Session, channel: str, member: str) -> int:
        """``join`` inside the caller's transaction."""
        row = db.execute(insert(_pres).values(process_id=self.process_id, channel=channel,
                                              member=member, joined_at=utcnow()).returning(_pres.c.id))
        return int(row.scalar_one())

    def leave(self, token: int) -> None:
        with Session(self.engine) as s, s.begin():
            self.leave_in(s, token)

    def leave_in(self, db: Session, token: int) -> None:
        db.execute(delete(_pres).where(_pres.c.id == token))

    def members(self, channel: str | None = None, *, prefix: str | None = None) -> set[tuple[str, str]]:
        """``(channel, member)`` pairs present on ``channel`` (or channels starting with
        ``prefix``) through a live process (blocking)."""
        with Session(self.engine) as s:
            return self.members_in(s, channel, prefix=prefix)

    def members_in(self, db: Session, channel: str | None = None, *,
                   prefix: str | None = None) -> set[tuple[str, str]]:
        """``members`` inside the caller's transaction."""
        fresh = utcnow() - timedelta(seconds=STALE_SECONDS)
        q = (select(_pres.c.channel, _pres.c.member).distinct()
             .join(_proc, _proc.c.id == _pres.c.process_id).where(_proc.c.seen_at >= fresh))
        if channel is not None:
            q = q.where(_pres.c.channel == channel)
        if prefix is not None:
            q = q.where(_pres.c.channel.startswith(prefix, autoescape=True))
        return {(r[0], r[1]) for r in db.execute(q)}

    def forget_dead(self) -> int:
        """Delete the rows of processes not heard from for ``STALE_SECONDS`` (a periodic job)."""
        cutoff = utcnow() - timedelta(seconds=STALE_SECONDS)
        with self.engine.begin() as conn:
            dead = [r[0] for r in conn.execute(select(_proc.c.id).where(_proc.c.seen_at < cutoff))]
            if dead:
                conn.execute(delete(_pres).where(_pres.c.process_id.in_(dead)))
                conn.execute(delete(_proc).where(_proc.c.id.in_(dead)))
            orphans = select(_proc.c.id)
            conn.execute(delete(_pres).where(_pres.c.process_id.not_in(orphans)))
            return len(dead)
