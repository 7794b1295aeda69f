"""Staff accounts: argon2id password hashes, login, password rules, account management.

Login failures are throttled by the web layer (:mod:`web.throttle`, per address and per
login name with growing delays), not by locking accounts: a lock is a denial of service any
stranger can trigger. Unknown usernames cost the same hashing time as known ones and get
the same answer, so neither timing nor wording reveals who exists.

Separation of duties (三员分立, GB/T 22239-2019 8.1.4.2 c): system administration
(``admin``), security administration (``security_admin``: accounts, roles, passwords,
sessions) and audit (``auditor``) are :data:`~partners.models.DUTY_ROLES`; no account holds
two of them, and a duty holder holds no business role either. A password reset of a duty holder through the web, a duty role granted or taken
away, and the deactivation or (re)activation of a duty holder need a second security admin:
each waits as the account's one pending request (:func:`settle_request`), or is done with the
server's CLI. Nobody chooses a password for someone else through the web: a reset sets a
one-time password the server generates (:func:`one_time_password`), shown once to whoever
applied it.

Passwords (GB/T 22239-2019 8.1.4.1 a): at least :data:`MIN_PASSWORD_LENGTH` characters, not
in the shipped common-password list, not containing the login name. Accounts whose
password someone else chose must change it at first login (``must_change_password``).
Every password change, reset, role change and deactivation ends all of the user's
sessions (:func:`partners.logins.end_all`) in the same transaction.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from partners import logins
from partners.authorize import LOCAL_TZ
from partners.errors import (
    DutyRuleRefused,
    InvalidFields,
    LoginRefused,
    RecordNotFound,
    RequestPending,
)
from partners.models import (
    CENTER_ROLES,
    DUTY_ROLES,
    OUTLET_ROLES,
    PARTNER_ROLES,
    PENDING_KINDS,
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
    "one_time_password",
    "settle_request",
    "pending_requests",
    "add_backup",
    "end_backup",
]

MIN_PASSWORD_LENGTH = 10
EXPERT_LEVELS = {"city": "市级", "district": "区级", "town": "镇街级"}
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
_dummy: list[str] = []  # verified against unknown usernames so a miss costs as much as a hit

BAD_CREDENTIALS = "用户名或密码错误"
DUTY_PASSWORD_AT_APPROVAL = ("管理员、安全管理员、审计人员账号不设初始密码（请留空）：批准启用时系统生成一次性密码，"
                             "只向批准人显示")


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
    elif _duty_conflict(role_set):
        errors["roles"] = "三员分立：" + "、".join(
            ROLE_LABELS[r] for r in sorted(role_set & DUTY_ROLES)
        ) + (" 不能由同一账号兼任" if len(role_set & DUTY_ROLES) > 1 else " 不能兼任业务岗位（"
             + "、".join(ROLE_LABELS[r] for r in sorted(role_set - DUTY_ROLES)) + "）")
    elif role_set & OUTLET_ROLES and role_set & CENTER_ROLES:
        errors["roles"] = "网点岗位与中心岗位不能同时授予同一账号"
    elif role_set & PARTNER_ROLES and len(role_set) > 1:
        errors["roles"] = "合作方管理员不能兼任其他岗位"
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


def _duty_conflict(roles: set[str] | frozenset[str]) -> bool:
    """三员分立: a duty role (admin, security admin, auditor) goes with no other role at all —
    neither a second duty nor a business role (teller, reviewer, expert…)."""
    return bool(roles & DUTY_ROLES) and len(roles) > 1


def _refuse(errors: dict[str, str], roles: list[str] | set[str] | frozenset[str]) -> None:
    """Raise for ``errors``: a duty conflict is a refusal (audited), the rest form errors."""
    if _duty_conflict(set(roles)):
        raise DutyRuleRefused(errors=errors)
    raise InvalidFields(errors)


POST_FIELDS = ("outlet_id", "partner_id", "domain", "expert_level")


def _second_person_kind(actor: Staff | None, staff: Staff, roles: set[str], active: bool) -> str | None:
    """Which request (a key of PENDING_KINDS) a change by ``actor`` must wait as, or None.

    Through the web (``actor`` given; the CLI and the demo seed pass None) a second security
    admin must approve: deactivating a duty holder, (re)activating an account that will hold
    a duty, and granting or removing a duty role (removing matters as much as granting: one
    security admin must not be able to demote the other, who would then approve nothing)."""
    if actor is None:
        return None
    if staff.active and not active and staff.role_set & DUTY_ROLES:
        return "deactivation"
    if not staff.active and active and roles & DUTY_ROLES:
        return "activation"
    if (roles ^ staff.role_set) & DUTY_ROLES:
        return "roles"
    return None


def _refuse_if_pending(session: Session, staff: Staff) -> None:
    """One pending request per account: raise :class:`RequestPending` (409) naming what is
    pending and who asked, never replace it silently."""
    if staff.pending_kind is None:
        return
    who = session.get(Staff, staff.pending_by) if staff.pending_by else None
    when = staff.pending_at.replace(tzinfo=UTC).astimezone(LOCAL_TZ).strftime("%m-%d %H:%M") if staff.pending_at else ""
    raise RequestPending(
        f"该账号已有一项待批准的{PENDING_KINDS.get(staff.pending_kind, staff.pending_kind)}申请"
        f"（{who.display_name if who else '另一名安全管理员'} {when} 提出）：须先由另一名安全管理员批准或驳回，"
        "或由申请人撤销，才能提出新的申请"
    )


def _hold(session: Session, staff: Staff, kind: str, actor: Staff, *, roles: str | None = None,
          post: dict[str, Any] | None = None) -> None:
    """Make ``kind`` the account's pending request; nothing of it applies now."""
    _refuse_if_pending(session, staff)
    staff.pending_kind, staff.pending_by, staff.pending_at = kind, actor.id, utcnow()
    staff.pending_roles = roles
    staff.pending_post = json.dumps(post, sort_keys=True) if post else None


