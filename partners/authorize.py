"""The one function that decides whether a staff member may perform a delegated action.

``authorize`` returns the grant in force (or ``None`` for actions that need no grant) or
raises a typed refusal from :mod:`partners.errors`. Checks run in the order that gives the
most useful message:

1. the action is known (a programming error otherwise: ``ValueError``);
2. the account is active and holds a role allowed for the action (``RoleLacksAction``);
3. where the actor stands: outlet staff must belong to the outlet — or cover it as an AB角
   backup (``WrongOutlet``), except for a referral (``ActionRule.referral``: asking another
   outlet to serve, whose grant is then checked); center reviewers and experts bound to a domain may only act on
   matters of that domain (``WrongDomain``, a ``RoleLacksAction``);
4. for actions that need an outlet grant: the outlet, its partner and the matter are
   active, some grant links them at all (``NotDelegated``), one of them is in force
   (``GrantRevoked`` / ``GrantExpired`` / ``GrantNotYetValid``, judged on the most relevant
   grant), and the grant in force carries the required scope — also allowed by the matter's
   catalog entry when that lists service modes (``ScopeNotGranted``).

Actions without an outlet grant (出件, 撤回, 查看证件号, center and admin actions) return
``None``: finishing a case already taken in never depends on the grant still being in force.

AB角 choice: a backup acts with *their own* roles at the holder's outlet while a
``BackupAssignment`` is in force (valid_from ≤ day ≤ valid_to, open-ended when valid_to is
empty). The holder keeps access too: the assignment adds a post, it never removes one.
Center-side backups (reviewer for reviewer) are not modelled: reviewers are pooled by domain.

Grant and agreement periods are calendar days in China (Asia/Shanghai); ``at`` is naive UTC
(as stored in the database) or timezone-aware.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, or_
from sqlmodel import Session, col, select

from partners.errors import (
    GrantExpired,
    GrantNotYetValid,
    GrantRevoked,
    NotDelegated,
    RoleLacksAction,
    ScopeNotGranted,
    WrongDomain,
    WrongOutlet,
)
from partners.models import (
    CENTER_ROLES,
    ROLE_LABELS,
    Agreement,
    BackupAssignment,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
    Partner,
    Scope,
    Staff,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

OUTLET_STAFF = frozenset({"teller", "block_agent", "outlet_lead"})
REVIEWER = frozenset({"reviewer"})
EXPERT = frozenset({"expert"})
ADMIN = frozenset({"admin"})
AUDITOR = frozenset({"auditor"})
SECURITY = frozenset({"security_admin"})
LEAD = frozenset({"outlet_lead"})

INTAKE = (Scope.intake.value,)


class ActionRule(NamedTuple):
    """One row of :data:`ACTIONS`.

    ``scope``: the grant must carry one of these scopes (None: no scope, e.g. center-side).
    ``outlet_grant``: a grant in force for matter × outlet is needed.
    ``domain_bound``: center-side actors with a ``domain`` may only act on that domain.
    ``referral``: outlet staff may ask for it at another outlet than their own (a teller
    refers a resident to the street point that serves them): the outlet that will serve must
    hold the grant with the scope; the actor's own outlet need not.
    """

    roles: frozenset[str]
    scope: tuple[str, ...] | None
    outlet_grant: bool
    label: str
    domain_bound: bool = False
    referral: bool = False


ACTIONS: dict[str, ActionRule] = {
    # --- the counter (outlet side); intake needs 收件受理 (代办 via ``scope=`` override) ---
    "case.create": ActionRule(OUTLET_STAFF, INTAKE, True, "新建办件"),
    "case.material": ActionRule(OUTLET_STAFF, INTAKE, True, "登记/上传材料"),
    "case.notice": ActionRule(OUTLET_STAFF, INTAKE, True, "出具一次性告知书"),
    "case.accept": ActionRule(OUTLET_STAFF, INTAKE, True, "受理"),
    "case.accept_rongque": ActionRule(OUTLET_STAFF, INTAKE, True, "容缺受理"),
    "case.supply": ActionRule(OUTLET_STAFF, INTAKE, True, "补交容缺材料"),
    "case.refuse": ActionRule(OUTLET_STAFF, INTAKE, True, "不予受理"),
    "case.forward": ActionRule(OUTLET_STAFF, INTAKE, True, "转报中心"),
    "case.resubmit": ActionRule(OUTLET_STAFF, INTAKE, True, "补正后重新转报"),
    "case.complete_onsite": ActionRule(OUTLET_STAFF, (Scope.instant.value,), True, "当场办结"),
    # Finishing or protecting an existing case needs no grant in force: an applicant is
    # never stranded because the outlet's grant ended after acceptance.
    "case.deliver": ActionRule(OUTLET_STAFF, None, False, "出件"),
    "case.withdraw": ActionRule(OUTLET_STAFF, None, False, "撤回"),
    "case.reveal_pii": ActionRule(
        OUTLET_STAFF | REVIEWER, None, False, "查看完整证件号码", domain_bound=True
    ),
    # --- the center ---
    "case.review_claim": ActionRule(REVIEWER, None, False, "认领审核", domain_bound=True),
    "case.approve": ActionRule(REVIEWER, None, False, "审核通过（准予）", domain_bound=True),
    "case.reject": ActionRule(REVIEWER, None, False, "不予许可", domain_bound=True),
    "case.request_correction": ActionRule(REVIEWER, None, False, "退回补正", domain_bound=True),
    # --- remote help and inspection ---
    "assist.request": ActionRule(
        OUTLET_STAFF, (Scope.video.value, Scope.assist.value), True, "申请视频帮办/远程勘验"
    ),
    "assist.accept": ActionRule(EXPERT, None, False, "接听视频帮办", domain_bound=True),
    "assist.snapshot": ActionRule(EXPERT, None, False, "取证截图", domain_bound=True),
    "assist.record": ActionRule(EXPERT | OUTLET_STAFF, None, False, "视频录制", domain_bound=True),
    "assist.mark": ActionRule(EXPERT, None, False, "远程预审材料（补正标注）", domain_bound=True),
    "assist.conclude": ActionRule(EXPERT, None, False, "出具勘验结论", domain_bound=True),
    "assist.consent": ActionRule(
        EXPERT | OUTLET_STAFF, None, False, "记录录像授权同意", domain_bound=True
    ),
    # --- service records (outlet/services): opening needs the kind's scope (咨询 / 帮办 /
    # 代办, passed as ``scope=``); later steps, like 出件, never strand an applicant ---
    "service.open": ActionRule(OUTLET_STAFF, (Scope.consult.value,), True, "登记服务（咨询/帮办/陪办/代办）"),
    "service.handover": ActionRule(OUTLET_STAFF, None, False, "转交服务（首问负责）"),
    "service.close": ActionRule(OUTLET_STAFF, None, False, "办结服务记录"),
    "service.entrust": ActionRule(OUTLET_STAFF, (Scope.agent.value,), True, "签订代办委托书并受理"),
    "service.suspend": ActionRule(OUTLET_STAFF, None, False, "代办中止"),
    "service.terminate": ActionRule(OUTLET_STAFF, None, False, "代办终止"),
    "service.deliver": ActionRule(OUTLET_STAFF, None, False, "代办办结送达"),
    # the case itself is authorized by case.create with the 代办 scope (outlet/intake.py)
    "service.case": ActionRule(OUTLET_STAFF, None, False, "代办新建办件"),
    "visit.request": ActionRule(OUTLET_STAFF | ADMIN, (Scope.assist.value,), True, "登记上门服务需求",
                                referral=True),
    "visit.assign": ActionRule(LEAD | ADMIN, None, False, "上门服务派单（改派）"),
    "visit.arrive": ActionRule(OUTLET_STAFF, None, False, "上门服务到达"),
    "visit.complete": ActionRule(OUTLET_STAFF, None, False, "上门服务办结"),
    # --- 告知承诺制 (outlet/promise.py) ---
    "case.promise": ActionRule(OUTLET_STAFF, INTAKE, True, "签署告知承诺书"),
    "case.promise_check": ActionRule(REVIEWER, None, False, "告知承诺核查", domain_bound=True),
    "case.revoke": ActionRule(REVIEWER, None, False, "撤销审批决定", domain_bound=True),
    # --- paired devices: 评价器, kiosks, hall displays (outlet/devices.py) ---
    "device.pair": ActionRule(LEAD, None, False, "配对终端设备"),
    "device.revoke": ActionRule(LEAD, None, False, "停用终端设备"),
    # --- the queue (outlet/queue/): lines, counters, tickets; no grant, outlet membership ---
    "queue.line.edit": ActionRule(LEAD | ADMIN, None, False, "维护业务类型"),  # admin: center defaults
    "queue.counter.edit": ActionRule(LEAD | ADMIN, None, False, "维护窗口"),
    "queue.sign_in": ActionRule(OUTLET_STAFF, None, False, "窗口签到"),
    "queue.sign_out": ActionRule(OUTLET_STAFF, None, False, "窗口签退"),
    **{f"ticket.{step}": ActionRule(OUTLET_STAFF, None, False, label) for step, label in (
        ("issue", "取号"), ("call", "叫号"), ("recall", "重呼"), ("no_show", "过号（弃号）"),
        ("serve", "开始办理"), ("transfer", "转移号票"), ("hold", "挂起号票"), ("done", "完成办理"),
        ("cancel", "取消号票"), ("link", "号票关联办件"))},
    "booking.check_in": ActionRule(OUTLET_STAFF, None, False, "预约签到"),
    "booking.block_lift": ActionRule(LEAD, None, False, "解除预约限制"),
    # --- 好差评 (outlet/ratings): the applicant's QR and 评价器 ratings are unattended
    # actions (no staff login); the call channel and every 差评 step are delegated ---
    "rating.submit": ActionRule(OUTLET_STAFF, None, False, "提交评价"),
    "rating.pad_link": ActionRule(OUTLET_STAFF, None, False, "推送办件到评价器"),
    "rating.pad_unlink": ActionRule(OUTLET_STAFF, None, False, "从评价器撤回办件"),
    "rating.callback": ActionRule(LEAD | REVIEWER, None, False, "差评核实回访"),
    "rating.rectify": ActionRule(LEAD | REVIEWER, None, False, "差评整改/解释说明"),
    "rating.feedback": ActionRule(LEAD | REVIEWER, None, False, "整改结果反馈"),
    "rating.close": ActionRule(LEAD | REVIEWER, None, False, "差评销号"),
    "rating.appeal": ActionRule(OUTLET_STAFF | EXPERT, None, False, "差评申诉"),
    "rating.appeal_decide": ActionRule(REVIEWER | ADMIN, None, False, "申诉复核"),
    "rating.escalate": ActionRule(ADMIN, None, False, "超期差评工单升级"),
    "admin.rating.edit": ActionRule(ADMIN, None, False, "维护评价原因清单与期限"),
    # --- audit (read-only role) ---
    "audit.search": ActionRule(AUDITOR, None, False, "检索审计日志"),
    "audit.export": ActionRule(AUDITOR, None, False, "导出审计日志"),
    # --- administration (any other "admin.*" action falls back to ADMIN_RULE) ---
    "admin.grant.create": ActionRule(ADMIN, None, False, "新增委托授权"),
    "admin.grant.revoke": ActionRule(ADMIN, None, False, "撤销委托授权"),
    "admin.catalog.edit": ActionRule(ADMIN, None, False, "维护事项清单"),
    "admin.outlet.edit": ActionRule(ADMIN, None, False, "维护网点"),
    "admin.partner.edit": ActionRule(ADMIN, None, False, "维护合作机构"),
    "admin.agreement.edit": ActionRule(ADMIN, None, False, "维护合作协议"),
    "admin.calendar.edit": ActionRule(ADMIN, None, False, "维护工作日历"),
    "admin.queue.edit": ActionRule(ADMIN, None, False, "维护排队叫号默认设置"),
    # --- security administration (三员分立: accounts, roles, passwords, sessions) ---
    "security.staff.edit": ActionRule(SECURITY, None, False, "维护人员账号、岗位与 AB 角"),
    "security.password.reset": ActionRule(SECURITY, None, False, "重置密码"),
    "security.request.decide": ActionRule(SECURITY, None, False, "批准、驳回或撤销待批准的申请（双人复核）"),
    "security.sessions.end": ActionRule(SECURITY, None, False, "结束登录会话"),
}

ADMIN_RULE = ActionRule(ADMIN, None, False, "系统管理")


def rule_for(action: str) -> ActionRule:
    """The rule of ``action``; unknown actions are programming errors (``ValueError``)."""
    rule = ACTIONS.get(action)
    if rule is None and action.startswith("admin."):
        rule = ADMIN_RULE
    if rule is None:
        raise ValueError(f"unknown action {action!r}")
    return rule


def roles_for(action: str) -> frozenset[str]:
    """Roles allowed to perform ``action``."""
    return rule_for(action).roles


# --- time helpers ----------------------------------------------------------------------
def as_utc_naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def local_day(at: datetime) -> date:
    """The calendar day in China at instant ``at`` (naive = UTC)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL_TZ).date()


