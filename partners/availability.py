"""Why an outlet cannot take a matter in: the matters a teller finds but may not handle,
each with its reason (授权已于 … 到期 / 已撤销 / 未委托本网点), for the new-case search.

The reasons come from the same grant classification ``authorize`` uses
(:func:`partners.authorize.grant_state`), so what the search says is what a refusal says.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from partners.authorize import grant_state
from partners.catalog import matches_query
from partners.models import (
    Agreement,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
)

REFUSED_LIMIT = 20


@dataclass(frozen=True)
class RefusedMatter:
    """A matter the outlet may not take in now, and why (``code`` as audited refusals use)."""

    matter: Matter
    version: MatterVersion
    code: str  # grant_expired / grant_revoked / grant_pending / not_delegated / matter_inactive
    reason: str  # Chinese, shown next to the matter


def refused_matters(
    session: Session, outlet: Outlet, at: datetime, query: str = "", *,
    exclude: Collection[int] = (), limit: int = REFUSED_LIMIT,
) -> list[RefusedMatter]:
    """Matters found by ``query`` (name, code or domain) that ``outlet`` may not handle at
    ``at``, with the reason; without a query, the matters whose grant to this outlet is no
    longer (or not yet) in force. ``exclude``: ids of matters the outlet may handle.

    Two queries whatever the number of matters (matters, then their grants to the outlet)."""
    q = query.strip()
    granted_here = (
        select(GrantMatter.matter_id)
        .join(GrantOutlet, col(GrantOutlet.grant_id) == GrantMatter.grant_id)
        .where(GrantOutlet.outlet_id == outlet.id)
    )
    stmt = (
        select(Matter, MatterVersion)
        .join(MatterVersion, (col(MatterVersion.matter_id) == Matter.id)
              & (col(MatterVersion.version) == Matter.current_version))
        .where(col(Matter.id).not_in(list(exclude)))
        .order_by(col(MatterVersion.domain), col(MatterVersion.name))
        .limit(limit)
    )
    if q:
        stmt = stmt.where(matches_query(q))
    else:
        stmt = stmt.where(col(Matter.id).in_(granted_here))
    found = list(session.exec(stmt).all())
    if not found:
        return []
    ids = [m.id for m, _v in found]
    grants = session.exec(
        select(GrantMatter.matter_id, Grant, Agreement)
        .join(Grant, col(Grant.id) == GrantMatter.grant_id)
        .join(GrantOutlet, col(GrantOutlet.grant_id) == Grant.id)
        .join(Agreement, col(Agreement.id) == Grant.agreement_id)
        .where(GrantOutlet.outlet_id == outlet.id, Agreement.partner_id == outlet.partner_id)
        .where(col(GrantMatter.matter_id).in_(ids))
        .order_by(col(Grant.id).desc())
    ).all()
    newest: dict[int, tuple[Grant, Agreement]] = {}
    for matter_id, grant, agreement in grants:
        newest.setdefault(matter_id, (grant, agreement))  # newest grant first, as authorize explains
    out = []
    for matter, version in found:
        assert matter.id is not None
        if not matter.active:
            out.append(RefusedMatter(matter, version, "matter_inactive", "事项已停用"))
        elif matter.id not in newest:
            out.append(RefusedMatter(matter, version, "not_delegated", "未委托本网点"))
        else:
            state = grant_state(*newest[matter.id], at)
            if state.in_force:  # in force but without an intake scope: not offered either
                out.append(RefusedMatter(matter, version, "scope_not_granted", "本网点未获授权收件受理"))
            else:
                out.append(RefusedMatter(matter, version, f"grant_{state.status}", f"授权{state.reason}"))
    return out
