"""The frame of every audited assist action: the request's matter, outlet, case and
applicant pseudonym filled into ``partners.delegation.delegated_action``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from outlet.models import Applicant, Case
from partners.delegation import ActionContext, delegated_action
from partners.models import Matter, MatterVersion, Outlet, Staff
from remote_assist.errors import NotFound
from remote_assist.models import AssistRequest


@dataclass
class RequestContext:
    """What surrounds a request: plain values, safe to use across sessions."""

    request: AssistRequest
    outlet: Outlet
    matter: Matter | None
    version: MatterVersion | None
    case: Case | None
    subject: str | None


def load_context(session: Session, request_id: int) -> RequestContext:
    req = session.get(AssistRequest, request_id)
    if req is None:
        raise NotFound()
    outlet = session.get(Outlet, req.outlet_id)
    assert outlet is not None
    matter = session.get(Matter, req.matter_id) if req.matter_id else None
    version = session.get(MatterVersion, req.matter_version_id) if req.matter_version_id else None
    case = session.get(Case, req.case_id) if req.case_id else None
    subject = None
    if case is not None:
        applicant = session.get(Applicant, case.applicant_id)
        subject = applicant.pseudonym if applicant else None
    return RequestContext(req, outlet, matter, version, case, subject)


@contextmanager
def assist_action(
    engine: Engine, actor: Staff, action: str, request_id: int, *, at: datetime | None = None
) -> Iterator[tuple[ActionContext, RequestContext]]:
    """Authorize ``action`` on the request's matter and outlet; audit it on success."""
    with Session(engine, expire_on_commit=False) as s:
        ctx = load_context(s, request_id)
    with delegated_action(
        engine, actor, action, matter=ctx.matter, outlet=ctx.outlet,
        case=ctx.case.number if ctx.case else None, subject=ctx.subject,
        matter_version=ctx.version, at=at,
    ) as act:
        yield act, ctx