# --- grant state -----------------------------------------------------------------------
@dataclass(frozen=True)
class GrantState:
    """Whether a grant (with its agreement) is in force at an instant, and if not, why."""

    status: str  # active / revoked / expired / pending
    reason: str = ""  # Chinese detail for refusals and the admin list

    @property
    def in_force(self) -> bool:
        return self.status == "active"


STATUS_LABELS = {"active": "生效中", "expired": "已过期", "revoked": "已撤销", "pending": "未生效"}


def grant_state(grant: Grant, agreement: Agreement, at: datetime) -> GrantState:
    """Classify ``grant`` at ``at``. Revocation beats expiry beats "not yet valid"."""
    now = as_utc_naive(at)
    day = local_day(at)
    if grant.revoked_at is not None and grant.revoked_at <= now:
        when = local_day(grant.revoked_at).isoformat()
        why = f"：{grant.revoked_reason}" if grant.revoked_reason else ""
        return GrantState("revoked", f"已于 {when} 撤销{why}")
    if agreement.status == "terminated":
        return GrantState("revoked", f"合作协议 {agreement.number} 已终止")
    if day > grant.valid_to:
        return GrantState("expired", f"已于 {grant.valid_to.isoformat()} 到期")
    if day > agreement.valid_to:
        return GrantState(
            "expired", f"合作协议 {agreement.number} 已于 {agreement.valid_to.isoformat()} 到期"
        )
    if day < grant.valid_from:
        return GrantState("pending", f"自 {grant.valid_from.isoformat()} 起生效")
    if agreement.status != "active" or day < agreement.valid_from:
        return GrantState("pending", f"合作协议 {agreement.number} 尚未生效")
    return GrantState("active")


