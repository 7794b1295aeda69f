"""Tables of remote help and inspection (all prefixed ``assist_``).

Timestamps are naive UTC like everywhere else. Applicant PII appears only in
``AssistConsent.consenter_name`` (needed to show who consented); audit entries carry the
applicant pseudonym instead.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from partners.models import utcnow

KIND_LABELS = {"help": "视频帮办", "inspection": "远程勘验"}
LEVELS = ("town", "district", "city")  # escalation order
LEVEL_LABELS = {"town": "镇街", "district": "区县", "city": "市级"}
REQUEST_STATUS_LABELS = {
    "waiting": "等待专家接听",
    "accepted": "通话中",
    "callback": "已预约回拨",
    "done": "已结束",
    "cancelled": "已取消",
    "expired": "无人接听已过期",
}
SESSION_STATE_LABELS = {"active": "通话中", "ended": "已结束", "timed_out": "超时结束"}
POINT_RESULTS = ("符合", "不符合", "需整改")
CONCLUSIONS = ("通过", "不通过", "限期整改")


class AssistRequest(SQLModel, table=True):
    """A teller's request for 视频帮办 or 远程勘验, from a case or a walk-in enquiry."""

    __tablename__ = "assist_request"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # help / inspection
    case_id: int | None = Field(default=None, foreign_key="service_case.id", index=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    matter_id: int | None = Field(default=None, foreign_key="matter.id")
    matter_version_id: int | None = Field(default=None, foreign_key="matterversion.id")
    domain: str = Field(index=True, max_length=32)
    topic: str = Field(default="", max_length=200)  # walk-in: what it is about (no PII)
    requested_by: int = Field(foreign_key="staff.id", index=True)
    status: str = Field(default="waiting", index=True, max_length=12)
    level: str = Field(default="town", max_length=12)  # routing level reached
    recording_required: bool = False
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    escalated_at: NaiveDatetime | None = None
    accepted_at: NaiveDatetime | None = None
    accepted_by: int | None = Field(default=None, foreign_key="staff.id")
    ended_at: NaiveDatetime | None = None
    wait_seconds: int | None = None  # created → accepted
    handle_seconds: int | None = None  # accepted → ended


class AssistCallback(SQLModel, table=True):
    """A call-back slot booked when no expert was available."""

    __tablename__ = "assist_callback"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="assist_request.id", unique=True)
    domain: str = Field(index=True, max_length=32)
    slot_start: NaiveDatetime = Field(index=True)
    slot_minutes: int = 30
    booked_by: int = Field(foreign_key="staff.id")
    booked_at: NaiveDatetime = Field(default_factory=utcnow)
    status: str = Field(default="booked", max_length=12)  # booked / done / cancelled


class AssistSession(SQLModel, table=True):
    """One call between exactly two people: the requesting teller and the accepting expert."""

    __tablename__ = "assist_session"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="assist_request.id", unique=True)
    teller_id: int = Field(foreign_key="staff.id", index=True)
    expert_id: int = Field(foreign_key="staff.id", index=True)
    state: str = Field(default="active", index=True, max_length=12)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    connected_at: NaiveDatetime | None = None  # both participants present for the first time
    last_activity: NaiveDatetime = Field(default_factory=utcnow)
    ended_at: NaiveDatetime | None = None
    ended_by: int | None = Field(default=None, foreign_key="staff.id")
    end_reason: str | None = Field(default=None, max_length=32)  # hangup / timeout / cancelled
    # {"teller": {...}, "expert": {...}}: per-side getStats summary posted at the end
    stats: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class AssistMessage(SQLModel, table=True):
    """Chat lines of a call (kept with the session)."""

    __tablename__ = "assist_message"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", index=True)
    sender_id: int = Field(foreign_key="staff.id")
    at: NaiveDatetime = Field(default_factory=utcnow)
    text: str = Field(max_length=1000)


class AssistMark(SQLModel, table=True):
    """The expert's pre-review of one case material in a call (history; the material row
    itself carries the current status)."""

    __tablename__ = "assist_mark"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", index=True)
    material_id: int = Field(foreign_key="casematerial.id")
    verdict: str = Field(max_length=12)  # ok / defective
    reason: str | None = Field(default=None, max_length=255)
    marked_by: int = Field(foreign_key="staff.id")
    marked_at: NaiveDatetime = Field(default_factory=utcnow)


class AssistConsent(SQLModel, table=True):
    """The applicant's explicit consent to recording: who, when, purpose, retention."""

    __tablename__ = "assist_consent"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", index=True)
    consenter_name: str = Field(max_length=64)
    consenter_role: str = Field(max_length=16)  # 申请人 / 代理人 / 法定代表人
    purpose: str = Field(max_length=255)
    retention_days: int
    statement: str = Field(max_length=1000)  # the text read out and agreed to
    given_at: NaiveDatetime = Field(default_factory=utcnow)
    recorded_by: int = Field(foreign_key="staff.id")


class AssistRecording(SQLModel, table=True):
    """One continuous record per session; reconnects continue it with the gap noted.

    status: recording (file open) → finalized (closed cleanly at the end of the call) or
    partial (closed early: server shutdown or restart; the readable part is kept) or
    failed (nothing readable; the row says so — never a file without a record).
    """

    __tablename__ = "assist_recording"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", unique=True)
    status: str = Field(default="recording", index=True, max_length=12)
    work_path: str | None = Field(default=None, max_length=500)  # while open
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    ended_at: NaiveDatetime | None = None
    sha256: str | None = Field(default=None, max_length=64, index=True)
    size: int | None = None
    content_type: str = Field(default="video/x-matroska", max_length=40)
    duration_seconds: float | None = None
    video_frames: int | None = None
    dropped_frames: int = 0
    # [{"start": iso, "end": iso}] connection intervals; gaps between them are listed too
    segments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    gaps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    latitude: float | None = None
    longitude: float | None = None
    note: str | None = Field(default=None, max_length=255)
    finalized_at: NaiveDatetime | None = None


class AssistSnapshot(SQLModel, table=True):
    """A still taken from the outlet's video on the expert's command (取证截图)."""

    __tablename__ = "assist_snapshot"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    size: int
    width: int
    height: int
    taken_at: NaiveDatetime = Field(default_factory=utcnow)
    taken_by: int = Field(foreign_key="staff.id")
    latitude: float | None = None
    longitude: float | None = None
    point_index: int | None = None  # checklist point it documents
    note: str = Field(default="", max_length=255)


class AssistInspection(SQLModel, table=True):
    """The inspection of one session: the matter's checklist (copied) and the conclusion."""

    __tablename__ = "assist_inspection"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="assist_session.id", unique=True)
    case_id: int | None = Field(default=None, foreign_key="service_case.id", index=True)
    checklist: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    conclusion: str | None = Field(default=None, max_length=8)  # 通过 / 不通过 / 限期整改
    conclusion_note: str | None = None
    rectify_by: date | None = None
    concluded_at: NaiveDatetime | None = None
    concluded_by: int | None = Field(default=None, foreign_key="staff.id")
    digests: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))


class AssistInspectionPoint(SQLModel, table=True):
    __tablename__ = "assist_inspection_point"
    __table_args__ = (UniqueConstraint("inspection_id", "idx"),)

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="assist_inspection.id", index=True)
    idx: int
    text: str = Field(max_length=255)
    result: str | None = Field(default=None, max_length=8)  # 符合 / 不符合 / 需整改
    note: str = Field(default="", max_length=500)
    snapshot_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    recorded_at: NaiveDatetime | None = None
    recorded_by: int | None = Field(default=None, foreign_key="staff.id")
