"""View models for the auditor UI: parsing the search form, turning leaves and checkpoints
into rows for the templates (Beijing time, Chinese labels). No HTTP here."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session, col, select

import audit
from outlet.queue.bookings import STATE_LABELS as BOOKING_STATES
from outlet.queue.tickets import STATE_LABELS as TICKET_STATES
from outlet.ratings.workorders import STATE_LABELS as WORK_ORDER_STATES
from outlet.services.records import STATE_LABELS as SERVICE_STATES
from outlet.services.visits import VISIT_STATES
from outlet.states import STATE_LABELS
from partners.authorize import ACTIONS
from partners.models import ROLE_LABELS as STAFF_ROLE_LABELS
from partners.models import Matter, MatterVersion, Outlet, Partner, Staff
from remote_assist.models import REQUEST_STATUS_LABELS, SESSION_STATE_LABELS
from web.params import MAX_INDEX, int_param
from web.routes.audit_export import utc_range
from web.templating import LOCAL_TZ

TEXT_FILTERS = ("case", "outlet", "partner", "matter", "action")
FILTER_NAMES = (*TEXT_FILTERS, "actor", "from", "to")
FILTER_LABELS = {
    "case": "办件编号", "outlet": "网点", "partner": "合作机构", "actor": "操作人",
    "matter": "事项实施编码", "action": "操作", "from": "开始日期", "to": "结束日期",
}  # fmt: skip
OUTCOME_LABELS = {"done": "已完成", "refused": "已拒绝"}
DIGEST_LABELS = {"material": "材料扫描件", "snapshot": "取证截图", "recording": "视频录像"}


# The reason code of every refusal (``outcome.reason``: an ActionRefused subclass's ``code``
# or a ``code=`` given where it is raised, and web/refusals.py's access reasons) in words.
# tests/web/test_refusal_labels.py scans the code for reason codes and fails on one missing here.
REASON_LABELS = {
    # authorization (partners/errors.py)
    "refused": "操作被拒绝",
    "delegation_refused": "未获委托授权",
    "not_delegated": "该事项未委托给本机构",
    "scope_not_granted": "授权范围不含该服务方式（收件、帮办、代办或咨询）",
    "grant_expired": "授权已过期",
    "grant_not_yet_valid": "授权尚未生效",
    "grant_revoked": "授权已撤销",
    "wrong_outlet": "不是本网点的业务",
    "role_lacks_action": "岗位无权执行该操作",
    "wrong_domain": "不属于本人负责的审核或专家领域",
    "duty_separation": "违反岗位分离规则（不能自己审批自己的申请等）",
    "request_pending": "该账号已有待批准的申请（一个账号同时只能有一项）",
    # cases (outlet/errors.py, outlet/states.py, intake, review, promise)
    "illegal_transition": "当前状态下不能执行该操作",
    "guard_failed": "办理条件不满足",
    "reason_required": "未填写原因或需补正的内容",
    "materials_incomplete": "材料不齐全或尚未补正",
    "rongque_not_allowed": "该材料不允许容缺受理",
    "rongque_not_needed": "材料已齐全，无需容缺受理",
    "commitment_missing": "容缺受理缺少申请人的书面承诺",
    "deadline_missing": "未填写补齐材料的期限",
    "deadline_past": "补齐材料期限早于今天",
    "deadline_after_due": "补齐材料期限晚于承诺办结日期",
    "rongque_outstanding": "容缺材料尚未补齐",
    "inspection_pending": "现场核查尚未完成",
    "not_instant": "承诺件不能在网点当场办结",
    "nothing_to_notify": "材料已齐全，无需出具一次性告知书",
    "claimed_by_other": "办件已由其他审核人员认领",
    "not_promisable": "所选材料不适用告知承诺制（以事项清单为准）",
    "promise_not_false": "告知承诺核查结果不是不属实，不能撤销决定",
    "promised_material": "该材料已由告知承诺代替，不能标记为缺失或有问题",
    "invalid_input": "输入内容无效",
    # services and home visits (outlet/services/)
    "not_owner": "非首问责任人，不能办结或转交",
    "not_assigned": "该上门服务已指派给其他网格员",
    # queue and bookings (outlet/queue/)
    "queue_refused": "取号叫号操作被拒绝",
    "not_signed_in": "窗口人员尚未签到上岗",
    "counter_busy": "窗口正在办理其他号票",
    "queue_empty": "队列中没有等候的号票",
    "issuing_closed": "已停止取号",
    "slot_full": "预约时段已约满",
    "booking_blocked": "多次爽约，暂停预约",
    "one_per_day": "同一手机号同一业务每天只能预约一次",
    "too_late": "距预约时段开始不足 2 小时，不能取消",
    "ambiguous": "手机号后四位对应多个预约，无法确定",
    "outside_window": "不在预约签到时间范围内",
    # devices, ratings, remote assistance
    "device_refused": "终端设备未获准执行该操作",
    "rating_refused": "评价或工单操作被拒绝",
    "already_rated": "该评价已提交",
    "replayed_form": "重复提交的评价表",
    "not_rateable": "办件未受理，不能评价",
    "stage_passed": "已过该评价阶段",
    "not_completed": "办件尚未办结，不能进行办结后评价",
    "window_closed": "已过办结后评价期限",
    "link_changed": "窗口的办件已变更",
    "pad_link_refused": "不能推送到评价器",
    "not_session_teller": "不是本人发起且已结束的视频帮办",
    "not_rated_staff": "不是被评价的工作人员本人",
    "not_bad_rating": "只能对差评提出申诉",
    "already_appealed": "该评价已提出过申诉",
    "appeal_window_closed": "已过申诉期限",
    "already_decided": "该申诉已复核",
    "not_responsible": "不是该工单的责任人",
    "callback_missing": "实名差评未记录回访，不能销号",
    "not_offered": "该求助不在本专家的队列中",
    # access.refused (web/refusals.py): a page the role lacks, a record outside its scope
    "forbidden": "岗位无权访问该页面或操作",
    "not_found": "超出本人权限范围，或编号不存在（猜测的编号）",
    # security.login refused (web/refusals.py, tallied per account per minute)
    "bad_credentials": "用户名或密码错误",
    "inactive": "账号已停用",
    "throttled": "尝试过于频繁，已限速（未核对密码）",
}
# Where one code means something particular to a family (the action's first word).
FAMILY_REASON_LABELS: dict[str, dict[str, str]] = {
    "illegal_transition": {
        "case": "当前办件状态下不能执行该操作",
        "service": "当前服务记录状态下不能执行该操作",
        "visit": "当前上门服务状态下不能执行该操作",
        "ticket": "当前号票状态下不能执行该操作",
        "queue": "当前号票或队列状态下不能执行该操作",
        "booking": "当前预约状态下不能执行该操作",
        "rating": "当前评价或工单状态下不能执行该操作",
        "assist": "当前求助或视频帮办状态下不能执行该操作",
    },
    "not_found": {"ticket": "未找到该号票", "queue": "未找到该号票"},
    "wrong_outlet": {"booking": "该预约不在本网点"},
}


def reason_label(code: str | None, action: str = "") -> str:
    """The Chinese words for a refusal's reason ``code`` in the family of ``action``
    (``illegal_transition`` of ``service.close`` → 当前服务记录状态下…); "" for no code,
    the code itself when unknown."""
    if not code:
        return ""
    family = action.split(".", 1)[0]
    return FAMILY_REASON_LABELS.get(code, {}).get(family) or REASON_LABELS.get(code, code)


# Entries written by the web layer, not by a delegated action (no ActionRule).
LOG_ONLY_ACTIONS = {"access.refused": "越权访问被拒绝", "security.password.change": "修改本人密码",
                    "security.login": "登录", "security.logout": "退出登录",
                    "security.session.expire": "登录会话超时结束"}
REFUSED_ACCESS = "access.refused"


# Entries written outside the authorization table (partners/authorize.ACTIONS): actions of
# applicants at a kiosk or on their phone and the system's own jobs.
LOG_ONLY_ACTIONS.update({
    "booking.create": "预约", "booking.cancel": "取消预约", "booking.no_show": "预约未到（爽约）",
})
# Actions no longer written but present in signed logs kept for years: their entries stay named.
LOG_ONLY_ACTIONS.update({
    "security.password.approve": "批准密码重置（双人复核，旧记录）",
    "security.roles.approve": "批准或驳回三员岗位授予（双人复核，旧记录）",
})
# Actors that are not staff accounts.
ROLE_LABELS = {**STAFF_ROLE_LABELS, "applicant": "办事群众", "device": "终端设备", "system": "系统",
               "anonymous": "未登录者"}
# The states an entry's ``state`` field speaks of, per family (the action's first word).
FAMILY_STATES: dict[str, dict[str, str]] = {
    "case": STATE_LABELS,
    "ticket": TICKET_STATES,
    "booking": BOOKING_STATES,
    "service": SERVICE_STATES,
    "visit": VISIT_STATES,
    "rating": {**WORK_ORDER_STATES, "pending": "申诉待审", "upheld": "申诉成立", "rejected": "申诉不成立",
               "linked": "已推送到评价器"},
    "assist": {**REQUEST_STATUS_LABELS, **SESSION_STATE_LABELS},
    "queue": {"open": "开放", "closed": "关闭", "active": "启用", "stopped": "停用",
              "signed_in": "已签到上岗", "signed_out": "已签退"},
    "device": {"paired": "已配对", "revoked": "已停用"},
}


def action_label(action: str) -> str:
    """The Chinese name of an entry's action; an unknown action is shown as it is."""
    rule = ACTIONS.get(action)
    return rule.label if rule else LOG_ONLY_ACTIONS.get(action, action)


