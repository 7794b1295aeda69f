"""The case state machine: one explicit table of transitions, each with an optional guard.

``apply`` is the only function that changes ``Case.state``. It looks the transition up,
runs its guard (raising :class:`GuardFailed`), moves the case, bumps its revision and writes
the human-readable history row. An action the current state does not allow raises
:class:`IllegalTransition`, naming the state and the action in Chinese.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from outlet.errors import GuardFailed, IllegalTransition
from outlet.models import Case, CaseEvent, CaseMaterial
from partners.authorize import ACTIONS
from partners.models import MatterVersion, utcnow

STATE_LABELS = {
    "draft": "待受理",
    "accepted": "已受理",
    "refused": "不予受理",
    "rongque": "容缺受理，待补材料",
    "forwarded": "已转报",
    "under_review": "审核中",
    "correction": "补正中",
    "approved": "办结·准予",
    "rejected": "办结·不予许可",
    "delivered": "已出件",
    "withdrawn": "已撤回",
    "revoked": "已撤销（承诺不实）",
}
TERMINAL = frozenset({"refused", "delivered", "withdrawn", "revoked"})
COMPLETED = frozenset({"approved", "rejected", "delivered"})
# States in which a deadline is running (shown in due-soon / overdue lists).
OPEN = frozenset({"accepted", "rongque", "forwarded", "under_review", "correction"})

# One label per action, shared with the audit UI and the authorization table.
ACTION_LABELS = {name: rule.label for name, rule in ACTIONS.items()}

REQUIRED = ("必要", "容缺后补")


@dataclass
class GuardInput:
    """What a guard may look at. ``params`` carries the action's form values."""

    session: Session
    case: Case
    version: MatterVersion
    materials: Sequence[CaseMaterial]
    today: date
    params: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # when the action happens (naive UTC); None: now


Guard = Callable[[GuardInput], None]


def inspection_gate(session: Session, case: Case) -> str | None:
    """A Chinese reason why the case may not be approved yet because a required site
    inspection (远程勘验) has not passed, or None."""
    from remote_assist.inspections import inspection_gate_reason  # remote_assist imports us

    return inspection_gate_reason(session, case)


def _names(materials: Sequence[CaseMaterial]) -> str:
    return "、".join(f"「{m.name}」" for m in materials)


def _require(params: dict[str, Any], key: str, message: str) -> None:
    if not str(params.get(key) or "").strip():
        raise GuardFailed(message, code="reason_required")


def guard_accept(g: GuardInput) -> None:
    missing = [m for m in g.materials if m.necessity in REQUIRED and m.status != "received"]
    if missing:
        raise GuardFailed(
            f"以下材料尚未收齐：{_names(missing)}。请出具一次性告知书，"
            "或仅缺「容缺后补」材料时办理容缺受理。",
            code="materials_incomplete",
        )


def guard_rongque(g: GuardInput) -> None:
    missing = [m for m in g.materials if m.necessity in REQUIRED and m.status != "received"]
    hard = [m for m in missing if m.necessity != "容缺后补"]
    if hard:
        raise GuardFailed(
            f"容缺受理仅适用于标注为「容缺后补」的材料；以下必要材料未收齐：{_names(hard)}",
            code="rongque_not_allowed",
        )
    if not missing:
        raise GuardFailed("材料已齐全，请直接受理", code="rongque_not_needed")
    if not g.params.get("commitment_signed"):
        raise GuardFailed("容缺受理须由申请人签署书面承诺", code="commitment_missing")
    deadline = g.params.get("deadline")
    due = g.params.get("due_on")
    if not isinstance(deadline, date):
        raise GuardFailed("请填写补齐材料的期限", code="deadline_missing")
    if deadline < g.today:
        raise GuardFailed("补齐材料期限不能早于今天", code="deadline_past")
    if isinstance(due, date) and deadline > due:
        raise GuardFailed(
            f"补齐材料期限不得晚于承诺办结日期（{due.isoformat()}）", code="deadline_after_due"
        )


def guard_no_deferred(g: GuardInput) -> None:
    deferred = [m for m in g.materials if m.status == "deferred"]
    if deferred:
        raise GuardFailed(
            f"容缺材料尚未补齐：{_names(deferred)}，不能办结", code="rongque_outstanding"
        )


def guard_approve(g: GuardInput) -> None:
    guard_no_deferred(g)
    reason = inspection_gate(g.session, g.case)
    if reason:
        raise GuardFailed(reason, code="inspection_pending")


def guard_reason(g: GuardInput) -> None:
    _require(g.params, "reason", "请填写理由")


def guard_correction(g: GuardInput) -> None:
    items = g.params.get("items") or []
    if not items and not str(g.params.get("reason") or "").strip():
        raise GuardFailed("请至少填写一项需要补正的内容", code="reason_required")


