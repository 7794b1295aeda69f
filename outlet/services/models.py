"""Tables of service records, their steps (including the 代办 forms) and home visits."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from partners.models import utcnow


class ServiceRecord(SQLModel, table=True):
    """One service: 咨询 / 帮办 / 陪办 / 代办, at the counter or at home (``home``).

    ``owner_id`` is the staff member responsible right now (首问负责: the first one asked,
    until the enquiry is answered or handed over with a note). Applicant PII stays in the
    ``applicant`` table; audit entries carry its pseudonym.
    """

    __tablename__ = "service_record"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=48)
    kind: str = Field(index=True, max_length=8)  # 咨询 / 帮办 / 陪办 / 代办
    home: bool = False  # 上门办
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    opened_by: int = Field(foreign_key="staff.id", index=True)
    owner_id: int = Field(foreign_key="staff.id", index=True)
    matter_id: int | None = Field(default=None, foreign_key="matter.id", index=True)
    matter_version_id: int | None = Field(default=None, foreign_key="matterversion.id")
    applicant_id: int | None = Field(default=None, foreign_key="applicant.id")
    case_id: int | None = Field(default=None, foreign_key="service_case.id")
    topic: str = Field(default="", max_length=500)  # the question or what is to be done
    channel: str = Field(default="", max_length=64)  # 帮办: 爱山东APP, 网上办事大厅 …
    # open / entrusted / suspended (代办) → closed / terminated / delivered
    state: str = Field(default="open", index=True, max_length=16)
    # answered / done / handed_over / not_done
    outcome: str | None = Field(default=None, max_length=16)
    outcome_note: str | None = Field(default=None, max_length=500)
    started_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    ended_at: NaiveDatetime | None = None
    visit_id: int | None = Field(default=None, foreign_key="home_visit.id")


class ServiceStep(SQLModel, table=True):
    """The history of a record; 代办 steps carry their printable form (委托书, 受理单,
    中止单, 终止单, 办结单) as ``form`` + ``form_number`` + ``data``."""

    __tablename__ = "service_step"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="service_record.id", index=True)
    at: NaiveDatetime = Field(default_factory=utcnow)
    actor_id: int = Field(foreign_key="staff.id")
    action: str = Field(max_length=32)
    to_staff_id: int | None = Field(default=None, foreign_key="staff.id")
    note: str | None = Field(default=None, max_length=500)
    form: str | None = Field(default=None, max_length=16)  # entrust / accept / suspend / …
    form_number: str | None = Field(default=None, unique=True, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class HomeVisit(SQLModel, table=True):
    """A request for 上门办 (served by ``outlet_id``, a street point with block agents) and, once done, the visit: arrive/leave with server and phone
    times and the phone's position (or why there is none), photos, signature, outcome."""

    __tablename__ = "home_visit"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=48)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    kind: str = Field(max_length=8)  # the service to give at home: 咨询 / 帮办 / 代办
    matter_id: int | None = Field(default=None, foreign_key="matter.id")
    contact_name: str = Field(max_length=64)
    contact_phone: str = Field(default="", max_length=128)  # sealed at rest (outlet/pii.py)
    address: str = Field(max_length=255)
    reason: str = Field(max_length=16)  # 年老 / 残疾 / 重病 / 其他
    reason_note: str = Field(default="", max_length=255)
    preferred: str = Field(default="", max_length=64)  # preferred time, as the resident said it
    requested_by: int = Field(foreign_key="staff.id")
    # where the request was made (None: the center); another outlet than ``outlet_id`` when a
    # teller refers a resident to the street point that serves them — it follows the state
    requested_outlet_id: int | None = Field(default=None, foreign_key="outlet.id", index=True)
    requested_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    channel: str = Field(default="窗口", max_length=16)  # 窗口 / 网格员 / 中心来电
    # None until the point's lead (or the center) assigns one of its block agents (待派单)
    assignee_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    due_on: date = Field(index=True)  # working days after the request (outlet/workdays.py)
    # unassigned → assigned (⇄ reassigned) → arrived → done
    state: str = Field(default="assigned", index=True, max_length=16)
    arrived_at: NaiveDatetime | None = None  # server time
    arrived_phone_at: NaiveDatetime | None = None  # the phone's clock (offline work)
    arrive_position: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    left_at: NaiveDatetime | None = None
    left_phone_at: NaiveDatetime | None = None
    leave_position: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    outcome: str | None = Field(default=None, max_length=16)
    outcome_note: str | None = Field(default=None, max_length=500)
    signature_sha256: str | None = Field(default=None, max_length=64)


class VisitFile(SQLModel, table=True):
    """A document photo or the signature PNG of a visit, content-addressed (FileStore)."""

    __tablename__ = "visit_file"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="home_visit.id", index=True)
    kind: str = Field(max_length=16)  # photo / signature
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(max_length=64)


class VisitSubmission(SQLModel, table=True):
    """One phone submission by its client-generated id: the same id always gets the same
    answer and changes nothing the second time (offline outbox resends)."""

    __tablename__ = "visit_submission"

    client_id: str = Field(primary_key=True, max_length=64)
    visit_id: int = Field(foreign_key="home_visit.id", index=True)
    kind: str = Field(max_length=16)  # arrive / complete
    actor_id: int = Field(foreign_key="staff.id")
    received_at: NaiveDatetime = Field(default_factory=utcnow)
    status_code: int
    answer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