def refusal_state_labels(state: dict[str, Any]) -> tuple[str, str]:
    """``GET:/admin/staff/17`` / ``count:1`` / ``total:12`` of an access.refused entry in
    words: what was requested, and how often in that minute."""
    asked = str(state.get("from") or "")
    method, _sep, path = asked.partition(":")
    tally = str(state.get("to") or "")
    kind, _sep, n = tally.partition(":")
    count = {"count": f"本分钟首次（第 {n} 次）", "total": f"本分钟共 {n} 次"}.get(kind, tally)
    return (f"请求 {method} {path}" if path else asked), count


def login_refusal_labels(state: dict[str, Any], names: Names) -> tuple[str, str]:
    """``staff:17`` / ``account:unknown[:tag]`` and ``count:1`` / ``total:N`` of a failed-login
    entry in words: which account was tried, and how often in that minute."""
    target = str(state.get("from") or "")
    kind, _sep, rest = target.partition(":")
    if kind == "staff" and rest.isdigit():
        name = names.staff.get(int(rest), "")
        who = f"账号 {name}（{target}）" if name else f"账号 {target}"
    elif kind == "account":
        tagged = rest.partition(":")[2]
        who = "不存在的登录名" + (f"（标记 {tagged}）" if tagged else "")
    else:
        who = target
    return who, refusal_state_labels({"to": state.get("to")})[1]


