"""The public status page's lookup: case number + 6-digit check code → state and dates.

No personal data leaves this module: the view carries the matter name, the state and
dates only. Wrong codes are counted per case; after ``MAX_FAILURES`` the case's lookup is
locked for ``LOCK_MINUTES`` (this works across workers because it lives in the database).
An unknown number and a wrong code give the same answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.clock import local_day
from outlet.errors import StatusLookupLocked, WrongCheckCode
from outlet.models import Case
from outlet.states import STATE_LABELS
from partners.models import MatterVersion, utcnow

MAX_FAILURES = 5
LOCK_MINUTES = 15


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


def lookup(engine: Engine, number: str, check_code: str, *, at: datetime | None = None) -> PublicStatus:
    """Raises :class:`WrongCheckCode` or :class:`StatusLookupLocked`."""
    now = at or utcnow()
    number = (number or "").strip()[:48]
    code = (check_code or "").strip()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        row = s.exec(
            select(Case, MatterVersion.name)
            .join(MatterVersion, MatterVersion.id == Case.matter_version_id)  # type: ignore[arg-type]
            .where(Case.number == number)
            .with_for_update(of=Case)  # type: ignore[arg-type]
        ).first()
        if row is None:
            raise WrongCheckCode()
        case, matter_name = row
        if case.check_locked_until is not None and case.check_locked_until > now:
            raise StatusLookupLocked()
        if not secrets.compare_digest(code.encode(), case.check_code.encode()):
            case.check_failures += 1
            if case.check_failures >= MAX_FAILURES:
                case.check_failures = 0
                case.check_locked_until = now + timedelta(minutes=LOCK_MINUTES)
            s.add(case)
            failed = True
        else:
            if case.check_failures:
                case.check_failures = 0
                s.add(case)
            failed = False
    if failed:  # committed the counter above; now say no
        raise WrongCheckCode()

    def day(t: datetime | None) -> date | None:
        return local_day(t) if t else None

    return PublicStatus(
        number=case.number, matter_name=matter_name, state=case.state,
        state_label=STATE_LABELS.get(case.state, case.state), received_on=case.received_on,
        accepted_on=day(case.accepted_at), due_on=case.due_on, due_estimated=case.due_estimated,
        completed_on=day(case.completed_at), delivered_on=day(case.delivered_at),
    )
