"""Tables of 好差评: ratings, the reason lists (versioned), the policy (deadlines), the
差评 work orders (整改工单) and appeals (申诉复核)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from partners.models import utcnow


class RatingReasonSet(SQLModel, table=True):
    """One version of the reason list; ``items``: ``[{code, label, polarity}]`` where
    polarity "good" is offered for levels 4–5 and "bad" for 1–3. Never edited in place:
    the center admin saves a new version and a rating keeps the version it used."""

    __tablename__ = "rating_reason_set"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, foreign_key="staff.id")


class RatingPolicy(SQLModel, table=True):
    """The configurable deadlines, all in working days (one row, id 1)."""

    __tablename__ = "rating_policy"

    id: int = Field(default=1, primary_key=True)
    window_days: int = 5  # 办结后 ratings accepted this long after completion (Shandong)
    callback_days: int = 1  # 核实/回访
    rectify_days: int = 5  # 整改 or 解释说明 (Dezhou 5; Taiyuan 10; Sichuan 15)
    appeal_days: int = 3  # the rated staff member may appeal
    decide_days: int = 5  # the center reviewer decides
    updated_at: NaiveDatetime = Field(default_factory=utcnow)
    updated_by: int | None = Field(default=None, foreign_key="staff.id")


class Rating(SQLModel, table=True):
    """One rating. ``level`` is the overall satisfaction (整体满意度, required); the other
    dimensions are optional. ``text`` stays here (only its SHA-256 reaches the audit leaf);
    ``contact_phone`` only for an anonymous rater who leaves one (sealed at rest,
    :mod:`outlet.pii`; masked in the UI, never in the log). ``dedupe_key`` enforces one rating per case per stage; ``nonce`` refuses a
    replayed form. Excluded ratings (upheld appeal) stay on record, out of the figures."""

    __tablename__ = "rating"
    __table_args__ = (
        Index("ix_rating_outlet_created", "outlet_id", "created_at"),
        # The figures (outlet/figures/ratings.py) read only these columns: a range
        # of this index answers them without visiting the (wide) rows; the second answers
        # "has this case a kept rating" per completed case the same way.
        Index("ix_rating_figures", "created_at", "outlet_id", "level", "excluded", "staff_id",
              "efficiency", "competence", "attitude"),
        Index("ix_rating_case_kept", "case_id", "excluded"),
    )

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id")
    case_id: int | None = Field(default=None, foreign_key="service_case.id")
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    assist_session_id: int | None = Field(default=None, foreign_key="assist_session.id")
    device_id: int | None = Field(default=None, foreign_key="device.id")
    entered_by: int | None = Field(default=None, foreign_key="staff.id")  # call channel
    object: str = Field(max_length=8)  # case / outlet / staff / assist
    stage: str = Field(max_length=8)  # before / during / after
    channel: str = Field(max_length=8)  # device / qr / call
    level: int
    efficiency: int | None = None
    competence: int | None = None
    attitude: int | None = None
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    reasons_version: int
    text: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=128)  # sealed (outlet/pii.py)
    real_name: bool = False
    dedupe_key: str | None = Field(default=None, unique=True, max_length=64)
    nonce: str | None = Field(default=None, unique=True, max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    audit_index: int | None = None  # log index of its rating.submit entry
    excluded: bool = False
    excluded_reason: str | None = Field(default=None, max_length=16)  # 误评 / 恶意差评


class RatingWorkOrder(SQLModel, table=True):
    """整改工单 of one 差评: open → called_back → rectified → feedback → closed (销号).

    ``unit`` says who handles it: "outlet" (the outlet lead, the default) or "center" (a
    差评 of a 视频帮办 / 远程勘验 expert: a center reviewer of the expert's domain)."""

    __tablename__ = "rating_work_order"

    id: int | None = Field(default=None, primary_key=True)
    rating_id: int = Field(foreign_key="rating.id", unique=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    unit: str = Field(default="outlet", max_length=8)  # outlet / center
    owner_id: int | None = Field(default=None, foreign_key="staff.id")  # lead or center reviewer
    backup_id: int | None = Field(default=None, foreign_key="staff.id")  # their AB角
    state: str = Field(default="open", index=True, max_length=12)
    opened_at: NaiveDatetime = Field(default_factory=utcnow)
    callback_due: date
    rectify_due: date
    callback_at: NaiveDatetime | None = None
    callback_reached: bool | None = None
    callback_note: str | None = Field(default=None, max_length=500)
    rectify_kind: str | None = Field(default=None, max_length=8)  # rectify / explain
    rectify_note: str | None = Field(default=None, max_length=1000)
    rectified_at: NaiveDatetime | None = None
    feedback_view: str | None = Field(default=None, max_length=8)  # 满意 / 基本满意 / 不满意
    feedback_note: str | None = Field(default=None, max_length=500)
    feedback_at: NaiveDatetime | None = None
    closed_at: NaiveDatetime | None = None
    closed_by: int | None = Field(default=None, foreign_key="staff.id")
    escalated_at: NaiveDatetime | None = None


class RatingAppeal(SQLModel, table=True):
    """申诉复核 by the rated staff member; pending → upheld (rating excluded) / rejected."""

    __tablename__ = "rating_appeal"

    id: int | None = Field(default=None, primary_key=True)
    rating_id: int = Field(foreign_key="rating.id", unique=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    reason: str = Field(max_length=500)
    evidence_sha256: str | None = Field(default=None, max_length=64)  # in the FileStore
    evidence_type: str | None = Field(default=None, max_length=64)  # sniffed content type
    filed_at: NaiveDatetime = Field(default_factory=utcnow)
    decide_due: date
    state: str = Field(default="pending", index=True, max_length=12)
    decided_by: int | None = Field(default=None, foreign_key="staff.id")
    decided_at: NaiveDatetime | None = None
    category: str | None = Field(default=None, max_length=16)  # 误评 / 恶意差评
    decision_note: str | None = Field(default=None, max_length=500)


class RatingPadLink(SQLModel, table=True):
    """The case a teller linked to their counter's 评价器 (one per device, replaced by the
    next link, removed by the rating that used it). ``token`` goes into the pad's form so
    a rating is tied to exactly the case that was on screen when the applicant rated."""

    __tablename__ = "rating_pad_link"

    device_id: int = Field(primary_key=True, foreign_key="device.id",
                           sa_column_kwargs={"autoincrement": False})
    case_id: int = Field(foreign_key="service_case.id")
    token: str = Field(max_length=32)
    linked_by: int = Field(foreign_key="staff.id")
    linked_at: NaiveDatetime = Field(default_factory=utcnow)