# --- the decision ----------------------------------------------------------------------
def authorize(
    session: Session,
    actor: Staff,
    action: str,
    matter: Matter | None,
    outlet: Outlet | None,
    at: datetime,
    *,
    scope: str | None = None,
) -> Grant | None:
    """Return the grant in force for ``action``, ``None`` when the action needs no grant,
    or raise a :class:`~partners.errors.DelegationRefused` subclass.

    ``scope`` overrides the scope the action requires (e.g. ``"代办"`` for intake of a case
    whose service mode is 代办).
    """
    rule = rule_for(action)
    if scope is not None and scope not in {s.value for s in Scope}:
        raise ValueError(f"unknown scope {scope!r}")
    label = rule.label
    if not actor.active:
        raise RoleLacksAction("您的账号已停用，不能办理业务")
    acting = actor.role_set & rule.roles
    if not acting:
        held = "、".join(ROLE_LABELS.get(r, r) for r in sorted(actor.role_set)) or "无岗位"
        raise RoleLacksAction(f"您的岗位（{held}）无权执行「{label}」")
    center_side = bool(acting & CENTER_ROLES)
    if action.startswith("case.") and outlet is None:
        raise ValueError(f"{action} needs the case's outlet")

    if center_side:
        if rule.domain_bound and actor.domain and matter is not None:
            domain = _version(session, matter).domain
            if domain != actor.domain:
                raise WrongDomain(
                    f"该事项属于「{domain}」领域，您负责「{actor.domain}」领域，无权执行「{label}」"
                )
        return None

    if outlet is None:
        raise ValueError(f"{action} by outlet staff needs an outlet")
    if not (rule.referral and actor.outlet_id is not None):
        _check_outlet_membership(session, actor, outlet, at)
    if not rule.outlet_grant:
        return None
    required = (scope,) if scope is not None else (rule.scope or ())
    return _grant_in_force(session, matter, outlet, at, required, label)


