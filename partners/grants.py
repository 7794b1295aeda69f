"""Delegation grants: agreement → matters → scopes → outlets, for a period; revocation.

``add_grant`` validates and inserts inside a caller's session (used by the demo seed and by
``create_grant``). ``create_grant`` and ``revoke_grant`` are the audited admin actions: they
run through :func:`partners.delegation.delegated_action`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners.authorize import STATUS_LABELS, GrantState, as_utc_naive, grant_state
from partners.catalog import SCOPES, current_version
from partners.delegation import delegated_action
from partners.errors import InvalidFields, PartnersError, RecordNotFound
from partners.models import (
    Agreement,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
    Partner,
    Staff,
    utcnow,
)
from partners.paging import PER_PAGE, Page, paginate_list

__all__ = [
    "STATUS_LABELS",
    "GrantRow",
    "add_grant",
    "create_grant",
    "revoke_grant",
    "list_grants",
    "grant_row",
]


def add_grant(
    session: Session,
    *,
    agreement_id: int,
    matter_ids: Iterable[int],
    scopes: Iterable[str],
    outlet_ids: Iterable[int],
    valid_from: date,
    valid_to: date,
    created_by: int | None = None,
) -> Grant:
    """Validate and insert a grant with its matters and outlets. Raises InvalidFields."""
    matter_ids = sorted(set(matter_ids))
    outlet_ids = sorted(set(outlet_ids))
    scope_list = [s for s in SCOPES if s in set(scopes)]
    errors: dict[str, str] = {}

    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        errors["agreement_id"] = "请选择合作协议"
    elif agreement.status == "terminated":
        errors["agreement_id"] = f"协议 {agreement.number} 已终止，不能再授权"

    unknown_scopes = set(scopes) - set(SCOPES)
    if unknown_scopes or not scope_list:
        errors["scopes"] = "请选择授权方式（" + "、".join(SCOPES) + "）"

    matters: list[tuple[Matter, MatterVersion]] = []
    for mid in matter_ids:
        matter = session.get(Matter, mid)
        if matter is None or not matter.active:
            errors["matter_ids"] = "所选事项不存在或已停用"
            break
        matters.append((matter, current_version(session, matter)))
    if not matter_ids:
        errors["matter_ids"] = "请至少选择一个事项"
    elif "scopes" not in errors and "matter_ids" not in errors:
        for _matter, version in matters:
            if not set(scope_list) & set(version.service_modes or SCOPES):
                allowed = "、".join(version.service_modes)
                errors["scopes"] = f"「{version.name}」只允许以「{allowed}」方式在合作网点办理"
                break

    if not outlet_ids:
        errors["outlet_ids"] = "请至少选择一个网点"
    elif agreement is not None:
        for oid in outlet_ids:
            outlet = session.get(Outlet, oid)
            if outlet is None:
                errors["outlet_ids"] = "所选网点不存在"
                break
            if outlet.partner_id != agreement.partner_id:
                errors["outlet_ids"] = f"「{outlet.name}」不属于协议 {agreement.number} 的合作机构"
                break

    if valid_to < valid_from:
        errors["valid_to"] = "授权截止日期不能早于起始日期"
    elif agreement is not None and (
        valid_from < agreement.valid_from or valid_to > agreement.valid_to
    ):
        errors["valid_to"] = (
            f"授权期限须在协议有效期（{agreement.valid_from} 至 {agreement.valid_to}）之内"
        )
    if errors:
        raise InvalidFields(errors)

    grant = Grant(
        agreement_id=agreement_id,
        scopes=scope_list,
        valid_from=valid_from,
        valid_to=valid_to,
        created_by=created_by,
    )
    session.add(grant)
    session.flush()
    assert grant.id is not None
    session.add_all([GrantMatter(grant_id=grant.id, matter_id=mid) for mid in matter_ids])
    session.add_all([GrantOutlet(grant_id=grant.id, outlet_id=oid) for oid in outlet_ids])
    session.flush()
    return grant


def create_grant(
    engine: Engine,
    actor: Staff,
    *,
    agreement_id: int,
    matter_ids: Iterable[int],
    scopes: Iterable[str],
    outlet_ids: Iterable[int],
    valid_from: date,
    valid_to: date,
    at: datetime | None = None,
) -> int:
    """Audited ``admin.grant.create``; returns the new grant's id."""
    with delegated_action(engine, actor, "admin.grant.create", at=at) as act:
        grant = add_grant(
            act.session,
            agreement_id=agreement_id,
            matter_ids=matter_ids,
            scopes=scopes,
            outlet_ids=outlet_ids,
            valid_from=valid_from,
            valid_to=valid_to,
            created_by=actor.id,
        )
        act.grant_id = grant.id
        agreement = act.session.get(Agreement, agreement_id)
        assert agreement is not None
        act.state = (None, grant_state(grant, agreement, act.at).status)
        assert grant.id is not None
        return grant.id