def state_label(code: str | None, action: str = "case.") -> str:
    """The Chinese name of a state code in the family of ``action`` (``case.forward``,
    ``under_review`` → 审核中; ``ticket.call``, ``called`` → 已呼叫); other strings
    (``calendar:2027-01-01:holiday``; refused reads: :func:`refusal_state_labels`) as they are."""
    if not code:
        return ""
    family = FAMILY_STATES.get(action.split(".", 1)[0], STATE_LABELS)
    if code in family:
        return family[code]
    return code


def beijing(iso_or_dt: str | datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if iso_or_dt is None:
        return ""
    if isinstance(iso_or_dt, str):
        try:
            value = datetime.fromisoformat(iso_or_dt)
        except ValueError:
            return iso_or_dt
    else:
        value = iso_or_dt
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ).strftime(fmt)


def duration(seconds: float | None) -> str:
    if not seconds:
        return "0 秒"
    s = int(seconds)
    if s < 60:
        return f"{s} 秒"
    if s < 3600:
        return f"{s // 60} 分 {s % 60} 秒"
    if s < 86400:
        return f"{s // 3600} 小时 {s % 3600 // 60} 分"
    return f"{s // 86400} 天 {s % 86400 // 3600} 小时"


# --- the search form -------------------------------------------------------------------
@dataclass
class SearchQuery:
    values: dict[str, str] = field(default_factory=dict)  # as typed, for re-rendering
    errors: dict[str, str] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)  # for audit.search_entries
    after: int | None = None

    def params(self, **extra: Any) -> dict[str, str]:
        """Query parameters of this search (for the next-page link)."""
        out = {k: v for k, v in self.values.items() if v}
        out.update({k: str(v) for k, v in extra.items() if v is not None})
        return out


