"""The public status page's lookup: case number + 6-digit check code → state and dates.

No personal data leaves this module: the view carries the matter name, the state and
dates only. An unknown number and a wrong code give the same answer with the same work
(one row read, one constant-time compare). Guessing is throttled by the web layer
(:mod:`web.throttle`, scope ``status``), per client and per case number, never by locking
the case: a lock would let a stranger shut an applicant out of their own status page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.clock import local_day
from outlet.errors import WrongCheckCode
from outlet.models import Case
from outlet.states import STATE_LABELS
from partners.models import MatterVersion
from partners.numbers import typed_code


@dataclass(frozen=True)
class PublicStatus:
    number: str
    matter_name: str
    state: str
    state_label: str
    received_on: date | None
    accepted_on: date | None
    due_on: date | None
    due_estimated: bool
    completed_on: date | None
    delivered_on: date | None


def lookup(engine: Engine, number: str, check_code: str) -> PublicStatus:
    """The case's public status. Number and code as typed (full-width IME input accepted:
    :func:`partners.numbers.typed_code`, for every page that looks a case up). Raises
    :class:`WrongCheckCode` for an unknown number or a wrong code alike."""
    number = typed_code(number)[:48]
    code = typed_code(check_code)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        row = s.exec(
            select(Case, MatterVersion.name)
            .join(MatterVersion, MatterVersion.id == Case.matter_version_id)  # type: ignore[arg-type]
            .where(Case.number == number)
        ).first()
    expected = row[0].check_code if row is not None else "\x00" * 6  # same compare either way
    if not secrets.compare_digest(code.encode(), expected.encode()) or row is None:
        raise WrongCheckCode()
    case, matter_name = row

    def day(t: datetime | None) -> date | None:
        return local_day(t) if t else None

    return PublicStatus(
        number=case.number, matter_name=matter_name, state=case.state,
        state_label=STATE_LABELS.get(case.state, case.state), received_on=case.received_on,
        accepted_on=day(case.accepted_at), due_on=case.due_on, due_estimated=case.due_estimated,
        completed_on=day(case.completed_at), delivered_on=day(case.delivered_at),
    )