def _check_outlet_membership(session: Session, actor: Staff, outlet: Outlet, at: datetime) -> None:
    if actor.outlet_id is not None and actor.outlet_id == outlet.id:
        return
    if outlet.id in covered_outlets(session, actor, at):
        return
    raise WrongOutlet(f"您不属于「{outlet.name}」，不能在该网点办理业务")


def covered_outlets(session: Session, actor: Staff, at: datetime) -> set[int]:
    """Outlets ``actor`` covers as an AB角 backup at ``at`` (their own outlet excluded)."""
    params = {"backup_id": actor.id, "day": local_day(at)}
    return {oid for oid in session.execute(_statements().cover, params).scalars() if oid is not None}


def _version(session: Session, matter: Matter) -> MatterVersion:
    version = session.execute(
        _statements().version, {"matter_id": matter.id, "version": matter.current_version}
    ).scalars().first()
    if version is None:
        raise ValueError(
            f"matter {matter.implementation_code} has no version {matter.current_version}"
        )
    return version


class _Statements(NamedTuple):
    cover: Any
    version: Any
    grants: Any
    matter_grants: Any


@functools.cache
def _statements() -> _Statements:
    """The decision's queries, built once (every delegated action runs them; building a
    select costs more than running it)."""
    day = bindparam("day")
    cover = (
        select(Staff.outlet_id)
        .join(BackupAssignment, BackupAssignment.holder_id == Staff.id)  # type: ignore[arg-type]
        .where(BackupAssignment.backup_id == bindparam("backup_id"))
        .where(BackupAssignment.valid_from <= day)
        .where(or_(col(BackupAssignment.valid_to).is_(None), col(BackupAssignment.valid_to) >= day))
        .where(Staff.active)
    )
    version = (select(MatterVersion)
               .where(MatterVersion.matter_id == bindparam("matter_id"))
               .where(MatterVersion.version == bindparam("version")))
    grants = (
        select(Grant, Agreement)
        .join(GrantOutlet, GrantOutlet.grant_id == Grant.id)  # type: ignore[arg-type]
        .join(Agreement, Agreement.id == Grant.agreement_id)  # type: ignore[arg-type]
        .where(GrantOutlet.outlet_id == bindparam("outlet_id"))
        .where(Agreement.partner_id == bindparam("partner_id"))
        .order_by(Grant.id.desc())  # type: ignore[union-attr]
    )
    matter_grants = grants.join(GrantMatter, GrantMatter.grant_id == Grant.id).where(  # type: ignore[arg-type]
        GrantMatter.matter_id == bindparam("matter_id")
    )
    return _Statements(cover, version, grants, matter_grants)