def parse_search(params: Any, session: Session) -> SearchQuery:
    q = SearchQuery()
    for name in FILTER_NAMES:
        q.values[name] = str(params.get(name, "") or "").strip()[:64]
    for name in TEXT_FILTERS:
        if q.values[name]:
            q.kwargs[name] = q.values[name]
    actor = q.values["actor"]
    if (actor_id := int_param(actor, high=MAX_INDEX)) is not None:
        q.kwargs["actor"] = actor_id
    elif actor:
        found = session.exec(select(Staff.id).where(Staff.username == actor)).first()
        if found is None:
            q.errors["actor"] = "未找到该人员：请输入人员编号或用户名"
        else:
            q.kwargs["actor"] = found
    days: dict[str, date] = {}
    for name in ("from", "to"):
        raw = q.values[name]
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                q.errors[name] = "日期格式应为 YYYY-MM-DD"
    if "from" in days and "to" in days and days["to"] < days["from"]:
        q.errors["to"] = "结束日期不能早于开始日期"
    start, end = utc_range(days.get("from"), days.get("to"))
    if start is not None:
        q.kwargs["date_from"] = start
    if end is not None:
        q.kwargs["date_to"] = end
    after = str(params.get("after_index", "") or "")
    if (after_index := int_param(after, high=MAX_INDEX)) is not None:
        q.after = after_index
    return q


# --- rows ------------------------------------------------------------------------------
@dataclass
class Names:
    """Display names for the codes and ids on one page (one query per kind)."""

    staff: dict[int, str] = field(default_factory=dict)
    outlets: dict[str, str] = field(default_factory=dict)
    partners: dict[str, str] = field(default_factory=dict)
    matters: dict[tuple[str, int], str] = field(default_factory=dict)  # (code, version) → name

    @classmethod
    def load(cls, session: Session, entries: list[dict[str, Any]]) -> Names:
        ids = {e["actor"]["id"] for e in entries if isinstance(e.get("actor"), dict)}
        ids |= {int(t[6:]) for e in entries if isinstance(e.get("state"), dict)  # staff:17 of a failed login
                for t in [str(e["state"].get("from") or "")] if t.startswith("staff:") and t[6:].isdigit()}
        outlets = {e["outlet"] for e in entries if e.get("outlet")}
        partners = {e["partner"] for e in entries if e.get("partner")}
        matters = {e["matter"]["code"] for e in entries if isinstance(e.get("matter"), dict)}
        n = cls()
        if matters:
            versions = session.exec(
                select(Matter.implementation_code, MatterVersion.version, MatterVersion.name)
                .join(MatterVersion, col(MatterVersion.matter_id) == Matter.id)
                .where(col(Matter.implementation_code).in_(matters))
            ).all()
            n.matters = {(code, version): name for code, version, name in versions}
        if ids:
            staff = session.exec(
                select(Staff.id, Staff.display_name).where(col(Staff.id).in_(ids))
            ).all()
            n.staff = {sid: name for sid, name in staff if sid is not None}  # ids are primary keys
        if outlets:
            n.outlets = dict(
                session.exec(
                    select(Outlet.code, Outlet.name).where(col(Outlet.code).in_(outlets))
                ).all()
            )
        if partners:
            rows = session.exec(
                select(Partner.code, Partner.name).where(col(Partner.code).in_(partners))
            ).all()
            n.partners = dict(rows)
        return n


