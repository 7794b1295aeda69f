"""``servicepoint demo``: seed a realistic demo (see :mod:`partners.demo_data`).

Seeding is setup, not a delegated action: rows are inserted directly in one transaction,
but through the same validation helpers the admin UI uses. Idempotent: when any staff
account exists, nothing is done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners import demo_data as data
from partners.accounts import add_backup, create_staff, hash_password
from partners.authorize import local_day
from partners.catalog import create_matter, current_version, edit_matter, version_as_form
from partners.directory import save_agreement, save_outlet, save_partner
from partners.grants import add_grant
from partners.models import ROLE_LABELS, Agreement, Matter, Outlet, Partner, Staff, utcnow

DEMO_PASSWORD = "demo-12345"
_OUTLET_NAMES = {row[0]: row[3] for row in data.OUTLETS}
_PARTNER_NAMES = {row[0]: row[1] for row in data.PARTNERS}
# (username, role label, where) for ``servicepoint demo`` / ``make run`` to print.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (
        username,
        "、".join(ROLE_LABELS[r] for r in roles) + (f"（{domain}）" if domain else ""),
        _OUTLET_NAMES[outlet] if outlet else "政务服务中心",
    )
    for username, _name, roles, outlet, domain, _level in data.STAFF
] + [
    (username, ROLE_LABELS["partner_manager"], _PARTNER_NAMES[code])
    for username, _name, code in data.PARTNER_STAFF
]


def logins_still_demo(engine: Engine) -> list[tuple[str, str, str]]:
    """The rows of :data:`DEMO_LOGINS` whose account still opens with :data:`DEMO_PASSWORD`
    (active, not waiting for a forced change, hash verifies) — an account whose password was
    changed or reset since the seed is not printed. One argon2 verification per distinct
    hash (the seed shares one)."""
    from partners.accounts import LoginRefused, verify_password

    names = [row[0] for row in DEMO_LOGINS]
    with Session(engine) as s:
        rows = s.exec(select(Staff.username, Staff.password_hash, Staff.active, Staff.must_change_password)
                      .where(Staff.username.in_(names))).all()  # type: ignore[attr-defined]
    verified: dict[str, bool] = {}
    still = set()
    for username, password_hash, active, must_change in rows:
        if not active or must_change:
            continue
        if password_hash not in verified:
            try:
                verify_password(password_hash, DEMO_PASSWORD)
                verified[password_hash] = True
            except LoginRefused:
                verified[password_hash] = False
        if verified[password_hash]:
            still.add(username)
    return [row for row in DEMO_LOGINS if row[0] in still]


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_with_check(first17: str) -> str:
    """Append the GB 32100-2015 check character to 17 characters."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    value = 31 - total % 31
    return first17 + USCC_CHARS[0 if value == 31 else value]


def implementation_code(agency: str, basic_code: str) -> str:
    """实施编码 = 实施主体统一社会信用代码 (18) + 基本编码 (12) + 业务办理项 (1)."""
    _name, org = data.AGENCIES[agency]
    return uscc_with_check("11" + data.REGION + org) + basic_code + "1"


def seed_demo(
    engine: Engine, password_for: Callable[[str], str] | None = None, *, today: date | None = None
) -> list[tuple[str, str, str]]:
    """Seed demo data; return ``(username, password, role label)`` rows to print.

    Returns ``[]`` and changes nothing when staff accounts already exist.
    """
    password_for = password_for or (lambda _username: DEMO_PASSWORD)
    now = utcnow()
    today = today or local_day(now)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if session.exec(select(func.count()).select_from(Staff)).one():
            return []
        partners = _partners(session)
        agreements = _agreements(session, partners, today)
        outlets = _outlets(session, partners)
        logins, staff = _staff(session, outlets, password_for)
        admin_id = staff["admin"].id
        matters = _matters(session, admin_id)
        _grants(session, agreements, outlets, matters, today, now, admin_id)
        for holder, backup, start, end, note in data.BACKUPS:
            add_backup(
                session,
                holder_id=staff[holder].id,  # type: ignore[arg-type]
                backup_id=staff[backup].id,  # type: ignore[arg-type]
                valid_from=today + timedelta(days=start),
                valid_to=today + timedelta(days=end),
                note=note,
            )
    return logins


def _partners(session: Session) -> dict[str, Partner]:
    return {
        code: save_partner(session, {"code": code, "name": name, "kind": kind, "contact": contact})
        for code, name, kind, contact in data.PARTNERS
    }