def _clear_pending(staff: Staff) -> None:
    staff.pending_kind = staff.pending_by = staff.pending_at = None
    staff.pending_roles = staff.pending_post = None


def _apply_post(session: Session, staff: Staff, roles: set[str] | frozenset[str], post: dict[str, Any]) -> None:
    """Set roles and the changed post fields (``POST_FIELDS`` and ``active``). A role change,
    deactivation, or a move to another outlet, partner, domain or expert level ends all of
    the user's sessions (their pages and live feeds were scoped to the old post)."""
    new_roles = ",".join(sorted(roles))
    deactivated = staff.active and not post.get("active", True)
    moved = ("partner_id" in post or (staff.outlet_id is not None and "outlet_id" in post)
             or "domain" in post or "expert_level" in post)
    if staff.id is not None and (deactivated or moved or new_roles != staff.roles):
        logins.end_all(session, staff.id, "deactivated" if deactivated else "roles")
    staff.roles = new_roles
    for name, value in post.items():
        setattr(staff, name, value)


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

    An account with a duty role created by ``actor`` (the web) carries no chosen password
    (``password`` must be empty, else InvalidFields) and stays inactive until a second
    security admin approves it (:func:`settle_request`), who alone sees the one-time password
    generated then; the CLI passes no actor and the password typed on the server.

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
    pending = actor is not None and bool(set(roles) & DUTY_ROLES)
    if pending:  # the approver gets the first password (settle_request), nobody chooses it
        if password:
            errors["password"] = DUTY_PASSWORD_AT_APPROVAL
        password = secrets.token_urlsafe(32)  # never shown: the account has no usable password yet
    elif (problem := password_problem(password, username, demo_seed=demo_seed)) is not None:
        errors["password"] = problem
    if errors:
        _refuse(errors, roles)
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
        _hold(session, staff, "activation", actor, roles=staff.roles)
    session.add(staff)
    session.flush()
    return staff


