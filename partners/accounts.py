"""Staff accounts: argon2id password hashes, login, password rules, account management.

Login failures are throttled by the web layer (:mod:`web.throttle`, per address and per
login name with growing delays), not by locking accounts: a lock is a denial of service any
stranger can trigger. Unknown usernames cost the same hashing time as known ones and get
the same answer, so neither timing nor wording reveals who exists.

Separation of duties (三员分立, GB/T 22239-2019 8.1.4.2 c): system administration
(``admin``), security administration (``security_admin``: accounts, roles, passwords,
sessions) and audit (``auditor``) are :data:`~partners.models.DUTY_ROLES`; no account holds
two of them. A password reset of a duty holder through the web needs a second security
admin (:func:`reset_password` leaves it pending, :func:`approve_reset`) or the server's CLI.

Passwords (GB/T 22239-2019 8.1.4.1 a): at least :data:`MIN_PASSWORD_LENGTH` characters, not
in the shipped common-password list, not containing the login name. Accounts whose
password someone else chose must change it at first login (``must_change_password``).
Every password change, reset, role change and deactivation ends all of the user's
sessions (:func:`partners.logins.end_all`) in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, select

from partners import logins
from partners.errors import (
    DutyRuleRefused,
    InvalidFields,
    LoginRefused,
    RecordNotFound,
    RoleLacksAction,
)
from partners.models import (
    CENTER_ROLES,
    DUTY_ROLES,
    OUTLET_ROLES,
    PARTNER_ROLES,
    ROLE_LABELS,
    BackupAssignment,
    Outlet,
    Partner,
    Role,
    Staff,
    utcnow,
)

__all__ = [
    "LoginRefused",
    "MIN_PASSWORD_LENGTH",
    "hash_password",
    "verify_password",
    "authenticate",
    "password_problem",
    "create_staff",
    "update_staff",
    "change_password",
    "reset_password",
    "approve_reset",
    "needs_second_person_for_roles",
    "needs_second_person_to_deactivate",
    "decide_roles",
    "add_backup",
    "end_backup",
]

MIN_PASSWORD_LENGTH = 10
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


def authenticate(session: Session, username: str, password: str) -> Staff:
    """Check a login and return the staff row, or raise :class:`LoginRefused`.

    Unknown users and wrong passwords both answer :data:`BAD_CREDENTIALS` after one argon2
    verification, so the answer and its timing are the same whoever exists.
    """
    staff = session.exec(select(Staff).where(Staff.username == username.strip())).first()
    if staff is None:
        if not _dummy:
            _dummy.append(_hasher.hash("not-a-real-password"))
        try:
            verify_password(_dummy[0], password)
        except LoginRefused:
            pass
        raise LoginRefused(BAD_CREDENTIALS)
    try:
        new_hash = verify_password(staff.password_hash, password)
    except LoginRefused:
        raise LoginRefused(BAD_CREDENTIALS, staff_id=staff.id) from None
    if not staff.active:  # told only to someone who knows the password
        raise LoginRefused("该账号已停用，请联系安全管理员", staff_id=staff.id, reason="inactive")
    if new_hash:
        staff.password_hash = new_hash
        session.add(staff)
        session.flush()
    return staff


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (``partners/data/common_passwords.txt``), lower-cased."""
    text = resources.files("partners").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


PUBLISHED_MARK = "demo12345"  # the published demo password, letters and digits only