CHANGE_LABELS = {"roles": "岗位", "outlet": "所属网点", "partner": "所属合作机构", "active": "账号状态",
                 "domain": "业务领域", "level": "专家层级"}


def _post_value(key: str, value: Any) -> str:
    """A staff change's value in Chinese (roles and levels by name, active as 启用/停用)."""
    from partners.accounts import EXPERT_LEVELS

    if value is None:
        return "（无）"
    if key == "active":
        return "启用" if value else "停用"
    if key == "roles":
        return "、".join(ROLE_LABELS.get(r, r) for r in str(value).split("/"))
    if key == "level":
        return EXPERT_LEVELS.get(str(value), str(value))
    return str(value)


def change_rows(terms: Any) -> list[dict[str, str]]:
    """What a staff-account entry changed (``terms``, docs/audit.md "Staff changes"), as
    Chinese ``{label, from, to}`` rows; empty for any other entry."""
    if not isinstance(terms, dict):
        return []
    return [{"key": k, "label": label, "from": _post_value(k, terms[k].get("from")),
             "to": _post_value(k, terms[k].get("to"))}
            for k, label in CHANGE_LABELS.items() if isinstance(terms.get(k), dict)]


def entry_row(view: audit.EntryView, names: Names, covered_size: int) -> dict[str, Any]:
    e = view.entry
    actor = e.get("actor") or {}
    outcome = e.get("outcome") or {}
    matter = e.get("matter") or None
    state = e.get("state") or {}
    reason = outcome.get("reason")
    actor_id = actor.get("id")
    action = str(e.get("action", ""))
    row_state_labels = None
    if action == REFUSED_ACCESS:
        row_state_labels = refusal_state_labels(state)
    elif action == "security.login" and reason:
        row_state_labels = login_refusal_labels(state, names)
    return {
        "index": view.index,
        "time": beijing(e.get("time")),
        "action": e.get("action", ""),
        "action_label": action_label(str(e.get("action", ""))),
        "actor_id": actor_id,
        "actor_name": names.staff.get(actor_id, "") if actor_id is not None else "",
        "role": actor.get("role", ""),
        "role_label": ROLE_LABELS.get(actor.get("role", ""), actor.get("role", "")),
        "outlet": e.get("outlet"),
        "outlet_name": names.outlets.get(e.get("outlet") or "", ""),
        "partner": e.get("partner"),
        "partner_name": names.partners.get(e.get("partner") or "", ""),
        "case": e.get("case"),
        "matter": f"{matter['code']} 第 {matter['version']} 版" if matter else "",
        "matter_code": matter["code"] if matter else None,
        "matter_name": names.matters.get((matter["code"], matter["version"]), "") if matter else "",
        "grant": e.get("grant"),
        "result": outcome.get("result", ""),
        "result_label": OUTCOME_LABELS.get(outcome.get("result", ""), outcome.get("result", "")),
        "refused": outcome.get("result") == "refused",
        "reason": reason,
        "reason_label": reason_label(reason, str(e.get("action", ""))),
        "state_from": state.get("from"),
        "state_to": state.get("to"),
        "state_from_label": row_state_labels[0] if row_state_labels else state_label(state.get("from"), action),
        "state_to_label": row_state_labels[1] if row_state_labels else state_label(state.get("to"), action),
        "digests": [
            {
                "kind": d.get("kind"),
                "label": DIGEST_LABELS.get(d.get("kind"), d.get("kind")),
                "sha256": d.get("sha256"),
            }
            for d in e.get("digests") or []
        ],
        "subject": e.get("subject"),
        "changes": change_rows(e.get("terms")),
        "covered": view.index < covered_size,
    }