def update_staff(session: Session, staff: Staff, *, actor: Staff | None = None, **changes: Any) -> Staff:
    """Change display_name, roles, outlet_id, partner_id, domain, expert_level, phone or active.

    A change that needs a second security admin (:func:`_second_person_kind`: a duty role
    given or taken away by ``actor``, deactivating a duty holder, activating an account that
    will hold a duty) waits whole as the account's pending request — roles, post and state
    alike; only the name and phone apply now. While a request is pending, any other change
    of roles, post or state is refused (:class:`RequestPending`, 409). Changes that apply
    end the user's sessions as :func:`_apply_post` says. Raises InvalidFields,
    DutyRuleRefused, RequestPending."""
    allowed = {"display_name", "roles", "outlet_id", "partner_id", "domain", "expert_level",
               "phone", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    roles = set(changes.get("roles", staff.role_set))
    merged = {
        "outlet_id": changes.get("outlet_id", staff.outlet_id),
        "partner_id": changes.get("partner_id", staff.partner_id),
        "domain": changes.get("domain", staff.domain) or None,
        "expert_level": changes.get("expert_level", staff.expert_level) or None,
    }
    display_name = changes.get("display_name", staff.display_name)
    errors = _validate_staff(session, roles=roles, display_name=display_name, **merged)
    if errors:
        _refuse(errors, roles)
    active = bool(changes.get("active", staff.active))
    post: dict[str, Any] = {k: v for k, v in merged.items() if v != getattr(staff, k)}
    if active != staff.active:
        post["active"] = active
    if post or roles != staff.role_set:
        kind = _second_person_kind(actor, staff, roles, active)
        if kind is not None:
            assert actor is not None
            _hold(session, staff, kind, actor, roles=",".join(sorted(roles)), post=post)
        else:
            _refuse_if_pending(session, staff)
            _apply_post(session, staff, roles, post)
    staff.display_name = str(display_name).strip()
    if "phone" in changes:
        staff.phone = str(changes["phone"]).strip()
    session.add(staff)
    session.flush()
    return staff


def _set_password(session: Session, staff: Staff, password_hash: str, *, by_self: bool) -> None:
    staff.password_hash = password_hash
    staff.must_change_password = not by_self
    if staff.pending_kind == "reset":  # whatever password is set now, a pending reset is moot
        _clear_pending(staff)
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


OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I look-alikes


def one_time_password(username: str = "") -> str:
    """A password for a reset: 16 characters drawn with :mod:`secrets` from
    :data:`OTP_ALPHABET` (≈ 92 bits), passing :func:`password_problem` for ``username``. It is
    shown once to whoever applied the reset, stored only as its argon2 hash, and must be
    changed at first login."""
    while True:
        password = "".join(secrets.choice(OTP_ALPHABET) for _ in range(16))
        if password_problem(password, username) is None:
            return password


def reset_password(session: Session, staff: Staff, password: str | None = None, *,
                   actor: Staff | None) -> str | None:
    """Reset ``staff``'s password; the holder must change it at next login and all their
    sessions end. Returns the password now in force, or None when the reset waits for a
    second security admin (:func:`settle_request`).

    Through the web (``actor`` given) nobody chooses the password: the server generates a
    one-time password (:func:`one_time_password`), at once for an ordinary account, at
    approval for a duty holder (admin, security admin, auditor) — the request holds no
    password. The server's CLI (``actor`` None) passes the ``password`` typed on the server.
    Raises InvalidFields (CLI password), DutyRuleRefused (one's own account),
    RequestPending (another request is pending), ValueError (a web reset with a password)."""
    if actor is None:
        if password is None:
            password = one_time_password(staff.username)
        if (problem := password_problem(password, staff.username)) is not None:
            raise InvalidFields({"password": problem})
        _set_password(session, staff, hash_password(password), by_self=False)
        return password
    if password is not None:
        raise ValueError("a web reset never carries a chosen password")
    if actor.id == staff.id:
        raise DutyRuleRefused("不能重置自己的密码，请在“修改密码”中修改", field="password")
    if staff.role_set & DUTY_ROLES:
        _hold(session, staff, "reset", actor)
        session.add(staff)
        session.flush()
        return None
    _refuse_if_pending(session, staff)
    password = one_time_password(staff.username)
    _set_password(session, staff, hash_password(password), by_self=False)
    return password


DECISIONS = ("approve", "refuse", "cancel")


def settle_request(session: Session, staff: Staff, *, actor: Staff, decision: str) -> str | None:
    """Settle ``staff``'s pending request, whatever its kind (reset, roles, activation,
    deactivation): ``approve`` applies it whole (roles, post and state, ending the holder's
    sessions as :func:`_apply_post` says), ``refuse`` or ``cancel`` drops it. An approved
    reset, and an approval that makes the account a duty holder (a duty role granted, or a
    duty account activated — new or re-activated), set a generated one-time password that is
    returned — show it once to the approver, never store or log it — so the requester, who
    may have chosen or reset the old password, never holds a duty holder's login.

    The two-person rule: the account's holder settles nothing about their own account; the
    requester may only cancel; any other security admin may approve, refuse or cancel.
    Returns the one-time password (approved reset or duty grant), else None. Raises RecordNotFound
    (nothing pending), DutyRuleRefused (the holder, or the requester approving/refusing),
    InvalidFields (an approval the rules no longer allow), ValueError (unknown decision)."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    if staff.pending_kind is None:
        raise RecordNotFound("该账号没有待批准的申请")
    if actor.id == staff.id:
        raise DutyRuleRefused("双人复核：不能处理与本人账号有关的申请", field="pending")
    if actor.id == staff.pending_by and decision != "cancel":
        raise DutyRuleRefused("双人复核：须由申请人以外的另一名安全管理员批准或驳回（申请人可以撤销申请）",
                              field="pending")
    password = None
    if decision == "approve":
        if staff.pending_kind == "reset":
            password = one_time_password(staff.username)
            _set_password(session, staff, hash_password(password), by_self=False)
        else:
            kind = staff.pending_kind
            roles = set((staff.pending_roles or staff.roles).split(",")) - {""}
            post = json.loads(staff.pending_post or "{}")
            # the kind names the state change (requests migrated from before pending_post)
            post.setdefault("active", {"activation": True, "deactivation": False}.get(staff.pending_kind, staff.active))
            fields = {k: post.get(k, getattr(staff, k)) for k in POST_FIELDS}
            errors = _validate_staff(session, roles=roles, display_name=staff.display_name, **fields)
            if errors:
                _refuse(errors, roles)
            gains_duty = bool((roles - staff.role_set) & DUTY_ROLES) or (kind == "activation" and roles & DUTY_ROLES)
            _apply_post(session, staff, roles, post)
            if gains_duty:  # whatever password the requester set or knew ends here
                password = one_time_password(staff.username)
                _set_password(session, staff, hash_password(password), by_self=False)
    _clear_pending(staff)
    session.add(staff)
    session.flush()
    return password


def pending_requests(session: Session) -> list[Staff]:
    """Every account with a pending request, oldest request first."""
    stmt = select(Staff).where(col(Staff.pending_kind).is_not(None)).order_by(col(Staff.pending_at))
    return list(session.exec(stmt).all())


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
