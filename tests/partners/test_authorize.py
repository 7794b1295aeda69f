"""The authorization matrix (role × action × outlet) and every refusal reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from partners.accounts import add_backup
from partners.authorize import ACTIONS, authorize, grant_state, roles_for
from partners.catalog import delegated_matters
from partners.delegation import delegated_action
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
from partners.grants import add_grant
from partners.models import Agreement, Grant, Outlet, Partner
from tests.partners.conftest import AT, World, audit_entries

OUTLET = {"teller", "block_agent", "outlet_lead"}

# Written out by hand (not derived from ACTIONS) so a wrong table row fails a test.
EXPECTED_ROLES: dict[str, set[str]] = {
    "case.create": OUTLET,
    "case.material": OUTLET,
    "case.notice": OUTLET,
    "case.accept": OUTLET,
    "case.accept_rongque": OUTLET,
    "case.supply": OUTLET,
    "case.refuse": OUTLET,
    "case.forward": OUTLET,
    "case.resubmit": OUTLET,
    "case.complete_onsite": OUTLET,
    "case.deliver": OUTLET,
    "case.withdraw": OUTLET,
    "case.reveal_pii": OUTLET | {"reviewer"},
    "case.review_claim": {"reviewer"},
    "case.approve": {"reviewer"},
    "case.reject": {"reviewer"},
    "case.request_correction": {"reviewer"},
    "assist.request": OUTLET,
    "assist.accept": {"expert"},
    "assist.snapshot": {"expert"},
    "assist.record": OUTLET | {"expert"},
    "assist.mark": {"expert"},
    "assist.conclude": {"expert"},
    "assist.consent": OUTLET | {"expert"},
    "audit.search": {"auditor"},
    "audit.export": {"auditor"},
    "service.open": OUTLET,
    "service.handover": OUTLET,
    "service.close": OUTLET,
    "service.entrust": OUTLET,
    "service.suspend": OUTLET,
    "service.terminate": OUTLET,
    "service.deliver": OUTLET,
    "service.case": OUTLET,
    "visit.request": OUTLET | {"admin"},
    "visit.arrive": OUTLET,
    "visit.complete": OUTLET,
    "visit.assign": {"outlet_lead", "admin"},
    "case.promise": OUTLET,
    "case.promise_check": {"reviewer"},
    "case.revoke": {"reviewer"},
    "admin.grant.create": {"admin"},
    "admin.grant.revoke": {"admin"},
    "admin.catalog.edit": {"admin"},
    "security.staff.edit": {"security_admin"},
    "security.password.reset": {"security_admin"},
    "security.request.decide": {"security_admin"},
    "security.sessions.end": {"security_admin"},
    "admin.outlet.edit": {"admin"},
    "admin.partner.edit": {"admin"},
    "admin.agreement.edit": {"admin"},
    "admin.calendar.edit": {"admin"},
    "admin.queue.edit": {"admin"},
    # paired devices and 好差评 (outlet/devices.py, outlet/ratings/)
    "device.pair": {"outlet_lead"},
    "device.revoke": {"outlet_lead"},
    "rating.submit": OUTLET,
    "rating.pad_link": OUTLET,
    "rating.pad_unlink": OUTLET,
    "rating.callback": {"outlet_lead", "reviewer"},  # reviewer: center work orders
    "rating.rectify": {"outlet_lead", "reviewer"},  # reviewer: center work orders
    "rating.feedback": {"outlet_lead", "reviewer"},  # reviewer: center work orders
    "rating.close": {"outlet_lead", "reviewer"},  # reviewer: center work orders
    "rating.appeal": OUTLET | {"expert"},
    "rating.appeal_decide": {"reviewer", "admin"},
    "rating.escalate": {"admin"},
    "admin.rating.edit": {"admin"},
    # the queue (outlet/queue/): the center admin sets up lines and counters too
    "queue.line.edit": {"outlet_lead", "admin"},
    "queue.counter.edit": {"outlet_lead", "admin"},
    "queue.sign_in": OUTLET,
    "queue.sign_out": OUTLET,
    **{f"ticket.{s}": OUTLET for s in ("issue", "call", "recall", "no_show", "serve", "transfer", "hold",
                                       "done", "cancel", "link")},
    "booking.check_in": OUTLET,
    "booking.block_lift": {"outlet_lead"},
}
# Actions that exercise delegated authority at the counter: they return the grant in force.
NEEDS_GRANT = {
    "case.create", "case.material", "case.notice", "case.accept", "case.accept_rongque",
    "case.supply", "case.refuse", "case.forward", "case.resubmit", "case.complete_onsite",
    "assist.request", "service.open", "visit.request", "case.promise",
}  # fmt: skip
# The main grant carries no 代办: a 代办 委托书 is refused for scope at O1.
REFUSED_FOR_SCOPE = {"service.entrust"}
# One account per role; outlet staff stand at O1, the outlet of the main grant.
ACTOR_OF_ROLE = {
    "teller": "teller.o1",
    "block_agent": "agent.o1",
    "outlet_lead": "lead.o1",
    "reviewer": "reviewer.sb",
    "expert": "expert.sb",
    "admin": "admin",
    "auditor": "auditor",
}
# Outlet-side actions a teller holds (lead-only ones: tests/outlet/ratings, test_devices).
TELLER_ACTIONS = sorted(a for a, roles in EXPECTED_ROLES.items() if "teller" in roles)
# Asking another outlet to serve (a teller refers a resident to a street point's 上门办).
REFERRALS = {"visit.request"}
MEMBER_ACTIONS = [a for a in TELLER_ACTIONS if a not in REFERRALS]


def decide(
    world: World,
    username: str,
    action: str,
    matter: Any = "default",
    outlet: Any = "default",
    at: datetime = AT,
    **kw: Any,
) -> Grant | None:
    if matter == "default":
        matter = world.instant if action == "case.complete_onsite" else world.committed
    if outlet == "default":
        outlet = world.o1
    with Session(world.engine) as s:
        return authorize(s, world[username], action, matter, outlet, at, **kw)


def test_actions_table_matches_the_expected_matrix() -> None:
    assert set(ACTIONS) == set(EXPECTED_ROLES)
    for action, roles in EXPECTED_ROLES.items():
        assert roles_for(action) == roles, action


@pytest.mark.parametrize("role", sorted(ACTOR_OF_ROLE))
@pytest.mark.parametrize("action", sorted(EXPECTED_ROLES))
def test_authorize_role_matrix(shared_world: World, role: str, action: str) -> None:
    username = ACTOR_OF_ROLE[role]
    if role not in EXPECTED_ROLES[action]:
        with pytest.raises(RoleLacksAction):
            decide(shared_world, username, action)
        return
    if action in REFUSED_FOR_SCOPE and role in OUTLET:
        with pytest.raises(ScopeNotGranted):
            decide(shared_world, username, action)
        return
    grant = decide(shared_world, username, action)
    if action in NEEDS_GRANT and role in OUTLET:
        assert grant is not None and grant.id == shared_world.main_grant.id
    else:
        assert grant is None


@pytest.mark.parametrize("action", MEMBER_ACTIONS)
def test_authorize_refuses_outlet_staff_of_another_outlet(shared_world: World, action: str) -> None:
    with pytest.raises(WrongOutlet) as refused:
        decide(shared_world, "teller.o2", action)
    assert "一号支行" in refused.value.message


@pytest.mark.parametrize("action", MEMBER_ACTIONS)
def test_authorize_refuses_staff_of_another_partner(shared_world: World, action: str) -> None:
    with pytest.raises(WrongOutlet):
        decide(shared_world, "teller.o3", action)


def test_authorize_referral_needs_the_serving_outlets_grant_not_membership(shared_world: World) -> None:
    assert {a for a, rule in ACTIONS.items() if rule.referral} == REFERRALS
    for username in ("teller.o2", "teller.o3"):  # another outlet, another partner
        grant = decide(shared_world, username, "visit.request", scope="帮办")
        assert grant is not None and grant.id == shared_world.main_grant.id
    with pytest.raises(ScopeNotGranted):  # the serving outlet's grant carries no 代办
        decide(shared_world, "teller.o3", "visit.request", scope="代办")


def test_authorize_expired_grant_is_grant_expired_not_not_delegated(shared_world: World) -> None:
    with pytest.raises(GrantExpired) as refused:
        decide(shared_world, "teller.o1", "case.create", matter=shared_world.expired)
    assert "2026-06-30" in refused.value.message
    assert refused.value.code == "grant_expired"


def test_authorize_revoked_grant_names_the_reason(shared_world: World) -> None:
    with pytest.raises(GrantRevoked) as refused:
        decide(shared_world, "teller.o1", "case.accept", matter=shared_world.revoked)
    assert "网点人员调整" in refused.value.message


def test_authorize_grant_revoked_later_is_still_in_force_before(shared_world: World) -> None:
    before = datetime(2026, 8, 31, 1, 0)
    with Session(shared_world.engine) as s:
        grant = authorize(
            s,
            shared_world["teller.o1"],
            "case.accept",
            shared_world.revoked,
            shared_world.o1,
            before,
        )
    assert grant is not None and grant.revoked_reason == "网点人员调整"


def test_authorize_grant_not_yet_valid(shared_world: World) -> None:
    with pytest.raises(GrantNotYetValid) as refused:
        decide(shared_world, "teller.o1", "case.create", matter=shared_world.pending)
    assert isinstance(refused.value, NotDelegated)
    assert "2026-10-01" in refused.value.message


def test_authorize_not_delegated(shared_world: World) -> None:
    with pytest.raises(NotDelegated) as refused:
        decide(shared_world, "teller.o1", "case.create", matter=shared_world.undelegated)
    assert type(refused.value) is NotDelegated
    assert "不动产登记资料查询" in refused.value.message and "一号支行" in refused.value.message


def test_authorize_scope_not_granted_at_consult_only_outlet(shared_world: World) -> None:
    with pytest.raises(ScopeNotGranted) as refused:
        decide(
            shared_world,
            "teller.o2",
            "case.create",
            matter=shared_world.biz,
            outlet=shared_world.o2,
        )
    assert "咨询" in refused.value.message and "收件受理" in refused.value.message


def test_authorize_scope_override_for_agent_service(shared_world: World) -> None:
    # The main grant has 收件受理 but not 代办.
    assert decide(shared_world, "teller.o1", "case.create") is not None
    with pytest.raises(ScopeNotGranted):
        decide(shared_world, "teller.o1", "case.create", scope="代办")


def test_authorize_instant_completion_needs_instant_scope_and_catalog_mode(
    shared_world: World,
) -> None:
    assert decide(shared_world, "teller.o1", "case.complete_onsite", matter=shared_world.instant)
    # The grant carries 即办 but the 承诺件's catalog entry does not allow it.
    with pytest.raises(ScopeNotGranted) as refused:
        decide(shared_world, "teller.o1", "case.complete_onsite", matter=shared_world.committed)
    assert "事项清单" in refused.value.message


def test_authorize_assist_request_without_matter_needs_a_video_or_assist_grant(
    shared_world: World,
) -> None:
    assert decide(shared_world, "teller.o1", "assist.request", matter=None) is not None
    with pytest.raises(ScopeNotGranted):
        decide(shared_world, "teller.o3", "assist.request", matter=None, outlet=shared_world.o3)


@pytest.mark.parametrize(
    ("username", "matter", "allowed"),
    [
        ("reviewer.sb", "committed", True),
        ("reviewer.sb", "biz", False),
        ("reviewer.biz", "biz", True),
        ("reviewer.biz", "committed", False),
        ("reviewer.any", "biz", True),
        ("reviewer.any", "committed", True),
    ],
)
def test_authorize_reviewer_domain(
    shared_world: World, username: str, matter: str, allowed: bool
) -> None:
    target = getattr(shared_world, matter)
    if allowed:
        assert decide(shared_world, username, "case.approve", matter=target) is None
    else:
        with pytest.raises(WrongDomain) as refused:
            decide(shared_world, username, "case.approve", matter=target)
        assert isinstance(refused.value, RoleLacksAction)


def test_authorize_reviewer_acts_on_any_outlet(shared_world: World) -> None:
    assert decide(shared_world, "reviewer.sb", "case.approve", outlet=shared_world.o3) is None


def test_authorize_expert_domain_and_generalist(shared_world: World) -> None:
    with pytest.raises(WrongDomain):
        decide(shared_world, "expert.sb", "assist.conclude", matter=shared_world.biz)
    assert decide(shared_world, "expert.biz", "assist.conclude", matter=shared_world.biz) is None
    assert decide(shared_world, "expert.city", "assist.conclude", matter=shared_world.biz) is None


def test_authorize_case_action_without_outlet_is_a_programming_error(shared_world: World) -> None:
    with pytest.raises(ValueError):
        decide(shared_world, "reviewer.sb", "case.approve", outlet=None)


def test_authorize_unknown_action_is_a_programming_error(shared_world: World) -> None:
    with pytest.raises(ValueError):
        decide(shared_world, "teller.o1", "case.teleport")
    assert roles_for("admin.holiday.edit") == {"admin"}


def test_authorize_grant_period_uses_the_day_in_beijing(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        grant = s.get(Grant, world.main_grant.id)
        assert grant is not None
        grant.valid_to = date(2026, 9, 28)
        s.add(grant)
    last_minute = datetime(2026, 9, 28, 15, 59)  # 23:59 in Beijing
    next_day = datetime(2026, 9, 28, 16, 0)  # 00:00 on the 29th in Beijing
    assert decide(world, "teller.o1", "case.create", at=last_minute) is not None
    with pytest.raises(GrantExpired):
        decide(world, "teller.o1", "case.create", at=next_day)


def test_authorize_prefers_the_grant_in_force(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        fresh = add_grant(
            s,
            agreement_id=world.agreement1.id,
            matter_ids=[world.expired.id],
            scopes=["收件受理"],
            outlet_ids=[world.o1.id],
            valid_from=date(2026, 7, 1),
            valid_to=date(2027, 12, 31),
        )
    grant = decide(world, "teller.o1", "case.create", matter=world.expired)
    assert grant is not None and grant.id == fresh.id


def test_authorize_expired_scoped_grant_beats_scope_message(world: World) -> None:
    """代办 was granted but expired; 收件受理 is in force: the useful message is 'expired'."""
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        add_grant(
            s,
            agreement_id=world.agreement1.id,
            matter_ids=[world.committed.id],
            scopes=["代办"],
            outlet_ids=[world.o1.id],
            valid_from=date(2026, 1, 1),
            valid_to=date(2026, 3, 31),
        )
    with pytest.raises(GrantExpired):
        decide(world, "teller.o1", "case.create", scope="代办")


def test_authorize_terminated_agreement_revokes_its_grants(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        agreement = s.get(Agreement, world.agreement1.id)
        assert agreement is not None
        agreement.status = "terminated"
        s.add(agreement)
    with pytest.raises(GrantRevoked) as refused:
        decide(world, "teller.o1", "case.create")
    assert "HCZY-T-001" in refused.value.message


def test_authorize_inactive_outlet_and_inactive_account(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        outlet = s.get(Outlet, world.o1.id)
        assert outlet is not None
        outlet.active = False
        s.add(outlet)
    with Session(world.engine) as s:
        inactive_outlet = s.get(Outlet, world.o1.id)
        with pytest.raises(NotDelegated):
            authorize(s, world["teller.o1"], "case.create", world.committed, inactive_outlet, AT)
    world["lead.o1"].active = False
    with pytest.raises(RoleLacksAction):
        decide(world, "lead.o1", "case.deliver")


def test_authorize_inactive_partner_stops_its_outlets(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        partner = s.get(Partner, world.o1.partner_id)
        assert partner is not None
        partner.active = False
        s.add(partner)
    with pytest.raises(NotDelegated) as refused:
        decide(world, "teller.o1", "case.create")
    assert "合作机构已停用" in refused.value.message
    with Session(world.engine) as s:
        assert delegated_matters(s, world.o1, AT) == []


def test_authorize_ab_backup_covers_the_holders_outlet_only_while_in_force(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        add_backup(
            s,
            holder_id=world["teller.o1"].id,
            backup_id=world["teller.o2"].id,  # type: ignore[arg-type]
            valid_from=date(2026, 9, 28),
            valid_to=date(2026, 9, 30),
            note="休假",
        )
    grant = decide(world, "teller.o2", "case.accept")
    assert grant is not None and grant.id == world.main_grant.id
    with pytest.raises(WrongOutlet):
        decide(world, "teller.o2", "case.accept", at=AT - timedelta(days=1))
    with pytest.raises(WrongOutlet):
        decide(world, "teller.o2", "case.accept", at=datetime(2026, 10, 1, 2, 0))
    # The holder keeps access; the backup keeps their own outlet.
    assert decide(world, "teller.o1", "case.accept") is not None
    with pytest.raises(ScopeNotGranted):  # O2 has 咨询 only, but the refusal is not WrongOutlet
        decide(world, "teller.o2", "case.accept", matter=world.biz, outlet=world.o2)


def test_grant_state_labels(world: World) -> None:
    with Session(world.engine) as s:
        grant = s.get(Grant, world.main_grant.id)
        assert grant is not None
        assert grant_state(grant, world.agreement1, AT).status == "active"
        assert grant_state(grant, world.agreement1, datetime(2028, 1, 1, 2)).status == "expired"
        assert grant_state(grant, world.agreement1, datetime(2025, 12, 1, 2)).status == "pending"


def test_delegated_action_records_the_refusal(world: World) -> None:
    with pytest.raises(GrantExpired):
        with delegated_action(
            world.engine,
            world["teller.o1"],
            "case.create",
            matter=world.expired,
            outlet=world.o1,
            at=AT,
        ):
            pytest.fail("the block must not run")
    entries = audit_entries(world.engine, action="case.create")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["outcome"] == {"result": "refused", "reason": "grant_expired"}
    assert entry["outlet"] == "O1" and entry["partner"] == "BANK1"
    assert entry["actor"] == {"id": world["teller.o1"].id, "role": "teller"}


def test_delegated_action_records_success_with_grant(world: World) -> None:
    with delegated_action(
        world.engine,
        world["teller.o1"],
        "case.create",
        matter=world.committed,
        outlet=world.o1,
        at=AT,
    ) as act:
        assert act.grant is not None
    entry = audit_entries(world.engine, action="case.create")[-1]
    assert entry["outcome"] == {"result": "done"}
    assert entry["grant"] == world.main_grant.id
