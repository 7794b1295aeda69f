"""Every (state, action) pair: allowed ones move the case, all others are refused with a
message naming the state and the action — through the real service functions, audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from outlet import decisions, review, states
from outlet.errors import CaseNotFound, GuardFailed, IllegalTransition
from tests.outlet.conftest import AT, World, audit_rows

STATES = list(states.STATE_LABELS)

# action → how to perform it with valid parameters (so only the state can say no)
ACTIONS: dict[str, Callable[[World, str], object]] = {
    "case.accept": lambda w, n: decisions.accept(w.engine, w.teller_a, n, at=AT),
    "case.accept_rongque": lambda w, n: decisions.accept_rongque(
        w.engine, w.teller_a, n, deadline=date(2026, 9, 28), commitment_signed=True, at=AT),
    "case.refuse": lambda w, n: decisions.refuse(w.engine, w.teller_a, n, reason="不符合受理条件", at=AT),
    "case.forward": lambda w, n: decisions.forward(w.engine, w.teller_a, n, at=AT),
    "case.review_claim": lambda w, n: review.claim(w.engine, w.reviewer, n, at=AT),
    "case.request_correction": lambda w, n: review.request_correction(
        w.engine, w.reviewer, n, reason="请补充说明", at=AT),
    "case.resubmit": lambda w, n: decisions.resubmit(w.engine, w.teller_a, n, at=AT),
    "case.approve": lambda w, n: review.approve(w.engine, w.reviewer, n, at=AT),
    "case.reject": lambda w, n: review.reject(w.engine, w.reviewer, n, reason="不符合条件", at=AT),
    "case.complete_onsite": lambda w, n: decisions.complete_onsite(w.engine, w.teller_a, n, at=AT),
    "case.deliver": lambda w, n: decisions.deliver(w.engine, w.teller_a, n, at=AT),
    "case.withdraw": lambda w, n: decisions.withdraw(w.engine, w.teller_a, n, reason="申请人撤回", at=AT),
}

EXPECTED = {
    ("draft", "case.accept"): "accepted",
    ("draft", "case.accept_rongque"): "rongque",
    ("draft", "case.refuse"): "refused",
    ("draft", "case.withdraw"): "withdrawn",
    ("accepted", "case.forward"): "forwarded",
    ("accepted", "case.complete_onsite"): "approved",
    ("accepted", "case.withdraw"): "withdrawn",
    ("rongque", "case.forward"): "forwarded",
    ("rongque", "case.withdraw"): "withdrawn",
    ("forwarded", "case.review_claim"): "under_review",
    ("forwarded", "case.withdraw"): "withdrawn",
    ("under_review", "case.request_correction"): "correction",
    ("under_review", "case.approve"): "approved",
    ("under_review", "case.reject"): "rejected",
    ("correction", "case.resubmit"): "forwarded",
    ("correction", "case.withdraw"): "withdrawn",
    ("approved", "case.deliver"): "delivered",
    ("rejected", "case.deliver"): "delivered",
    ("approved", "case.revoke"): "revoked",
    ("delivered", "case.revoke"): "revoked",
}

# Cases in these states never reached the center (drive() withdraws from draft).
NEVER_AT_CENTER = {"draft", "accepted", "rongque", "refused", "withdrawn"}

# Preconditions for the allowed ones that are about materials, not state.
PREPARE: dict[tuple[str, str], Callable[[World, str], None]] = {
    ("draft", "case.accept"): lambda w, n: w.receive(n, "m1", "m2", "m3"),
    ("draft", "case.accept_rongque"): lambda w, n: w.receive(n, "m1", "m2"),
    ("correction", "case.resubmit"): lambda w, n: w.receive(n, "m2"),
}


def test_transition_table_matches_the_expected_matrix() -> None:
    table = {(t.source, t.action): t.target for t in states.TRANSITIONS
             if not (t.action == "case.complete_onsite" and t.target == "rejected")}
    table.pop(("rongque", "case.supply"))
    assert table == EXPECTED


@pytest.mark.parametrize(("state", "action"), [(s, a) for s in STATES for a in ACTIONS])
def test_state_machine_every_pair(world: World, state: str, action: str) -> None:
    # The 即办件 matter so that on-site completion is possible from "accepted".
    number = world.drive(state, matter=world.instant)
    prepare = PREPARE.get((state, action))
    if prepare:
        prepare(world, number)
    expected = EXPECTED.get((state, action))
    if action in states.CENTER_ACTIONS and state in NEVER_AT_CENTER:
        with pytest.raises(CaseNotFound):  # the center cannot even see it
            ACTIONS[action](world, number)
        assert world.case(number).state == state
    elif expected is None:
        with pytest.raises(IllegalTransition) as exc:
            ACTIONS[action](world, number)
        assert not isinstance(exc.value, GuardFailed)
        assert states.STATE_LABELS[state] in exc.value.message
        assert states.ACTION_LABELS[action] in exc.value.message
        assert world.case(number).state == state
        last = audit_rows(world.engine, action, number)[-1]
        assert last["outcome"] == {"result": "refused", "reason": "illegal_transition"}
        assert last["state"] == {"from": state, "to": state}
    else:
        ACTIONS[action](world, number)
        assert world.case(number).state == expected
        last = audit_rows(world.engine, action, number)[-1]
        assert last["outcome"] == {"result": "done"}
        assert last["state"] == {"from": state, "to": expected}


def test_find_names_state_and_action_in_chinese() -> None:
    with pytest.raises(IllegalTransition) as exc:
        states.find("delivered", "case.approve")
    assert exc.value.message == "办件当前状态为「已出件」，不能执行「审核通过（准予）」"


def test_allowed_actions_lists_each_action_once() -> None:
    assert states.allowed_actions("accepted") == ["case.forward", "case.complete_onsite", "case.withdraw"]
    assert states.allowed_actions("delivered") == ["case.revoke"]  # 告知承诺 不属实 only
    assert states.allowed_actions("revoked") == []