def password_problem(password: str, username: str = "", *, demo_seed: bool = False) -> str | None:
    """Why ``password`` is not acceptable (a Chinese message), or None. Refused: shorter than
    :data:`MIN_PASSWORD_LENGTH`, containing the login name, in the common-password list, or
    built on the published demo password (``demo-12345`` in any case or punctuation).
    ``demo_seed`` lets only the demo seed use the demo password for its printed logins."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if len(password) > 128:
        return "密码不能超过 128 位"
    if username and username.strip().lower() in password.lower():
        return "密码不能包含用户名"
    if demo_seed:
        return None
    if PUBLISHED_MARK in re.sub(r"[^0-9a-z]", "", password.lower()):
        return "这是公开的演示密码，不能使用"
    if password.lower() in common_passwords():
        return "该密码过于常见，请换一个"
    return None


# --- account management ----------------------------------------------------------------
def _validate_staff(
    session: Session,
    *,
    roles: list[str] | set[str] | frozenset[str],
    outlet_id: int | None,
    domain: str | None,
    expert_level: str | None,
    display_name: str,
    partner_id: int | None = None,
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
    elif role_set & PARTNER_ROLES and len(role_set) > 1:
        errors["roles"] = "合作方管理员不能兼任其他岗位"
    elif len(role_set & DUTY_ROLES) > 1:
        errors["roles"] = "三员分立：" + "、".join(
            ROLE_LABELS[r] for r in sorted(role_set & DUTY_ROLES)
        ) + " 不能由同一账号兼任"
    if role_set & OUTLET_ROLES:
        if outlet_id is None:
            errors["outlet_id"] = "网点岗位须选择所属网点"
        elif session.get(Outlet, outlet_id) is None:
            errors["outlet_id"] = "所选网点不存在"
    elif outlet_id is not None and role_set & PARTNER_ROLES:
        errors["outlet_id"] = "合作方管理员不属于某一网点，请选择所属合作机构"
    elif outlet_id is not None and role_set:
        errors["outlet_id"] = "中心岗位不属于任何网点"
    if role_set & PARTNER_ROLES:
        if partner_id is None:
            errors["partner_id"] = "合作方管理员须选择所属合作机构"
        elif session.get(Partner, partner_id) is None:
            errors["partner_id"] = "所选合作机构不存在"
    elif partner_id is not None:
        errors["partner_id"] = "只有合作方管理员设置所属合作机构"
    if domain and domain not in DOMAINS:
        errors["domain"] = "业务领域无效"
    if "expert" in role_set and expert_level not in EXPERT_LEVELS:
        errors["expert_level"] = "远程专家须选择层级（市级/区级/镇街级）"
    if expert_level and "expert" not in role_set:
        errors["expert_level"] = "只有远程专家设置层级"
    return errors


def _refuse(errors: dict[str, str], roles: list[str] | set[str] | frozenset[str]) -> None:
    """Raise for ``errors``: a duty conflict is a refusal (audited), the rest form errors."""
    if len(set(roles) & DUTY_ROLES) > 1:
        raise DutyRuleRefused(errors=errors)
    raise InvalidFields(errors)


def needs_second_person_for_roles(actor: Staff | None, before: set[str] | frozenset[str],
                                  after: set[str] | frozenset[str]) -> bool:
    """Granting or removing a duty role (admin, security admin, auditor) through the web
    needs a second security admin; the server's CLI (``actor`` None) and the demo seed do
    not. (Removing one matters as much as granting it: one security admin must not be able
    to demote the other, who would then no longer see or approve anything.)"""
    return actor is not None and bool((set(after) ^ set(before)) & DUTY_ROLES)


def needs_second_person_to_deactivate(actor: Staff | None, staff: Staff) -> bool:
    """Deactivating a duty holder through the web needs a second security admin too."""
    return actor is not None and bool(staff.role_set & DUTY_ROLES)


def create_staff(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: list[str] | set[str] | frozenset[str],
    outlet_id: int | None = None,
    outlet_code: str | None = None,
    partner_id: int | None = None,
    partner_code: str | None = None,
    domain: str | None = None,
    expert_level: str | None = None,
    phone: str = "",
    hasher: Callable[[str], str] | None = None,
    must_change_password: bool = True,
    demo_seed: bool = False,
    actor: Staff | None = None,
) -> Staff:
    """Validate and add a staff account (flushed, so it has an id). Raises InvalidFields.

    Someone else chose the password, so by default it must be changed at first login.

    An account with a duty role created by ``actor`` (the web) stays inactive until a second
    security admin approves it (:func:`decide_roles`); the CLI passes no actor.

    The outlet is given by id or by code (the CLI uses codes); the partner (id or code) only
    for a 合作方管理员. ``hasher`` replaces
    :func:`hash_password` (the demo seed reuses one hash for its shared password, and passes
    ``demo_seed`` to use the published demo password, refused everywhere else)."""
    username = username.strip()
    errors: dict[str, str] = {}
    if outlet_code:
        outlet_id = session.exec(
            select(Outlet.id).where(Outlet.code == outlet_code.strip().upper())
        ).first()
        if outlet_id is None:
            raise InvalidFields({"outlet_id": f"网点编码 {outlet_code} 不存在"})
    if partner_code:
        partner_id = session.exec(
            select(Partner.id).where(Partner.code == partner_code.strip().upper())
        ).first()
        if partner_id is None:
            raise InvalidFields({"partner_id": f"合作机构编码 {partner_code} 不存在"})
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
            partner_id=partner_id,
        )
    )
    if (problem := password_problem(password, username, demo_seed=demo_seed)) is not None:
        errors["password"] = problem
    if errors:
        _refuse(errors, roles)
    pending = needs_second_person_for_roles(actor, set(), set(roles))
    staff = Staff(
        username=username,
        display_name=display_name.strip(),
        password_hash=(hasher or hash_password)(password),
        outlet_id=outlet_id,
        partner_id=partner_id,
        roles=",".join(sorted(set(roles))),
        domain=domain or None,
        expert_level=expert_level or None,
        phone=phone.strip(),
        must_change_password=must_change_password,
        active=not pending,
    )
    if pending:
        assert actor is not None
        staff.pending_roles, staff.pending_roles_by = staff.roles, actor.id
        staff.pending_roles_at, staff.pending_activation = utcnow(), True
    session.add(staff)
    session.flush()
    return staff


def update_staff(session: Session, staff: Staff, *, actor: Staff | None = None, **changes: Any) -> Staff:
    """Change display_name, roles, outlet_id, partner_id, domain, expert_level, phone or active.

    A duty role given or taken away by ``actor`` (the web), or the deactivation of a duty
    holder, is not applied: it waits in ``pending_roles`` (and ``pending_deactivation``) for a
    second security admin (:func:`decide_roles`); an account created with a duty role stays
    inactive until then. Ending sessions: a role change, deactivation, or a move to another
    outlet, partner, domain or expert level ends all of the user's sessions (their pages and
    live connections were scoped to the old post). Raises InvalidFields, DutyRuleRefused."""
    allowed = {"display_name", "roles", "outlet_id", "partner_id", "domain", "expert_level",
               "phone", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    roles = changes.get("roles", staff.role_set)
    merged = {
        "display_name": changes.get("display_name", staff.display_name),
        "outlet_id": changes.get("outlet_id", staff.outlet_id),
        "partner_id": changes.get("partner_id", staff.partner_id),
        "domain": changes.get("domain", staff.domain) or None,
        "expert_level": changes.get("expert_level", staff.expert_level) or None,
    }
    errors = _validate_staff(session, roles=roles, **merged)
    if errors:
        _refuse(errors, roles)
    if staff.pending_activation:
        changes["active"] = False  # activated only by the second person's approval
        staff.pending_roles = ",".join(sorted(set(roles)))
        if actor is not None:  # whoever shaped the request last may not approve it
            staff.pending_roles_by, staff.pending_roles_at = actor.id, utcnow()
    else:
        deactivating = "active" in changes and staff.active and not changes["active"]
        hold_deactivation = deactivating and needs_second_person_to_deactivate(actor, staff)
        if hold_deactivation or needs_second_person_for_roles(actor, staff.role_set, set(roles)):
            assert actor is not None
            staff.pending_roles, staff.pending_roles_by = ",".join(sorted(set(roles))), actor.id
            staff.pending_roles_at, staff.pending_deactivation = utcnow(), hold_deactivation
            roles = staff.role_set  # unchanged until approved
            if hold_deactivation:
                changes["active"] = True
    new_roles = ",".join(sorted(set(roles)))
    deactivated = "active" in changes and staff.active and not changes["active"]
    moved = (merged["partner_id"] != staff.partner_id  # another partner's figures: log in again
             or (staff.outlet_id is not None and merged["outlet_id"] != staff.outlet_id)  # another outlet
             # an expert's or reviewer's live feeds are filtered by domain and level
             or merged["domain"] != staff.domain or merged["expert_level"] != staff.expert_level)
    if staff.id is not None and (deactivated or moved or new_roles != staff.roles):
        logins.end_all(session, staff.id, "deactivated" if deactivated else "roles")
    staff.display_name = str(merged["display_name"]).strip()
    staff.roles = new_roles
    staff.outlet_id = merged["outlet_id"]
    staff.partner_id = merged["partner_id"]
    staff.domain = merged["domain"]
    staff.expert_level = merged["expert_level"]
    if "phone" in changes:
        staff.phone = str(changes["phone"]).strip()
    if "active" in changes:
        staff.active = bool(changes["active"])
    session.add(staff)
    session.flush()
    return staff


def _set_password(session: Session, staff: Staff, password_hash: str, *, by_self: bool) -> None:
    staff.password_hash = password_hash
    staff.must_change_password = not by_self
    staff.pending_password_hash = staff.pending_reset_by = staff.pending_reset_at = None
    session.add(staff)
    assert staff.id is not None
    logins.end_all(session, staff.id, "password")
    session.flush()


def change_password(session: Session, staff: Staff, current: str, new: str) -> None:
    """The user's own change: checks ``current``, applies the rules, ends all sessions.
    Raises InvalidFields (``current_password`` / ``new_password``)."""
    try:
        verify_password(staff.password_hash, current)
    except LoginRefused:
        raise InvalidFields({"current_password": "当前密码不正确"}) from None
    if (problem := password_problem(new, staff.username)) is not None:
        raise InvalidFields({"new_password": problem})
    if new == current:
        raise InvalidFields({"new_password": "新密码不能与当前密码相同"})
    _set_password(session, staff, hash_password(new), by_self=True)


def needs_second_person(actor: Staff | None, staff: Staff) -> bool:
    """A reset of a duty holder's password (admin, security admin, auditor) needs a second
    security admin; ``actor`` None is the server's CLI, which needs no second person."""
    return actor is not None and bool(staff.role_set & DUTY_ROLES)