def leaf_details(view: audit.EntryView) -> dict[str, Any]:
    return {
        "pretty": json.dumps(view.entry, ensure_ascii=False, sort_keys=True, indent=2),
        "leaf_text": view.leaf.decode("utf-8", errors="replace"),
        "leaf_len": len(view.leaf),
        "leaf_hash_hex": view.leaf_hash.hex(),
        "leaf_hash_b64": base64.b64encode(view.leaf_hash).decode(),
    }


# --- checkpoints -----------------------------------------------------------------------
def _key_ids(vkeys: list[str]) -> dict[tuple[str, str], str]:
    out = {}
    for v in vkeys:
        try:
            ver = audit.Verifier.from_vkey(v)
        except audit.AuditError:
            continue
        out[(ver.name, f"{ver.key_id:08x}")] = v
    return out


def note_signers(note: bytes, vkeys: list[str]) -> list[dict[str, Any]]:
    """The signature lines of a signed note: name, key ID and whether it is a current or
    retired key of this log."""
    known = _key_ids(vkeys)
    text = note.decode("utf-8", errors="replace")
    _body, _sep, sigs = text.rpartition("\n\n")
    out = []
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            continue
        name, _, b64 = line[2:].rpartition(" ")
        try:
            kid = base64.b64decode(b64, validate=True)[:4].hex()
        except (binascii.Error, ValueError):
            kid = "?"
        out.append({"name": name, "key_id": kid, "known": (name, kid) in known})
    return out


def checkpoint_row(cp: audit.StoredCheckpoint, vkeys: list[str]) -> dict[str, Any]:
    return {
        "id": cp.id,
        "size": cp.size,
        "root": base64.b64encode(cp.root).decode(),
        "time": beijing(cp.created_at),
        "origin": cp.origin,
        "signers": note_signers(cp.note, vkeys),
        "cosignatures": [
            {"witness": c.witness, "time": beijing(datetime.fromtimestamp(c.timestamp, UTC))}
            for c in cp.cosignatures
        ],
        "text": cp.text().decode("utf-8", errors="replace"),
    }


def witness_row(w: audit.WitnessStatus) -> dict[str, Any]:
    return {
        "name": w.name, "url": w.url, "size": w.last_cosigned_size, "lag": w.lag_entries,
        "lag_time": duration(w.lag_seconds), "lagging": w.lag_entries > 0,
        "last_success": beijing(w.last_success_at), "last_attempt": beijing(w.last_attempt_at),
        "error": w.last_error, "failures": w.failures, "next_attempt": beijing(w.next_attempt_at),
    }  # fmt: skip


# --- choices for the forms --------------------------------------------------------------
def form_choices(session: Session) -> dict[str, Any]:
    outlets = session.exec(select(Outlet.code, Outlet.name).order_by(Outlet.code)).all()
    partners = session.exec(select(Partner.code, Partner.name).order_by(Partner.code)).all()
    matters = session.exec(
        select(Matter.implementation_code, MatterVersion.name)
        .join(MatterVersion, col(MatterVersion.matter_id) == Matter.id)
        .where(MatterVersion.version == Matter.current_version)
        .order_by(Matter.implementation_code)
    ).all()
    return {
        "outlets": list(outlets),
        "partners": list(partners),
        "matters": list(matters),
        "actions": [*((code, rule.label) for code, rule in ACTIONS.items()), *LOG_ONLY_ACTIONS.items()],
    }
