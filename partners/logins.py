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

Audit (GB/T 22239-2019 8.1.4.3): a login (``security.login``), a logout
(``security.logout``) and an expiry (``security.session.expire``, idle or absolute, written
by whichever request or live connection finds it first, exactly once) are entries whose
actor is the session's holder and whose state names the session by :func:`tag` — the first
12 hex digits of its stored id — so an auditor can pair a login with its end. Ends by
account changes or by the security admin are audited by those actions themselves. Failed
logins are tallied per minute by ``web.refusals``.
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
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel, col, select

import audit
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


def tag(session_id: str) -> str:
    """``session:<12 hex>``: how audit entries name a login session (never the token)."""
    return "session:" + session_id[:12]


def _role(staff: Staff) -> str:
    return sorted(staff.role_set)[0] if staff.role_set else "none"


def audit_session(session: Session, action: str, staff_id: int, role: str, state: tuple[str | None, str | None],
                  at: datetime) -> None:
    """Append a session entry (``security.login`` / ``.logout`` / ``.session.expire``) in
    the caller's transaction."""
    audit.record(session, {
        "time": at.isoformat(timespec="microseconds") + "Z", "actor": {"id": staff_id, "role": role},
        "action": action, "outcome": {"result": "done"}, "state": {"from": state[0], "to": state[1]},
    })


def start(
    session: Session, staff: Staff, *, client: str, lifetime: timedelta, at: datetime | None = None,
    audited: bool = True,
) -> str:
    """Open a session for ``staff`` and return the cookie token (never stored). With
    ``audited`` (a login) a ``security.login`` entry is appended in the same transaction;
    a session continued after the user's own password change passes False (that change is
    its own entry)."""
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
    if audited:
        audit_session(session, "security.login", staff.id, _role(staff), (None, tag(token_id(token))), now)
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
    staff_id: int = 0
    role: str = "none"  # the holder's, for the expiry entry


def look_up(
    db: Session | Connection, token: str, *, idle: timedelta, at: datetime | None = None, touch: bool = False,
    cache: refdata.RefCache | None = None,
) -> tuple[Current | None, Pending | None]:
    """The live session for ``token`` and its (active) staff member, or None, reading only
    (works on a read-only session or connection), plus the write to make afterwards
    (:func:`apply`, in a write transaction) or None: the end of a session found expired, or
    ``last_seen`` moved when it is older than :data:`TOUCH_EVERY` seconds (or with ``touch``).
    So a request writes at most once a minute per session; ``last_seen`` lags by less than
    that, and the idle timeout may end a session up to :func:`touch_every` seconds early,
    never late.

    With ``cache`` (the app's :class:`partners.refdata.RefCache`) the reference-data version
    read beside the session row is observed for the rest of the request, and the staff member
    comes from that cache (staff is a watched table: any change to the row bumps the version
    in its own transaction, so a cached row is the row as of this very read)."""
    return look_up_id(db, token_id(token), idle=idle, at=at, touch=touch, cache=cache)


@functools.cache
def _session_row() -> Any:
    """The login session's times, its holder and the reference-data version
    (:mod:`partners.refdata`) by stored id (parameter ``session_id``): one Core select built
    once, as every request runs it (an ORM select of both rows cost more than the rest of a
    small page)."""
    table = LoginSession.__table__  # type: ignore[attr-defined]
    return (sa_select(table.c.staff_id, table.c.last_seen, table.c.expires_at, table.c.ended_at,
                      refdata.version_column())
            .where(table.c.id == bindparam("session_id")))


def _load_staff(db: Session | Connection, staff_id: int) -> Staff | None:
    """The staff row, loaded in a session of its own on ``db``'s connection and detached
    from it when that closes (so it may be cached and read by other threads)."""
    conn = db.connection() if isinstance(db, Session) else db
    with Session(bind=conn) as own:
        return own.get(Staff, staff_id)


def touch_every(idle: timedelta) -> float:
    """Seconds between writes of ``last_seen``: :data:`TOUCH_EVERY`, or a quarter of a
    shorter idle timeout (an idle timeout at or below the write interval would end a busy
    session)."""
    return min(TOUCH_EVERY, idle.total_seconds() / 4)


def look_up_id(
    db: Session | Connection, session_id: str, *, idle: timedelta, at: datetime | None = None,
    touch: bool = False, cache: refdata.RefCache | None = None,
) -> tuple[Current | None, Pending | None]:
    """:func:`look_up` by stored id (a live connection re-checking its login)."""
    now = at or utcnow()
    row = db.execute(_session_row(), {"session_id": session_id}).first()
    if row is None:
        return None, None
    staff_id, last_seen, expires_at, ended_at, ref_version = row
    ref_version = int(ref_version)
    if cache is not None:
        refdata.observe(cache, ref_version)
        staff = refdata.cached(("staff", staff_id), lambda: _load_staff(db, staff_id))
    else:
        staff = _load_staff(db, staff_id)
    if ended_at is not None or staff is None or not staff.active:
        return None, None
    if now >= expires_at or now - last_seen >= idle:
        return None, Pending(session_id, now, expire=True, staff_id=staff_id, role=_role(staff))
    pending = None
    if touch or (now - last_seen).total_seconds() >= touch_every(idle):
        pending, last_seen = Pending(session_id, now, expire=False), now
    idle_left = (last_seen + idle - now).total_seconds()
    expires_in = (expires_at - now).total_seconds()
    return Current(staff, session_id, idle_left, expires_in, ref_version), pending


def apply(session: Session, pending: Pending) -> bool:
    """Write what :func:`look_up` decided, as one conditional UPDATE (a session ended
    meanwhile stays ended; ``last_seen`` never moves backwards). The expiry is audited
    (``security.session.expire``) by the one caller whose UPDATE ended the session, and
    noted for ``web.live`` (its sockets close at once). True when a row changed."""
    table = LoginSession.__table__  # type: ignore[attr-defined]
    stmt = update(table).where(table.c.id == pending.session_id, table.c.ended_at.is_(None))
    if pending.expire:
        stmt = stmt.values(ended_at=pending.at, ended_reason="expired")
    else:
        stmt = stmt.where(table.c.last_seen < pending.at).values(last_seen=pending.at)
    changed = session.connection().execute(stmt).rowcount == 1
    if pending.expire and changed:
        login = session.get(LoginSession, pending.session_id, populate_existing=True)
        assert login is not None
        _note_ended(session, pending.staff_id, [pending.session_id])
        login.ended_reason = "expired"  # marks the row for a flush, so web.live's hook runs …
        session.add(login)
        session.flush()  # … and publishes the end before the audit entry (lock order)
        audit_session(session, "security.session.expire", pending.staff_id, pending.role,
                      (tag(pending.session_id), "expired"), pending.at)
    return changed


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
