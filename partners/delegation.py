"""The one way to perform a delegated action: authorize, change, audit — one transaction.

    with delegated_action(engine, actor, "case.accept", matter=m, outlet=o) as act:
        ...change rows through act.session...
        act.case = case.number
        act.state = ("draft", "accepted")

On success the audit entry is appended inside the same transaction and both commit
together. If the block (or ``authorize``) raises :class:`ActionRefused`, the transaction is
rolled back and the refusal is recorded in a transaction of its own, then re-raised.

Group commit (``audit.group``): the "transaction" of an action is a savepoint in a batch
shared with the actions of other threads that queued up meanwhile; the ``with`` block
returns only after the batch's COMMIT, and an exception undoes only its own action.
``act.session`` is valid inside the block only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy.engine import Engine
from sqlmodel import Session

import audit
from audit.group import group_commit
from partners.authorize import authorize
from partners.errors import ActionRefused
from partners.models import Grant, Matter, MatterVersion, Outlet, Partner, Staff, utcnow


@dataclass
class ActionContext:
    """What the block may fill in; identity fields are plain values so a rollback
    (which expires ORM objects) cannot break the refusal entry."""

    session: Session
    actor_id: int
    role: str
    action: str
    at: datetime
    outlet_code: str | None = None
    partner_code: str | None = None
    matter_code: str | None = None
    matter_version: int | None = None
    grant: Grant | None = None
    grant_id: int | None = None
    case: str | None = None
    subject: str | None = None
    state: tuple[str | None, str | None] = (None, None)
    digests: list[dict[str, str]] = field(default_factory=list)
    # optional extra leaf fields the audit schema allows for some actions (e.g. "rating")
    extra: dict[str, Any] = field(default_factory=dict)
    index: int | None = None  # the audit log index, set once the entry is appended
    # called with the index right after the append, still inside the transaction
    on_recorded: list[Callable[[int], None]] = field(default_factory=list)

    def recorded(self, index: int) -> None:
        self.index = index
        for hook in self.on_recorded:
            hook(index)

    def add_digest(self, kind: str, sha256: str) -> None:
        self.digests.append({"kind": kind, "sha256": sha256})

    def set_matter(self, matter: Matter, version: int | None = None) -> None:
        self.matter_code = matter.implementation_code
        self.matter_version = version if version is not None else matter.current_version

    def set_outlet(self, session: Session, outlet: Outlet) -> None:
        self.outlet_code = outlet.code
        partner = session.get(Partner, outlet.partner_id)
        self.partner_code = partner.code if partner else None

    def entry(self, outcome: dict[str, str]) -> dict[str, Any]:
        return {
            "time": self.at.isoformat(timespec="microseconds") + "Z",
            "actor": {"id": self.actor_id, "role": self.role},
            "outlet": self.outlet_code,
            "partner": self.partner_code,
            "action": self.action,
            "case": self.case,
            "matter": (
                {"code": self.matter_code, "version": self.matter_version}
                if self.matter_code is not None
                else None
            ),
            "grant": self.grant_id,
            "outcome": outcome,
            "digests": self.digests,
            "state": {"from": self.state[0], "to": self.state[1]},
            "subject": self.subject,
            **self.extra,
        }


def acting_role(actor: Staff, action: str) -> str:
    """The role under which ``actor`` performs ``action`` (first matching role)."""
    from partners.authorize import roles_for

    allowed = roles_for(action)
    for role in sorted(actor.role_set):
        if role in allowed:
            return role
    return sorted(actor.role_set)[0] if actor.role_set else "none"


@contextmanager
def delegated_action(
    engine: Engine,
    actor: Staff,
    action: str,
    *,
    matter: Matter | None = None,
    outlet: Outlet | None = None,
    case: str | None = None,
    subject: str | None = None,
    matter_version: MatterVersion | None = None,
    at: datetime | None = None,
    scope: str | None = None,
) -> Iterator[ActionContext]:
    """Authorize ``action`` and yield a context whose session is inside one transaction.
    ``scope`` overrides the scope the action requires (see ``authorize``)."""
    now = at or utcnow()
    assert actor.id is not None
    ctx = ActionContext(
        session=_NO_SESSION,
        actor_id=actor.id,
        role=acting_role(actor, action),
        action=action,
        at=now,
        case=case,
        subject=subject,
    )
    with _audited(engine, ctx, outlet):
        if matter is not None:
            ctx.set_matter(matter, matter_version.version if matter_version else None)
        ctx.grant = authorize(ctx.session, actor, action, matter, outlet, now, scope=scope)
        ctx.grant_id = ctx.grant.id if ctx.grant else None
        yield ctx


@contextmanager
def unattended_action(
    engine: Engine,
    *,
    actor_id: int,
    role: str,
    action: str,
    outlet: Outlet | None = None,
    case: str | None = None,
    subject: str | None = None,
    at: datetime | None = None,
) -> Iterator[ActionContext]:
    """An audited action with no staff login behind it: an applicant through a QR code
    (``role="applicant"``, ``actor_id=0``) or a paired device (``role="device"``, the device
    id). The caller has already checked the secret (check code, device token); there is no
    grant to consult. Change and audit entry commit together; an :class:`ActionRefused`
    raised in the block rolls back and is recorded as a refusal, exactly like
    :func:`delegated_action`."""
    ctx = ActionContext(session=_NO_SESSION, actor_id=actor_id,
                        role=role, action=action, at=at or utcnow(), case=case, subject=subject)
    with _audited(engine, ctx, outlet):
        yield ctx


_NO_SESSION = cast(Session, None)  # until _audited opens the action's unit


@contextmanager
def _audited(engine: Engine, ctx: ActionContext, outlet: Outlet | None) -> Iterator[None]:
    """One unit of the engine's group commit as ``ctx.session``: the block's change, then
    the audit entry; returns after both are committed. An :class:`ActionRefused` rolls the
    unit back and is recorded in a unit of its own."""
    try:
        with group_commit(engine).unit(Session) as unit:
            ctx.session = session = cast(Session, unit)  # an instance of sqlmodel's Session
            if outlet is not None:
                ctx.set_outlet(session, outlet)
            yield
            ctx.recorded(audit.record(session, ctx.entry({"result": "done"})))
    except ActionRefused as refusal:
        _record_refusal(engine, ctx, refusal)
        raise


def _record_refusal(engine: Engine, ctx: ActionContext, refusal: ActionRefused) -> None:
    with group_commit(engine).unit(Session) as unit:
        ctx.session = session = cast(Session, unit)
        ctx.digests = []
        ctx.extra, ctx.on_recorded = {}, []
        ctx.state = (ctx.state[0], ctx.state[0])  # nothing changed
        audit.record(session, ctx.entry({"result": "refused", "reason": refusal.code}))
    refusal.audited = True  # its entry exists: the web layer must not add a second one


def authorize_or_record(
    engine: Engine,
    actor: Staff,
    action: str,
    *,
    matter: Matter | None = None,
    outlet: Outlet | None = None,
    at: datetime | None = None,
) -> Grant | None:
    """``authorize`` for an attempt that changes nothing when allowed (a teller choosing a
    matter to take in): returns the grant in force (or None), or records the refusal in the
    audit log exactly as :func:`delegated_action` does — its own transaction, outcome
    "refused" with the refusal's code, time ``at`` — and re-raises it."""
    now = at or utcnow()
    assert actor.id is not None
    with Session(engine, expire_on_commit=False) as session:
        ctx = ActionContext(session=session, actor_id=actor.id, role=acting_role(actor, action),
                            action=action, at=now)
        if outlet is not None:
            ctx.set_outlet(session, outlet)
        if matter is not None:
            ctx.set_matter(matter)
        try:
            return authorize(session, actor, action, matter, outlet, now)
        except ActionRefused as exc:
            refusal = exc
    _record_refusal(engine, ctx, refusal)
    raise refusal