def guard_resubmit(g: GuardInput) -> None:
    bad = [
        m for m in g.materials if m.necessity == "必要" and m.status in ("missing", "defective")
    ]
    if bad:
        raise GuardFailed(f"以下材料尚未补正：{_names(bad)}", code="materials_incomplete")


def guard_onsite(g: GuardInput) -> None:
    if g.version.case_kind != "即办件":
        raise GuardFailed("只有即办件可以在网点当场办结，承诺件请转报中心", code="not_instant")
    if g.params.get("outcome") == "rejected":
        guard_reason(g)
    else:
        guard_no_deferred(g)


@dataclass(frozen=True)
class Transition:
    source: str
    action: str
    target: str
    guard: Guard | None = None


TRANSITIONS: tuple[Transition, ...] = (
    Transition("draft", "case.accept", "accepted", guard_accept),
    Transition("draft", "case.accept_rongque", "rongque", guard_rongque),
    Transition("draft", "case.refuse", "refused", guard_reason),
    Transition("rongque", "case.supply", "accepted", guard_no_deferred),
    Transition("rongque", "case.forward", "forwarded"),
    Transition("accepted", "case.forward", "forwarded"),
    Transition("forwarded", "case.review_claim", "under_review"),
    Transition("under_review", "case.request_correction", "correction", guard_correction),
    Transition("correction", "case.resubmit", "forwarded", guard_resubmit),
    Transition("under_review", "case.approve", "approved", guard_approve),
    Transition("under_review", "case.reject", "rejected", guard_reason),
    Transition("accepted", "case.complete_onsite", "approved", guard_onsite),
    Transition("accepted", "case.complete_onsite", "rejected", guard_onsite),
    Transition("approved", "case.deliver", "delivered"),
    Transition("rejected", "case.deliver", "delivered"),
    # 告知承诺制: a decision built on a promise found 不属实 is revoked (outlet/promise.py)
    Transition("approved", "case.revoke", "revoked", guard_reason),
    Transition("delivered", "case.revoke", "revoked", guard_reason),
    *(
        Transition(s, "case.withdraw", "withdrawn", guard_reason)
        for s in ("draft", "accepted", "rongque", "forwarded", "correction")
    ),
)

# Actions that do not move the case but are only allowed in some states.
MATERIAL_STATES = frozenset({"draft", "correction"})  # check, upload, mark
SUPPLY_STATES = frozenset({"rongque", "forwarded", "under_review", "correction"})
NOTICE_STATES = frozenset({"draft", "correction"})

OUTLET_ACTIONS = (
    "case.accept", "case.accept_rongque", "case.refuse", "case.forward", "case.resubmit",
    "case.complete_onsite", "case.deliver", "case.withdraw",
)
CENTER_ACTIONS = ("case.review_claim", "case.approve", "case.reject", "case.request_correction")
# case.revoke is offered by the 告知承诺 panel only (it needs a promise checked 不属实).


def find(state: str, action: str, target: str | None = None) -> Transition:
    """The transition for ``action`` from ``state`` (to ``target`` when it is ambiguous)."""
    for t in TRANSITIONS:
        if t.source == state and t.action == action and (target is None or t.target == target):
            return t
    label = STATE_LABELS.get(state, state)
    verb = ACTION_LABELS.get(action, action)
    raise IllegalTransition(f"办件当前状态为「{label}」，不能执行「{verb}」")


def allowed_actions(state: str) -> list[str]:
    """Distinct actions available from ``state`` (guards not evaluated)."""
    seen: list[str] = []
    for t in TRANSITIONS:
        if t.source == state and t.action not in seen:
            seen.append(t.action)
    return seen


def require_state(case: Case, allowed: frozenset[str], action: str) -> None:
    """For non-moving actions (materials, notices): refuse outside ``allowed`` states."""
    if case.state not in allowed:
        label = STATE_LABELS.get(case.state, case.state)
        verb = ACTION_LABELS.get(action, action)
        raise IllegalTransition(f"办件当前状态为「{label}」，不能执行「{verb}」")


def apply(
    g: GuardInput, action: str, *, actor_id: int, target: str | None = None,
    note: str | None = None,
) -> Transition:
    """Run the guard and move the case; returns the transition taken."""
    t = find(g.case.state, action, target)
    if t.guard is not None:
        t.guard(g)
    g.case.state = t.target
    g.case.revision += 1
    at = g.at or utcnow()  # the action's time, which the history shows (not the write time)
    g.case.updated_at = at
    g.session.add(g.case)
    assert g.case.id is not None
    g.session.add(
        CaseEvent(
            case_id=g.case.id, actor_id=actor_id, at=at, action=action,
            from_state=t.source, to_state=t.target, note=note,
        )
    )
    return t