def reset_password(session: Session, staff: Staff, password: str, *, actor: Staff | None) -> bool:
    """Set a password someone else chose (changed at next login). Returns True when it took
    effect, False when it waits for a second security admin (:func:`approve_reset`).
    Raises InvalidFields, or RoleLacksAction for a reset of one's own password."""
    if (problem := password_problem(password, staff.username)) is not None:
        raise InvalidFields({"password": problem})
    if actor is not None and actor.id == staff.id:
        raise RoleLacksAction("不能重置自己的密码，请在“修改密码”中修改")
    if needs_second_person(actor, staff):
        assert actor is not None
        staff.pending_password_hash = hash_password(password)
        staff.pending_reset_by = actor.id
        staff.pending_reset_at = utcnow()
        session.add(staff)
        session.flush()
        return False
    _set_password(session, staff, hash_password(password), by_self=False)
    return True


def approve_reset(session: Session, staff: Staff, *, approver: Staff) -> None:
    """The second person approves a pending reset (not the requester, not the account's
    holder). Raises RecordNotFound when nothing is pending, RoleLacksAction otherwise."""
    if staff.pending_password_hash is None:
        raise RecordNotFound("没有待批准的密码重置")
    if approver.id in (staff.pending_reset_by, staff.id):
        raise RoleLacksAction("双人复核：须由另一名安全管理员批准")
    _set_password(session, staff, staff.pending_password_hash, by_self=False)


