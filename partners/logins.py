"""Server-side login sessions: revocable, with a sliding idle timeout and an absolute lifetime.

The browser's cookie carries only a random token (32 bytes); the database keeps its
SHA-256 (``LoginSession.id``), so a stolen database copy cannot be replayed as a cookie.
A session is valid while it is not ended, ``now < expires_at`` (absolute lifetime from
login) and ``now - last_seen < idle`` (sliding: every request moves ``last_seen``, written at
most every :data:`TOUCH_EVERY` seconds to keep writes cheap). Ending is a row update, so it
takes effect at once in every app process. GB/T 22239-2019 8.1.4.1 (身份鉴别: 登录连接超时
自动退出) and 8.1.4.2 (访问控制).

Account changes end all of a user's sessions in the same transaction as the change
(:func:`end_all`, called from :mod:`partners.accounts`): password change or reset, role
change, deactivation. Every end is also noted on the SQLAlchemy session
(``session.info[ENDED_KEY]``: staff id → stored session ids) just before the flush, so that
``web.live`` publishes it on the event hub from that flush — in the same transaction, and
before the caller's audit entry (the lock order every publisher keeps on PostgreSQL: hub
first, audit log second) — and closes that login's WebSockets everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import bindparam, update
from sqlmodel import Field, Session, SQLModel, col, select

from partners import refdata
from partners.models import Staff, utcnow

TOUCH_EVERY = 60  # seconds between writes of last_seen
ENDED_KEY = "servicepoint.ended_logins"

END_REASONS = {
    "logout": "用户退出",
    "password": "密码已修改或重置",
    "roles": "岗位已变更",
    "deactivated": "账号已停用",
    "admin": "被安全管理员结束",
}


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_session"

    id: str = Field(primary_key=True, max_length=64)  # SHA-256 hex of the cookie token
    staff_id: int = Field(foreign_key="staff.id", index=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    last_seen: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime
    ended_at: NaiveDatetime | None = None
    ended_reason: str | None = Field(default=None, max_length=16)
    client: str = Field(default="", max_length=160)  # address · browser summary


def token_id(token: str) -> str:
    """The stored id of a cookie token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session, staff: Staff, *, client: str, lifetime: timedelta, at: datetime | None = None
) -> str:
    """Open a session for ``staff`` and return the cookie token (never stored)."""
    now = at or utcnow()
    assert staff.id is not None
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            id=token_id(token), staff_id=staff.id, created_at=now, last_seen=now,
            expires_at=now + lifetime, client=client[:160],
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Current:
    staff: Staff
    session_id: str
    idle_left: float  # seconds until the idle timeout
    expires_in: float  # seconds until the absolute lifetime ends
    ref_version: int = 0  # reference data version seen by the lookup (partners.refdata)


@dataclass(frozen=True)
class Pending:
    """A write :func:`look_up` decided on: end the session as expired, or move ``last_seen``."""

    session_id: str
    at: datetime
    expire: bool


def look_up(
    session: Session, token: str, *, idle: timedelta, at: datetime | None = None, touch: bool = False
) -> tuple[Current | None, Pending | None]:
    """The live session for ``token`` and its (active) staff member, or None, reading only
    (works on a read-only session), plus the write to make afterwards (:func:`apply`, in a
    write transaction) or None: the end of a session found expired, or ``last_seen`` moved
    when it is older than :data:`TOUCH_EVERY` seconds (or with ``touch``). So a request
    writes at most once a minute per session; ``last_seen`` lags by less than that, and the
    idle timeout may end a session up to :data:`TOUCH_EVERY` seconds early, never late."""
    return look_up_id(session, token_id(token), idle=idle, at=at, touch=touch)


@functools.cache
def _session_and_staff() -> Any:
    """The login session, its staff member and the reference-data version
    (:mod:`partners.refdata`) by stored id (parameter ``session_id``): built once, as every
    request runs it (see ``outlet.cases._home_statement``)."""
    return (select(LoginSession, Staff, refdata.version_column())
            .join(Staff, col(Staff.id) == LoginSession.staff_id)
            .where(col(LoginSession.id) == bindparam("session_id")))


