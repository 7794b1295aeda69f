"""Tables of the case (办件) lifecycle."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from partners.models import utcnow


class Applicant(SQLModel, table=True):
    """A natural person (kind "person") or an enterprise (kind "enterprise").

    PII is kept here only; audit leaves carry ``pseudonym`` (HMAC with a server key).
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=120)
    id_number: str = Field(index=True, max_length=18)  # resident ID or USCC
    phone: str = Field(default="", max_length=32)
    legal_representative: str = Field(default="", max_length=64)
    pseudonym: str = Field(index=True, max_length=80)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class CaseSerial(SQLModel, table=True):
    """Last serial handed out per implementation code and day (case numbers)."""

    implementation_code: str = Field(primary_key=True, max_length=40)
    day: str = Field(primary_key=True, max_length=8)
    last: int = 0


class Case(SQLModel, table=True):
    __tablename__ = "service_case"
    # completed cases of a period per outlet / staff (the ratings figures' 主动评价率); an
    # outlet's newest cases (teller home: today's and 最近办件, read in index order, not sorted)
    __table_args__ = (Index("ix_service_case_completed", "completed_at", "outlet_id", "created_by"),
                      Index("ix_service_case_outlet_created", "outlet_id", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=48)
    check_code: str = Field(max_length=6)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    matter_id: int = Field(foreign_key="matter.id", index=True)
    matter_version_id: int = Field(foreign_key="matterversion.id")
    grant_id: int | None = Field(default=None, foreign_key="delegation_grant.id")
    applicant_id: int = Field(foreign_key="applicant.id", index=True)
    service_mode: str = Field(max_length=8)  # 收件受理 / 代办 / 即办
    agent_name: str | None = Field(default=None, max_length=64)  # 代理人
    agent_id_number: str | None = Field(default=None, max_length=18)
    agent_phone: str | None = Field(default=None, max_length=32)
    state: str = Field(default="draft", index=True, max_length=16)
    created_by: int = Field(foreign_key="staff.id")
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)
    received_on: date | None = None  # date the application was received (for 5-day rule)
    accepted_at: NaiveDatetime | None = None
    due_on: date | None = Field(default=None, index=True)  # committed completion date
    statutory_due_on: date | None = None
    # True when the date crossed a year without a published holiday schedule (Mon–Fri used);
    # one flag per date, so the note sits on the date that was estimated
    due_estimated: bool = False
    statutory_due_estimated: bool = False
    refused_reason: str | None = None
    rongque_commitment: str | None = None  # signed commitment text for 容缺受理
    rongque_deadline: date | None = None
    forwarded_at: NaiveDatetime | None = None
    reviewer_id: int | None = Field(default=None, foreign_key="staff.id")
    review_comment: str | None = None
    completed_at: NaiveDatetime | None = None
    # figures (outlet/figures/cases.py): Beijing completion date, working days from acceptance
    # to completion, and 补正 rounds — the same values the completion's audit entry carries
    completed_on: date | None = Field(default=None, index=True)
    handling_workdays: int | None = None
    corrections: int = 0
    delivered_at: NaiveDatetime | None = None
    withdrawn_reason: str | None = None
    revision: int = 0  # optimistic concurrency: bumped on every transition
    # public status page: wrong check codes counted per case, locked for a while after 5


class CaseMaterial(SQLModel, table=True):
    """One line of the case's materials checklist, copied from the matter version."""

    __table_args__ = (UniqueConstraint("case_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="service_case.id", index=True)
    key: str = Field(max_length=16)
    name: str = Field(max_length=200)
    necessity: str = Field(max_length=8)  # 必要 / 非必要 / 容缺后补
    form: str = Field(default="纸质", max_length=16)
    copies: int = 1
    # pending / received / missing / defective / deferred (容缺, to be supplied)
    status: str = Field(default="pending", max_length=12)
    reason: str | None = Field(default=None, max_length=255)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)


class CaseFile(SQLModel, table=True):
    """An uploaded scan, stored content-addressed under ``var/files/``."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="service_case.id", index=True)
    material_key: str = Field(max_length=16)
    sha256: str = Field(index=True, max_length=64)
    size: int
    content_type: str = Field(max_length=64)
    original_name: str = Field(max_length=255)
    uploaded_by: int = Field(foreign_key="staff.id")
    uploaded_at: NaiveDatetime = Field(default_factory=utcnow)


class Notice(SQLModel, table=True):
    """A dated written notice: 一次性告知书, 受理回执, 不予受理通知书, 容缺告知, 补正告知."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="service_case.id", index=True)
    kind: str = Field(max_length=16)  # one_time / receipt / refusal / rongque / correction
    number: str = Field(unique=True, max_length=64)
    issued_at: NaiveDatetime = Field(default_factory=utcnow)
    issued_by: int = Field(foreign_key="staff.id")
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    deadline: date | None = None


class CaseEvent(SQLModel, table=True):
    """Human-readable history of a case (the audit log is the authoritative record)."""

    __table_args__ = (Index("ix_caseevent_action_at", "action", "at"),)  # figures by period

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="service_case.id", index=True)
    at: NaiveDatetime = Field(default_factory=utcnow)
    actor_id: int = Field(foreign_key="staff.id")
    action: str = Field(max_length=48)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str | None = Field(default=None, max_length=16)
    note: str | None = None


class HolidayOverride(SQLModel, table=True):
    """A maintained calendar entry that overrides the bundled Chinese holiday calendar
    (e.g. next year's schedule once the State Council publishes it)."""

    day: date = Field(primary_key=True)
    is_workday: bool
    name: str = Field(default="", max_length=64)


class CasePromise(SQLModel, table=True):
    """告知承诺制: the applicant's signed promise replacing named certificates of a case,
    and the center's later check (核查) of that promise (属实 / 不属实)."""

    __tablename__ = "case_promise"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="service_case.id", unique=True)
    number: str = Field(unique=True, max_length=64)  # 告知承诺书 number
    materials: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    signed_at: NaiveDatetime = Field(default_factory=utcnow)
    taken_by: int = Field(foreign_key="staff.id")
    check_result: str | None = Field(default=None, max_length=8)  # 属实 / 不属实
    check_note: str | None = Field(default=None, max_length=500)
    checked_by: int | None = Field(default=None, foreign_key="staff.id")
    checked_at: NaiveDatetime | None = None
    revoked_at: NaiveDatetime | None = None
    revoked_by: int | None = Field(default=None, foreign_key="staff.id")
    revoke_reason: str | None = Field(default=None, max_length=500)


# The per-day rollup of case steps is kept by every session that adds a CaseEvent: importing
# it here registers it wherever case history can be written (outlet/figures/daily.py).
import outlet.figures.daily  # noqa: E402,F401