def _grant_in_force(
    session: Session,
    matter: Matter | None,
    outlet: Outlet,
    at: datetime,
    required: tuple[str, ...],
    label: str,
) -> Grant:
    what = f"「{_version(session, matter).name}」" if matter is not None else f"「{label}」"
    if not outlet.active:
        raise NotDelegated(f"「{outlet.name}」已停用，不能办理委托事项")
    partner = session.get(Partner, outlet.partner_id)
    if partner is None or not partner.active:
        raise NotDelegated(f"「{outlet.name}」所属合作机构已停用，不能办理委托事项")
    if matter is not None and not matter.active:
        raise NotDelegated(f"{what}已停用，不能办理")

    stmts = _statements()
    params = {"outlet_id": outlet.id, "partner_id": outlet.partner_id}
    if matter is not None:
        params["matter_id"] = matter.id
    stmt = stmts.matter_grants if matter is not None else stmts.grants
    candidates = [(g, a, grant_state(g, a, at)) for g, a in session.execute(stmt, params).all()]
    if not candidates:
        raise NotDelegated(f"{what}未委托「{outlet.name}」办理")

    def has_scope(grant: Grant) -> bool:
        return not required or bool(set(required) & set(grant.scopes))

    wanted = "或".join(f"「{s}」" for s in required)
    usable = [g for g, _a, st in candidates if st.in_force and has_scope(g)]
    if usable:
        grant = usable[0]  # newest grant in force
        if matter is not None and required:
            modes = set(_version(session, matter).service_modes)
            if modes and not (modes & set(required) & set(grant.scopes)):
                raise ScopeNotGranted(f"{what}的事项清单不允许在合作网点以{wanted}方式办理")
        return grant

    in_force = [g for g, _a, st in candidates if st.in_force]
    scoped = [(g, st) for g, _a, st in candidates if has_scope(g)]
    if in_force and not scoped:
        granted = "、".join(sorted({s for g in in_force for s in g.scopes})) or "无"
        raise ScopeNotGranted(
            f"「{outlet.name}」对{what}的授权方式为「{granted}」，不含{wanted}，不能「{label}」"
        )
    # No usable grant: explain with the newest grant that carries the scope, if any.
    _grant, state = scoped[0] if scoped else (candidates[0][0], candidates[0][2])
    detail = f"{what}在「{outlet.name}」的委托授权{state.reason}"
    if state.status == "revoked":
        raise GrantRevoked(detail)
    if state.status == "expired":
        raise GrantExpired(detail)
    if state.status == "pending":
        raise GrantNotYetValid(detail)
    # In force but without the scope while another scoped grant is not in force is
    # covered above; reaching here means the scoped grant is in force — impossible.
    raise ScopeNotGranted(f"{what}在「{outlet.name}」未授权{wanted}")


