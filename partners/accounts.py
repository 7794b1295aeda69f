"""Staff accounts: argon2id password hashes, login with lockout, account management.

Lockout: the 5th failed login in a row locks the account for 15 minutes; while locked even
the right password is refused. A successful login resets the counter. Unknown usernames
cost the same hashing time as known ones, so timing does not reveal who exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, select

from partners.authorize import LOCAL_TZ, as_utc_naive
from partners.errors import (
    AccountLocked,
    InvalidFields,
    LoginRefused,
    RecordNotFound,
)
from partners.models import (
    CENTER_ROLES,
    OUTLET_ROLES,
    BackupAssignment,
    Outlet,
    Role,
    Staff,
    utcnow,
)

__all__ = [
    "AccountLocked",
    "LoginRefused",
    "MAX_FAILED_LOGINS",
    "LOCKOUT",
    "hash_password",
    "verify_password",
    "authenticate",
    "create_staff",
    "update_staff",
    "reset_password",
    "add_backup",
    "end_backup",
]

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
EXPERT_LEVELS = {"city": "市级", "district": "区级", "town": "镇街级"}
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
_dummy: list[str] = []  # verified against unknown usernames so a miss costs as much as a hit

BAD_CREDENTIALS = "用户名或密码错误"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string with salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> str | None:
    """Raise :class:`LoginRefused` unless ``password`` matches ``password_hash``.

    Returns a fresh hash when the stored one uses outdated parameters (store it), else None.
    """
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise LoginRefused(BAD_CREDENTIALS) from None
    if _hasher.check_needs_rehash(password_hash):
        return _hasher.hash(password)
    return None


def authenticate(
    session: Session, username: str, password: str, *, at: datetime | None = None
) -> Staff:
    """Check a login and return the staff row, or raise :class:`LoginRefused`.

    Failures are counted and **committed before raising** (the caller's transaction would
    otherwise roll the counter back and lockout could never trigger).
    """
    now = as_utc_naive(at) if at else utcnow()
    staff = session.exec(select(Staff).where(Staff.username == username.strip())).first()
    if staff is None:
        if not _dummy:
            _dummy.append(_hasher.hash("not-a-real-password"))
        try:
            verify_password(_dummy[0], password)
        except LoginRefused:
            pass
        raise LoginRefused(BAD_CREDENTIALS)
    if staff.locked_until is not None and staff.locked_until > now:
        raise AccountLocked(_locked_message(staff.locked_until))
    try:
        new_hash = verify_password(staff.password_hash, password)
    except LoginRefused:
        _count_failure(session, staff, now)
        session.commit()
        if staff.locked_until is not None and staff.locked_until > now:
            raise AccountLocked(
                f"连续 {MAX_FAILED_LOGINS} 次密码错误，" + _locked_message(staff.locked_until)
            ) from None
        raise
    if not staff.active:
        raise LoginRefused("该账号已停用，请联系中心管理员")
    staff.failed_logins = 0
    staff.locked_until = None
    if new_hash:
        staff.password_hash = new_hash
    session.add(staff)
    session.flush()
    return staff


def _count_failure(session: Session, staff: Staff, now: datetime) -> None:
    if staff.locked_until is not None and staff.locked_until <= now:
        staff.failed_logins = 0  # an expired lock starts a fresh count
        staff.locked_until = None
    staff.failed_logins += 1
    if staff.failed_logins >= MAX_FAILED_LOGINS:
        staff.locked_until = now + LOCKOUT
        staff.failed_logins = 0
    session.add(staff)
    session.flush()


def _locked_message(until: datetime) -> str:
    shown = until.replace(tzinfo=UTC).astimezone(LOCAL_TZ).strftime("%H:%M")
    return f"账号已锁定，请于 {shown} 后重试或联系中心管理员解锁"


# --- account management ----------------------------------------------------------------
def _validate_staff(
    session: Session,
    *,
    roles: list[str] | set[str] | frozenset[str],
    outlet_id: int | None,
    domain: str | None,
    expert_level: str | None,
    display_name: str,
) -> dict[str, str]:
    from partners.catalog import DOMAINS

    errors: dict[str, str] = {}
    if not display_name.strip():
        errors["display_name"] = "请填写姓名"
    elif len(display_name) > 64:
        errors["display_name"] = "姓名不能超过 64 个字"
    known = {r.value for r in Role}
    role_set = set(roles)
    if not role_set:
        errors["roles"] = "请至少选择一个岗位"
    elif not role_set <= known:
        errors["roles"] = "岗位无效：" + "、".join(sorted(role_set - known))
    elif role_set & OUTLET_ROLES and role_set & CENTER_ROLES:
        errors["roles"] = "网点岗位与中心岗位不能同时授予同一账号"
    if role_set & OUTLET_ROLES:
        if outlet_id is None:
            errors["outlet_id"] = "网点岗位须选择所属网点"
        elif session.get(Outlet, outlet_id) is None:
            errors["outlet_id"] = "所选网点不存在"
    elif outlet_id is not None and role_set:
        errors["outlet_id"] = "中心岗位不属于任何网点"
    if domain and domain not in DOMAINS:
        errors["domain"] = "业务领域无效"
    if "expert" in role_set and expert_level not in EXPERT_LEVELS:
        errors["expert_level"] = "远程专家须选择层级（市级/区级/镇街级）"
    if expert_level and "expert" not in role_set:
        errors["expert_level"] = "只有远程专家设置层级"
    return errors


def _password_error(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if len(password) > 128:
        return "密码不能超过 128 位"
    return None


def create_staff(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: list[str] | set[str] | frozenset[str],
    outlet_id: int | None = None,
    outlet_code: str | None = None,
    domain: str | None = None,
    expert_level: str | None = None,
    phone: str = "",
    hasher: Callable[[str], str] | None = None,
) -> Staff:
    """Validate and add a staff account (flushed, so it has an id). Raises InvalidFields.

    The outlet is given by id or by code (the CLI uses codes). ``hasher`` replaces
    :func:`hash_password` (the demo seed reuses one hash for its shared password)."""
    username = username.strip()
    errors: dict[str, str] = {}
    if outlet_code:
        outlet_id = session.exec(
            select(Outlet.id).where(Outlet.code == outlet_code.strip().upper())
        ).first()
        if outlet_id is None:
            raise InvalidFields({"outlet_id": f"网点编码 {outlet_code} 不存在"})
    if not USERNAME_RE.match(username):
        errors["username"] = "用户名须为 3–32 位小写字母、数字或 . _ -，以字母开头"
    elif session.exec(select(Staff.id).where(Staff.username == username)).first() is not None:
        errors["username"] = "用户名已存在"
    errors.update(
        _validate_staff(
            session,
            roles=roles,
            outlet_id=outlet_id,
            domain=domain or None,
            expert_level=expert_level or None,
            display_name=display_name,
        )
    )
    if (problem := _password_error(password)) is not None:
        errors["password"] = problem
    if errors:
        raise InvalidFields(errors)
    staff = Staff(
        username=username,
        display_name=display_name.strip(),
        password_hash=(hasher or hash_password)(password),
        outlet_id=outlet_id,
        roles=",".join(sorted(set(roles))),
        domain=domain or None,
        expert_level=expert_level or None,
        phone=phone.strip(),
    )
    session.add(staff)
    session.flush()
    return staff


def update_staff(session: Session, staff: Staff, **changes: Any) -> Staff:
    """Change display_name, roles, outlet_id, domain, expert_level, phone or active."""
    allowed = {"display_name", "roles", "outlet_id", "domain", "expert_level", "phone", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    roles = changes.get("roles", staff.role_set)
    merged = {
        "display_name": changes.get("display_name", staff.display_name),
        "outlet_id": changes.get("outlet_id", staff.outlet_id),
        "domain": changes.get("domain", staff.domain) or None,
        "expert_level": changes.get("expert_level", staff.expert_level) or None,
    }
    errors = _validate_staff(session, roles=roles, **merged)
    if errors:
        raise InvalidFields(errors)
    staff.display_name = str(merged["display_name"]).strip()
    staff.roles = ",".join(sorted(set(roles)))
    staff.outlet_id = merged["outlet_id"]
    staff.domain = merged["domain"]
    staff.expert_level = merged["expert_level"]
    if "phone" in changes:
        staff.phone = str(changes["phone"]).strip()
    if "active" in changes:
        staff.active = bool(changes["active"])
    session.add(staff)
    session.flush()
    return staff


def reset_password(session: Session, staff: Staff, password: str) -> None:
    """Set a new password and lift any lockout."""
    if (problem := _password_error(password)) is not None:
        raise InvalidFields({"password": problem})
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    session.add(staff)
    session.flush()


def add_backup(
    session: Session,
    *,
    holder_id: int,
    backup_id: int,
    valid_from: date,
    valid_to: date | None = None,
    note: str = "",
) -> BackupAssignment:
    """AB角: ``backup_id`` covers ``holder_id``'s post (and outlet) for the period."""
    holder = session.get(Staff, holder_id)
    backup = session.get(Staff, backup_id)
    errors: dict[str, str] = {}
    if holder is None:
        errors["holder_id"] = "A 角人员不存在"
    if backup is None:
        errors["backup_id"] = "B 角人员不存在"
    elif holder is not None:
        if holder.id == backup.id:
            errors["backup_id"] = "B 角不能是本人"
        elif not (holder.role_set & backup.role_set):
            errors["backup_id"] = "B 角须具备 A 角的至少一个岗位"
        elif not backup.active:
            errors["backup_id"] = "B 角账号已停用"
    if valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = "结束日期不能早于开始日期"
    if len(note) > 255:
        errors["note"] = "备注不能超过 255 个字"
    if errors:
        raise InvalidFields(errors)
    assignment = BackupAssignment(
        holder_id=holder_id,
        backup_id=backup_id,
        valid_from=valid_from,
        valid_to=valid_to,
        note=note,
    )
    session.add(assignment)
    session.flush()
    return assignment


def end_backup(session: Session, assignment_id: int, last_day: date) -> BackupAssignment:
    """End an AB角 assignment after ``last_day`` (inclusive)."""
    assignment = session.get(BackupAssignment, assignment_id)
    if assignment is None:
        raise RecordNotFound("AB 角安排不存在")
    if last_day < assignment.valid_from:  # never took effect: make it an empty period
        last_day = assignment.valid_from - timedelta(days=1)
    assignment.valid_to = (
        last_day if assignment.valid_to is None else min(assignment.valid_to, last_day)
    )
    session.add(assignment)
    session.flush()
    return assignment