def _agreements(
    session: Session, partners: dict[str, Partner], today: date
) -> dict[str, Agreement]:
    start = today - timedelta(days=410)
    result = {}
    for n, (code, partner) in enumerate(partners.items(), start=1):
        result[code] = save_agreement(
            session,
            {
                "number": f"HCZY-{start.year}-{n:03d}",
                "partner_id": partner.id,
                "parties": f"{data.CENTER}；{partner.name}",
                "signed_on": start - timedelta(days=10),
                "valid_from": start,
                "valid_to": start.replace(year=start.year + 3) - timedelta(days=1),
                "status": "active",
            },
        )
    return result


def _outlets(session: Session, partners: dict[str, Partner]) -> dict[str, Outlet]:
    result = {}
    for key, code, partner, name, address, kind, lat, lon, hours, h24 in data.OUTLETS:
        result[key] = save_outlet(
            session,
            {
                "code": code,
                "partner_id": partners[partner].id,
                "name": name,
                "address": address,
                "phone": data.OUTLET_PHONES.get(code, ""),
                "kind": kind,
                "latitude": lat,
                "longitude": lon,
                "opening_hours": hours,
                "self_service_24h": h24,
            },
        )
    return result


def _staff(
    session: Session, outlets: dict[str, Outlet], password_for: Callable[[str], str]
) -> tuple[list[tuple[str, str, str]], dict[str, Staff]]:
    logins: list[tuple[str, str, str]] = []
    staff: dict[str, Staff] = {}
    hashes: dict[str, str] = {}

    def hasher(password: str) -> str:
        # One argon2id hash per distinct password: demo users share one printed password,
        # and seeding stays fast (each hash costs ~0.1–0.4 s by design).
        if password not in hashes:
            hashes[password] = hash_password(password)
        return hashes[password]

    for username, name, roles, outlet_key, domain, level in data.STAFF:
        password = password_for(username)
        outlet = outlets[outlet_key] if outlet_key else None
        staff[username] = create_staff(
            session,
            username=username,
            display_name=name,
            password=password,
            roles=roles,
            outlet_id=outlet.id if outlet else None,
            domain=domain,
            expert_level=level,
            hasher=hasher,
            must_change_password=False,  # printed demo logins: no forced change
            demo_seed=password == DEMO_PASSWORD,
        )
        _user, label, where = next(row for row in DEMO_LOGINS if row[0] == username)
        logins.append((username, password, f"{label} · {where}"))
    partner_ids = {p.code: p.id for p in session.exec(select(Partner)).all()}
    for username, name, code in data.PARTNER_STAFF:
        password = password_for(username)
        staff[username] = create_staff(
            session, username=username, display_name=name, password=password,
            roles=["partner_manager"], partner_id=partner_ids[code], hasher=hasher,
            must_change_password=False, demo_seed=password == DEMO_PASSWORD,
        )
        _user, label, where = next(row for row in DEMO_LOGINS if row[0] == username)
        logins.append((username, password, f"{label} · {where}"))
    return logins, staff


def _matters(session: Session, admin_id: int | None) -> dict[str, Matter]:
    result = {}
    for key, (agency, basic, fields) in data.MATTERS.items():
        result[key] = create_matter(
            session,
            {
                "basic_code": basic,
                "implementation_code": implementation_code(agency, basic),
                **fields,
            },
            created_by=admin_id,
        )
    for key, changes in data.MATTER_EDITS.items():
        matter = result[key]
        form = version_as_form(current_version(session, matter))
        edit_matter(session, matter, {**form, **changes}, created_by=admin_id)
    return result


def _grants(
    session: Session,
    agreements: dict[str, Agreement],
    outlets: dict[str, Outlet],
    matters: dict[str, Matter],
    today: date,
    now: datetime,
    admin_id: int | None,
) -> None:
    for _key, partner, outlet_keys, matter_keys, scopes, kind in data.GRANTS:
        agreement = agreements[partner]
        valid_from = agreement.valid_from
        valid_to = agreement.valid_to
        if kind == "expired":
            valid_to = today - timedelta(days=31)
        elif kind == "revoked":
            valid_from = today - timedelta(days=300)
        grant = add_grant(
            session,
            agreement_id=agreement.id,  # type: ignore[arg-type]
            matter_ids=[matters[k].id for k in matter_keys],  # type: ignore[misc]
            scopes=scopes,
            outlet_ids=[outlets[k].id for k in outlet_keys],  # type: ignore[misc]
            valid_from=valid_from,
            valid_to=valid_to,
            created_by=admin_id,
        )
        if kind == "revoked":
            grant.revoked_at = now - timedelta(days=12)
            grant.revoked_reason = data.REVOKE_REASON
            grant.revoked_by = admin_id
            session.add(grant)
    session.flush()