def revoke_grant(
    engine: Engine, actor: Staff, grant_id: int, reason: str, *, at: datetime | None = None
) -> None:
    """Audited ``admin.grant.revoke``: the grant stops at ``at`` (now) for every outlet."""
    reason = reason.strip()
    if not reason:
        raise InvalidFields({"reason": "请填写撤销原因"})
    if len(reason) > 255:
        raise InvalidFields({"reason": "撤销原因不能超过 255 个字"})
    when = as_utc_naive(at) if at else utcnow()
    with delegated_action(engine, actor, "admin.grant.revoke", at=when) as act:
        grant = act.session.get(Grant, grant_id)
        if grant is None:
            raise RecordNotFound("授权不存在")
        if grant.revoked_at is not None:
            raise PartnersError("该授权已撤销，无需重复撤销")
        agreement = act.session.get(Agreement, grant.agreement_id)
        assert agreement is not None
        before = grant_state(grant, agreement, when).status
        grant.revoked_at = when
        grant.revoked_reason = reason
        grant.revoked_by = actor.id
        act.session.add(grant)
        act.grant_id = grant.id
        act.state = (before, "revoked")


@dataclass(frozen=True)
class GrantRow:
    """One grant as the admin list shows it."""

    grant: Grant
    agreement: Agreement
    partner: Partner
    state: GrantState
    matters: tuple[str, ...]
    outlets: tuple[str, ...]

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.state.status]


def _rows(session: Session, at: datetime) -> list[tuple[Grant, Agreement, Partner, GrantState]]:
    stmt = (
        select(Grant, Agreement, Partner)
        .join(Agreement, Agreement.id == Grant.agreement_id)  # type: ignore[arg-type]
        .join(Partner, Partner.id == Agreement.partner_id)  # type: ignore[arg-type]
        .order_by(Grant.id.desc())  # type: ignore[union-attr]
    )
    return [(g, a, p, grant_state(g, a, at)) for g, a, p in session.exec(stmt).all()]


def _names(session: Session, grant_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    matters = session.exec(
        select(MatterVersion.name)
        .join(Matter, Matter.id == MatterVersion.matter_id)  # type: ignore[arg-type]
        .join(GrantMatter, GrantMatter.matter_id == Matter.id)  # type: ignore[arg-type]
        .where(GrantMatter.grant_id == grant_id)
        .where(MatterVersion.version == Matter.current_version)
        .order_by(MatterVersion.name)
    ).all()
    outlets = session.exec(
        select(Outlet.name)
        .join(GrantOutlet, GrantOutlet.outlet_id == Outlet.id)  # type: ignore[arg-type]
        .where(GrantOutlet.grant_id == grant_id)
        .order_by(Outlet.name)
    ).all()
    return tuple(matters), tuple(outlets)


def list_grants(
    session: Session,
    at: datetime,
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
    status: str | None = None,
    partner_id: int | None = None,
) -> Page[GrantRow]:
    """Grants newest first with their status at ``at`` (生效中/已过期/已撤销/未生效)."""
    rows = [
        r
        for r in _rows(session, at)
        if (status is None or r[3].status == status)
        and (partner_id is None or r[2].id == partner_id)
    ]
    one_page = paginate_list(rows, page, per_page)
    items = []
    for grant, agreement, partner, state in one_page.items:
        assert grant.id is not None
        matters, outlets = _names(session, grant.id)
        items.append(GrantRow(grant, agreement, partner, state, matters, outlets))
    return Page(items, one_page.page, one_page.per_page, one_page.total)


def grant_row(session: Session, grant_id: int, at: datetime) -> GrantRow:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise RecordNotFound("授权不存在")
    agreement = session.get(Agreement, grant.agreement_id)
    assert agreement is not None
    partner = session.get(Partner, agreement.partner_id)
    assert partner is not None
    matters, outlets = _names(session, grant_id)
    return GrantRow(grant, agreement, partner, grant_state(grant, agreement, at), matters, outlets)
