"""Tables of who may do what: partners, agreements, outlets, staff, the catalog, grants."""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Naive UTC now: every timestamp in the database is naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class PartnerKind(str, enum.Enum):
    bank = "bank"
    post = "post"
    building = "building"
    park = "park"
    block = "block"
    mall = "mall"


PARTNER_KIND_LABELS = {
    "bank": "银行网点",
    "post": "邮政网点",
    "building": "商务楼宇",
    "park": "产业园区",
    "block": "街道社区",
    "mall": "商场",
}


class Role(str, enum.Enum):
    teller = "teller"
    block_agent = "block_agent"
    outlet_lead = "outlet_lead"
    expert = "expert"
    reviewer = "reviewer"
    admin = "admin"
    security_admin = "security_admin"
    auditor = "auditor"
    partner_manager = "partner_manager"


ROLE_LABELS = {
    "teller": "服务专员",
    "block_agent": "网格帮办代办员",
    "outlet_lead": "网点负责人",
    "expert": "远程专家",
    "reviewer": "中心审核人员",
    "admin": "系统管理员",
    "security_admin": "安全管理员",
    "auditor": "审计人员",
    "partner_manager": "合作方管理员",
}

OUTLET_ROLES = frozenset({"teller", "block_agent", "outlet_lead"})
CENTER_ROLES = frozenset({"expert", "reviewer", "admin", "security_admin", "auditor"})
# 三员分立 (GB/T 22239-2019 8.1.4.2 c): system, security and audit administration are
# separate duties; no account holds two of them, nor a duty and a business role.
DUTY_ROLES = frozenset({"admin", "security_admin", "auditor"})
# Partner side (e.g. a bank's branch-network office): read-only figures of the partner's own
# outlets; bound to one partner (``Staff.partner_id``), never combined with another post.
PARTNER_ROLES = frozenset({"partner_manager"})
# What a pending request of a security admin asks for (Staff.pending_kind), as shown.
PENDING_KINDS = {
    "reset": "密码重置",
    "roles": "岗位变更",
    "activation": "启用账号",
    "deactivation": "停用账号",
}


class Scope(str, enum.Enum):
    """Service modes a grant may delegate (DOMAIN.md)."""

    consult = "咨询"
    assist = "帮办"
    intake = "收件受理"
    agent = "代办"
    instant = "即办"
    video = "视频办"


class Partner(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=32)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=16)
    contact: str = Field(default="", max_length=120)
    active: bool = True


class Agreement(SQLModel, table=True):
    """政银+ cooperation agreement between the center and a partner."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=64)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    parties: str = Field(max_length=255)
    signed_on: date
    valid_from: date
    valid_to: date
    status: str = Field(default="active", max_length=16)  # draft / active / terminated


class Outlet(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=32)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    name: str = Field(max_length=120)
    address: str = Field(max_length=255)
    phone: str = Field(default="", max_length=32)  # counter phone, printed on receipts
    kind: str = Field(max_length=16)
    latitude: float | None = None
    longitude: float | None = None
    opening_hours: str = Field(default="", max_length=120)
    self_service_24h: bool = False
    active: bool = True


class Staff(SQLModel, table=True):
    """A login. ``outlet_id`` is None for center staff; ``partner_id`` is set only for a
    合作方管理员 (partner manager), who sees that partner's outlets."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    display_name: str = Field(max_length=64)
    password_hash: str = Field(max_length=255)
    outlet_id: int | None = Field(default=None, foreign_key="outlet.id", index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id", index=True)
    roles: str = Field(default="", max_length=120)  # comma-separated Role values
    domain: str | None = Field(default=None, max_length=32)  # experts and reviewers
    expert_level: str | None = Field(default=None, max_length=16)  # city / district / town
    phone: str = Field(default="", max_length=32)
    active: bool = True
    must_change_password: bool = False  # set when someone else chose the password
    # One pending request per account waits for a second security admin (two-person rule,
    # partners.accounts.settle_request): ``pending_kind`` is one of PENDING_KINDS; a reset holds
    # no password (the server generates one at approval); ``pending_roles`` are the roles the
    # account will have, ``pending_post`` (JSON) the outlet/partner/domain/level change that
    # waits with them — nothing of the request applies before approval.
    pending_kind: str | None = Field(default=None, max_length=16)
    pending_by: int | None = None
    pending_at: NaiveDatetime | None = None
    pending_roles: str | None = Field(default=None, max_length=128)
    pending_post: str | None = Field(default=None, max_length=255)
    created_at: NaiveDatetime = Field(default_factory=utcnow)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)

    @property
    def pending_changes(self) -> dict[str, Any]:
        """The post fields (outlet_id, partner_id, domain, expert_level, active) the pending
        request would set, by name."""
        return dict(json.loads(self.pending_post)) if self.pending_post else {}


class BackupAssignment(SQLModel, table=True):
    """AB角: ``backup_id`` covers ``holder_id``'s post while the holder is away."""

    id: int | None = Field(default=None, primary_key=True)
    holder_id: int = Field(foreign_key="staff.id", index=True)
    backup_id: int = Field(foreign_key="staff.id", index=True)
    valid_from: date
    valid_to: date | None = None
    note: str = Field(default="", max_length=255)


class Matter(SQLModel, table=True):
    """A catalog entry (事项). Its content lives in versions; cases keep the version used."""

    id: int | None = Field(default=None, primary_key=True)
    basic_code: str = Field(index=True, max_length=12)
    implementation_code: str = Field(unique=True, index=True, max_length=40)
    current_version: int = 1
    active: bool = True


class MatterVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("matter_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    matter_id: int = Field(foreign_key="matter.id", index=True)
    version: int
    name: str = Field(max_length=200)
    matter_type: str = Field(max_length=2)  # 01 许可 … 20 公共服务
    domain: str = Field(index=True, max_length=32)  # 社保, 医保, 公积金, 商事登记, 不动产, 民政 …
    case_kind: str = Field(max_length=8)  # 即办件 / 承诺件
    statutory_days: int
    committed_days: int
    fee: str = Field(default="不收费", max_length=120)
    fee_basis: str = Field(default="", max_length=255)
    service_object: str = Field(default="自然人", max_length=64)
    acceptance_conditions: str = Field(default="")
    # [{"key": "m1", "name": ..., "form": "纸质|电子|纸质+电子", "copies": 1,
    #   "necessity": "必要|非必要|容缺后补", "note": ...}]
    materials: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    inspection_required: bool = False
    inspection_checklist: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    recording_required: bool = False
    service_modes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, foreign_key="staff.id")


class Grant(SQLModel, table=True):
    """A delegation: agreement → matters → scopes → outlets, for a period."""

    __tablename__ = "delegation_grant"

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    valid_from: date
    valid_to: date
    revoked_at: NaiveDatetime | None = None
    revoked_reason: str | None = Field(default=None, max_length=255)
    revoked_by: int | None = Field(default=None, foreign_key="staff.id")
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, foreign_key="staff.id")


class GrantMatter(SQLModel, table=True):
    grant_id: int = Field(foreign_key="delegation_grant.id", primary_key=True)
    matter_id: int = Field(foreign_key="matter.id", primary_key=True, index=True)


class GrantOutlet(SQLModel, table=True):
    grant_id: int = Field(foreign_key="delegation_grant.id", primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", primary_key=True, index=True)
