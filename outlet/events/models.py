"""Tables of the event hub (all prefixed ``hub_``): the events themselves, the live app
processes, who is present where, and the leases of periodic jobs.

Timestamps are naive UTC like everywhere else.
"""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import BigInteger, Column, Integer, Text
from sqlmodel import Field, SQLModel

from partners.models import utcnow

# BIGINT on PostgreSQL; on SQLite an INTEGER PRIMARY KEY with AUTOINCREMENT, so a sequence
# number is never reused after pruning (clients catch up with "after seq N").
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class HubEvent(SQLModel, table=True):
    """One published event. ``seq`` orders events in commit order (see ``outlet.events``)."""

    __tablename__ = "hub_event"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, sa_column=Column(SEQ_TYPE, primary_key=True, autoincrement=True))
    topic: str = Field(max_length=200, index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class HubProcess(SQLModel, table=True):
    """A running app or recorder process; ``seen_at`` is its heartbeat."""

    __tablename__ = "hub_process"

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(default="app", max_length=16)  # app / recorder
    host: str = Field(default="", max_length=120)
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    seen_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class HubPresence(SQLModel, table=True):
    """A live connection present on ``channel`` (e.g. a call, the experts' feed), held by a
    process; it counts only while that process' heartbeat is fresh."""

    __tablename__ = "hub_presence"

    id: int | None = Field(default=None, primary_key=True)
    process_id: str = Field(max_length=40, index=True)
    channel: str = Field(max_length=120, index=True)
    member: str = Field(max_length=120)
    joined_at: NaiveDatetime = Field(default_factory=utcnow)


class HubLease(SQLModel, table=True):
    """Who runs a periodic job (checkpoint signing, sweeps, pruning) until ``expires_at``."""

    __tablename__ = "hub_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=40)
    expires_at: NaiveDatetime