# --- who sees which figures (效能监测, issue 13) -----------------------------------------
FIGURE_ROLES = frozenset({"admin", "partner_manager", "outlet_lead", "teller", "block_agent", "expert"})


@dataclass(frozen=True)
class FigureView:
    """What ``actor`` may see on the dashboard. ``outlet_ids`` None: every outlet;
    ``staff_id`` set: only that staff member's own figures. ``label`` names it in Chinese."""

    outlet_ids: frozenset[int] | None
    staff_id: int | None
    label: str


def figure_view(session: Session, actor: Staff, at: datetime) -> FigureView:
    """The figures ``actor`` may see, by role (the first that applies):

    * 系统管理员 (center admin): every outlet;
    * 合作方管理员: the outlets of their partner (``Staff.partner_id``), active or not;
    * 网点负责人: their outlet plus outlets covered as an AB角 backup at ``at``;
    * 服务专员 / 网格帮办代办员: their own figures at those outlets;
    * 远程专家: their own figures, wherever the calls came from.

    Raises :class:`RoleLacksAction` for anyone else (reviewers, security admins, auditors:
    the auditor recomputes figures from an export instead)."""
    roles = actor.role_set
    if not actor.active:
        raise RoleLacksAction("您的账号已停用")
    if "admin" in roles:
        return FigureView(None, None, "全部网点")
    if "partner_manager" in roles:
        partner = session.get(Partner, actor.partner_id) if actor.partner_id else None
        if partner is None:
            raise RoleLacksAction("您的账号未绑定合作机构，请联系安全管理员")
        ids = session.exec(select(Outlet.id).where(Outlet.partner_id == partner.id)).all()
        return FigureView(frozenset(i for i in ids if i is not None), None, partner.name)
    if roles & OUTLET_STAFF and actor.outlet_id is not None:
        outlets = frozenset({actor.outlet_id} | covered_outlets(session, actor, at))
        if "outlet_lead" in roles:
            outlet = session.get(Outlet, actor.outlet_id)
            return FigureView(outlets, None, outlet.name if outlet else "本网点")
        return FigureView(outlets, actor.id, f"{actor.display_name}（本人）")
    if "expert" in roles:
        return FigureView(None, actor.id, f"{actor.display_name}（本人）")
    raise RoleLacksAction("您的岗位无权查看服务统计")