def look_up_id(
    session: Session, session_id: str, *, idle: timedelta, at: datetime | None = None, touch: bool = False
) -> tuple[Current | None, Pending | None]:
    """:func:`look_up` by stored id (a live connection re-checking its login)."""
    now = at or utcnow()
    row = session.execute(_session_and_staff(), {"session_id": session_id}).first()
    if row is None:
        return None, None
    login, staff, ref_version = row
    if login.ended_at is not None or not staff.active:
        return None, None
    if now >= login.expires_at or now - login.last_seen >= idle:
        return None, Pending(login.id, now, expire=True)
    pending = None
    last_seen = login.last_seen
    if touch or (now - last_seen).total_seconds() >= TOUCH_EVERY:
        pending, last_seen = Pending(login.id, now, expire=False), now
    idle_left = (last_seen + idle - now).total_seconds()
    expires_in = (login.expires_at - now).total_seconds()
    return Current(staff, login.id, idle_left, expires_in, int(ref_version)), pending


def apply(session: Session, pending: Pending) -> None:
    """Write what :func:`look_up` decided, as one conditional UPDATE (a session ended
    meanwhile stays ended; ``last_seen`` never moves backwards)."""
    table = LoginSession.__table__  # type: ignore[attr-defined]
    stmt = update(table).where(table.c.id == pending.session_id, table.c.ended_at.is_(None))
    if pending.expire:
        stmt = stmt.values(ended_at=pending.at, ended_reason="expired")
    else:
        stmt = stmt.where(table.c.last_seen < pending.at).values(last_seen=pending.at)
    session.connection().execute(stmt)


def resolve(
    session: Session, token: str, *, idle: timedelta, at: datetime | None = None, touch: bool = False
) -> Current | None:
    """:func:`look_up` and :func:`apply` in one (write) session."""
    current, pending = look_up(session, token, idle=idle, at=at, touch=touch)
    if pending is not None:
        apply(session, pending)
    return current


def is_live(session: Session, session_id: str, *, idle: timedelta, at: datetime | None = None) -> bool:
    """Whether the stored session is still valid, without counting this as activity."""
    now = at or utcnow()
    row = session.exec(
        select(LoginSession.ended_at, LoginSession.expires_at, LoginSession.last_seen, Staff.active)
        .join(Staff, col(Staff.id) == LoginSession.staff_id)
        .where(LoginSession.id == session_id)
    ).first()
    if row is None:
        return False
    ended_at, expires_at, last_seen, active = row
    return ended_at is None and bool(active) and now < expires_at and now - last_seen < idle


def _note_ended(session: Session, staff_id: int, ids: list[str]) -> None:
    if ids:
        session.info.setdefault(ENDED_KEY, {}).setdefault(staff_id, []).extend(ids)


def end(session: Session, session_id: str, reason: str, *, at: datetime | None = None) -> bool:
    """End one session (by stored id). True when it was live."""
    login = session.get(LoginSession, session_id)
    if login is None or login.ended_at is not None:
        return False
    login.ended_at, login.ended_reason = at or utcnow(), reason
    session.add(login)
    _note_ended(session, login.staff_id, [login.id])  # before the flush: see ENDED_KEY
    session.flush()
    return True


def end_all(session: Session, staff_id: int, reason: str, *, at: datetime | None = None) -> int:
    """End every live session of ``staff_id``; returns how many were ended."""
    now = at or utcnow()
    rows = session.exec(
        select(LoginSession).where(LoginSession.staff_id == staff_id, col(LoginSession.ended_at).is_(None))
    ).all()
    for login in rows:
        login.ended_at, login.ended_reason = now, reason
        session.add(login)
    _note_ended(session, staff_id, [r.id for r in rows])
    session.flush()
    return len(rows)


def live_sessions(session: Session, staff_id: int, *, idle: timedelta, at: datetime | None = None) -> list[LoginSession]:
    """The user's sessions that are still valid, newest first."""
    now = at or utcnow()
    rows = session.exec(
        select(LoginSession)
        .where(
            LoginSession.staff_id == staff_id,
            col(LoginSession.ended_at).is_(None),
            col(LoginSession.expires_at) > now,
            col(LoginSession.last_seen) > now - idle,
        )
        .order_by(col(LoginSession.created_at).desc())
    ).all()
    return list(rows)