def decide_roles(session: Session, staff: Staff, *, approver: Staff, approve: bool) -> None:
    """The second person approves (or refuses) a pending duty-role change (grant or removal),
    a duty holder's deactivation, or a new duty account: not the requester, not the
    account's holder. Approval applies the roles or the deactivation (ending the holder's
    sessions) or activates a new account. Raises RecordNotFound when nothing is pending,
    DutyRuleRefused for one's own request or account."""
    if staff.pending_roles is None:
        raise RecordNotFound("没有待批准的岗位授予")
    if approver.id in (staff.pending_roles_by, staff.id):
        raise DutyRuleRefused("双人复核：须由另一名安全管理员批准", field="pending_roles")
    roles = set(staff.pending_roles.split(","))
    if approve:
        errors = _validate_staff(session, roles=roles, outlet_id=staff.outlet_id, domain=staff.domain,
                                 expert_level=staff.expert_level, display_name=staff.display_name)
        if errors:
            _refuse(errors, roles)
        assert staff.id is not None
        if staff.pending_activation:
            staff.active = True
        elif staff.pending_deactivation:
            staff.active = False
            logins.end_all(session, staff.id, "deactivated")
        elif staff.role_set != roles:
            logins.end_all(session, staff.id, "roles")
        staff.roles = ",".join(sorted(roles))
    staff.pending_roles = staff.pending_roles_by = staff.pending_roles_at = None
    staff.pending_activation = staff.pending_deactivation = False
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
