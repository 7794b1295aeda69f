"""Password hashing, login, password rules, separation of duties, account validation, AB角."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners import accounts, logins
from partners.accounts import (
    add_backup,
    authenticate,
    change_password,
    create_staff,
    end_backup,
    hash_password,
    reset_password,
    settle_request,
    update_staff,
    verify_password,
)
from partners.errors import DutyRuleRefused, InvalidFields, LoginRefused, RequestPending
from partners.models import Staff
from tests.partners.conftest import PASSWORD, World


def login(engine: Engine, username: str, password: str) -> Staff:
    """Log in the way web/auth.py does: inside a transaction that an exception rolls back."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        return authenticate(s, username, password)


def staff_row(engine: Engine, username: str) -> Staff:
    with Session(engine) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


def test_hash_password_is_argon2id_and_salted() -> None:
    first, second = hash_password("demo1234"), hash_password("demo1234")
    assert first.startswith("$argon2id$")
    assert first != second
    assert verify_password(first, "demo1234") is None


def test_verify_password_refuses_wrong_password_and_garbage_hash() -> None:
    stored = hash_password("demo1234")
    with pytest.raises(LoginRefused):
        verify_password(stored, "demo12345")
    with pytest.raises(LoginRefused):
        verify_password("not-a-hash", "demo1234")


def test_verify_password_returns_fresh_hash_for_outdated_parameters() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("demo1234")
    fresh = verify_password(weak, "demo1234")
    assert fresh is not None and fresh != weak
    assert verify_password(fresh, "demo1234") is None


def test_authenticate_rehashes_outdated_hash(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    old = staff_row(world.engine, "teller.o1").password_hash  # made with the cheap test hasher
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher())
    login(world.engine, "teller.o1", PASSWORD)
    new = staff_row(world.engine, "teller.o1").password_hash
    assert new != old and "m=65536" in new


def test_authenticate_success_returns_staff(world: World) -> None:
    staff = login(world.engine, "teller.o1", PASSWORD)
    assert staff.username == "teller.o1"


def test_authenticate_unknown_user_gets_the_same_message(world: World) -> None:
    with pytest.raises(LoginRefused) as unknown:
        login(world.engine, "nobody", PASSWORD)
    with pytest.raises(LoginRefused) as wrong:
        login(world.engine, "teller.o1", "wrong-password")
    assert unknown.value.message == wrong.value.message == "用户名或密码错误"


def test_authenticate_refuses_inactive_account_after_password_check(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        update_staff(s, s.get(Staff, world["teller.o1"].id), active=False)
    with pytest.raises(LoginRefused) as refused:
        login(world.engine, "teller.o1", PASSWORD)
    assert "停用" in refused.value.message


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"username": "Teller"}, "username", "小写字母"),
        ({"username": "teller.o1"}, "username", "已存在"),
        ({"roles": []}, "roles", "至少选择一个岗位"),
        ({"roles": ["teller", "reviewer"]}, "roles", "不能同时"),
        ({"roles": ["teller"], "outlet_id": None}, "outlet_id", "所属网点"),
        ({"roles": ["reviewer"]}, "outlet_id", "不属于任何网点"),
        ({"roles": ["expert"], "outlet_id": None}, "expert_level", "层级"),
        ({"domain": "天文"}, "domain", "业务领域"),
        ({"password": "short-pw1"}, "password", "至少 10 位"),
        ({"password": "qwertyuiop"}, "password", "常见"),
        ({"password": "New.Teller-2026"}, "password", "用户名"),
        ({"roles": ["admin", "auditor"], "outlet_id": None}, "roles", "三员分立"),
        ({"roles": ["admin", "security_admin"], "outlet_id": None}, "roles", "三员分立"),
        ({"roles": ["security_admin", "auditor"], "outlet_id": None}, "roles", "三员分立"),
        ({"display_name": " "}, "display_name", "姓名"),
    ],
)
def test_create_staff_validation(
    world: World, changes: dict[str, object], field: str, message: str
) -> None:
    data: dict[str, object] = {
        "username": "new.teller",
        "display_name": "新柜员",
        "password": "long-enough",
        "roles": ["teller"],
        "outlet_id": world.o1.id,
    }
    data.update(changes)
    # a separation rule is a refusal (audited by the caller's delegated_action), shown like a field error
    expected = DutyRuleRefused if message == "三员分立" else InvalidFields
    with Session(world.engine) as s, s.begin(), pytest.raises(expected) as invalid:
        create_staff(s, **data)  # type: ignore[arg-type]
    assert message in invalid.value.errors[field]  # type: ignore[union-attr]


def test_create_staff_by_outlet_code(world: World) -> None:
    with Session(world.engine) as s, s.begin():
        staff = create_staff(
            s,
            username="new.teller",
            display_name="新柜员",
            password="long-enough",
            roles=["teller"],
            outlet_code="o2",
        )
        assert staff.outlet_id == world.o2.id
        with pytest.raises(InvalidFields):
            create_staff(
                s,
                username="other",
                display_name="x",
                password="long-enough",
                roles=["teller"],
                outlet_code="NOPE",
            )


def test_add_backup_validation_and_end(world: World) -> None:
    with Session(world.engine) as s, s.begin():
        with pytest.raises(InvalidFields) as invalid:
            add_backup(
                s,
                holder_id=world["teller.o1"].id,
                backup_id=world["teller.o1"].id,  # type: ignore[arg-type]
                valid_from=date(2026, 9, 1),
            )
        assert "本人" in invalid.value.errors["backup_id"]
        with pytest.raises(InvalidFields) as invalid:
            add_backup(
                s,
                holder_id=world["teller.o1"].id,
                backup_id=world["reviewer.sb"].id,  # type: ignore[arg-type]
                valid_from=date(2026, 9, 1),
            )
        assert "岗位" in invalid.value.errors["backup_id"]
        assignment = add_backup(
            s,
            holder_id=world["teller.o1"].id,
            backup_id=world["teller.o2"].id,  # type: ignore[arg-type]
            valid_from=date(2026, 9, 1),
        )
        assert assignment.id is not None
        ended = end_backup(s, assignment.id, date(2026, 9, 15))
        assert ended.valid_to == date(2026, 9, 15)


def _sessions(engine: Engine, username: str) -> list[str]:
    """Open two login sessions for ``username``; returns their stored ids."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        staff = s.exec(select(Staff).where(Staff.username == username)).one()
        tokens = [logins.start(s, staff, client="t", lifetime=timedelta(hours=1)) for _ in range(2)]
    return [logins.token_id(t) for t in tokens]


def _live(engine: Engine, username: str) -> int:
    with Session(engine) as s:
        staff = s.exec(select(Staff).where(Staff.username == username)).one()
        assert staff.id is not None
        return len(logins.live_sessions(s, staff.id, idle=timedelta(minutes=30)))


def test_update_staff_refuses_a_second_duty(world: World) -> None:
    with Session(world.engine) as s, s.begin(), pytest.raises(DutyRuleRefused) as invalid:
        update_staff(s, s.get(Staff, world["admin"].id), roles=["admin", "auditor"])
    assert "三员分立" in invalid.value.errors["roles"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"active": False}, "deactivated"), ({"roles": ["outlet_lead"]}, "roles")],
)
def test_deactivation_and_role_change_end_all_sessions(
    world: World, change: dict[str, object], reason: str
) -> None:
    ids = _sessions(world.engine, "teller.o1")
    with Session(world.engine) as s, s.begin():
        update_staff(s, s.get(Staff, world["teller.o1"].id), **change)
    assert _live(world.engine, "teller.o1") == 0
    with Session(world.engine) as s:
        assert {s.get(logins.LoginSession, i).ended_reason for i in ids} == {reason}  # type: ignore[union-attr]


def test_editing_other_fields_keeps_sessions(world: World) -> None:
    _sessions(world.engine, "teller.o1")
    with Session(world.engine) as s, s.begin():
        update_staff(s, s.get(Staff, world["teller.o1"].id), phone="0532-1234567")
    assert _live(world.engine, "teller.o1") == 2


def test_reset_of_ordinary_staff_applies_at_once_with_a_generated_password(world: World) -> None:
    _sessions(world.engine, "teller.o1")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        password = reset_password(s, s.get(Staff, world["teller.o1"].id), actor=world["secadmin"])
    assert password is not None and _live(world.engine, "teller.o1") == 0
    assert len(password) >= 12 and accounts.password_problem(password, "teller.o1") is None
    staff = login(world.engine, "teller.o1", password)
    assert staff.must_change_password


def test_a_web_reset_never_carries_a_password_chosen_by_the_requester(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin(), pytest.raises(ValueError):
        reset_password(s, s.get(Staff, world["teller.o1"].id), "chosen-by-me-9", actor=world["secadmin"])


def test_one_time_passwords_are_long_random_and_pass_the_rules() -> None:
    passwords = {accounts.one_time_password("teller1") for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 12 and accounts.password_problem(p, "teller1") is None for p in passwords)


def test_reset_of_a_duty_holder_needs_a_second_security_admin_who_gets_the_password(world: World) -> None:
    """The request holds no password: the requester cannot know the one that will be set."""
    _sessions(world.engine, "auditor")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        assert reset_password(s, s.get(Staff, world["auditor"].id), actor=world["secadmin"]) is None
        row = s.get(Staff, world["auditor"].id)
        assert row is not None and row.pending_kind == "reset" and row.pending_by == world["secadmin"].id
    login(world.engine, "auditor", PASSWORD)  # the old password still works …
    assert _live(world.engine, "auditor") == 2
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        with pytest.raises(DutyRuleRefused):  # … the requester cannot approve it …
            settle_request(s, s.get(Staff, world["auditor"].id), actor=world["secadmin"], decision="approve")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        password = settle_request(s, s.get(Staff, world["auditor"].id), actor=world["secadmin2"],
                                  decision="approve")
    assert password is not None and _live(world.engine, "auditor") == 0  # … a second person can
    assert login(world.engine, "auditor", password).must_change_password
    with pytest.raises(LoginRefused):
        login(world.engine, "auditor", PASSWORD)
    assert staff_row(world.engine, "auditor").pending_kind is None


def test_the_holder_settles_nothing_about_their_own_account(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        reset_password(s, s.get(Staff, world["secadmin2"].id), actor=world["secadmin"])
    for decision in ("approve", "refuse", "cancel"):
        with Session(world.engine, expire_on_commit=False) as s, s.begin(), pytest.raises(DutyRuleRefused):
            settle_request(s, s.get(Staff, world["secadmin2"].id), actor=world["secadmin2"], decision=decision)
    with Session(world.engine, expire_on_commit=False) as s, s.begin():  # the requester may withdraw it
        settle_request(s, s.get(Staff, world["secadmin2"].id), actor=world["secadmin"], decision="cancel")
    assert staff_row(world.engine, "secadmin2").pending_kind is None


def test_a_second_request_on_an_account_is_refused_not_put_in_place(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        reset_password(s, s.get(Staff, world["auditor"].id), actor=world["secadmin"])
    with Session(world.engine, expire_on_commit=False) as s, s.begin(), pytest.raises(RequestPending) as second:
        update_staff(s, s.get(Staff, world["auditor"].id), actor=world["secadmin2"], roles=["reviewer"])
    assert "密码重置" in second.value.message
    with Session(world.engine, expire_on_commit=False) as s, s.begin(), pytest.raises(RequestPending):
        reset_password(s, s.get(Staff, world["auditor"].id), actor=world["secadmin2"])
    row = staff_row(world.engine, "auditor")
    assert row.pending_kind == "reset" and row.pending_by == world["secadmin"].id and row.roles == "auditor"


def test_a_demotion_with_a_move_waits_whole(world: World) -> None:
    """Nothing of a demotion applies before approval: not the roles, not the new outlet."""
    outlet = world["teller.o1"].outlet_id
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        update_staff(s, s.get(Staff, world["auditor"].id), actor=world["secadmin"], roles=["teller"],
                     outlet_id=outlet)
    row = staff_row(world.engine, "auditor")
    assert (row.roles, row.outlet_id, row.pending_kind, row.pending_roles) == ("auditor", None, "roles", "teller")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        settle_request(s, s.get(Staff, world["auditor"].id), actor=world["secadmin2"], decision="approve")
    row = staff_row(world.engine, "auditor")
    assert (row.roles, row.outlet_id, row.pending_kind) == ("teller", outlet, None)


def test_reactivating_a_duty_holder_waits_for_a_second_security_admin(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():  # the CLI deactivates at once
        update_staff(s, s.get(Staff, world["auditor"].id), active=False)
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        update_staff(s, s.get(Staff, world["auditor"].id), actor=world["secadmin"], active=True)
    row = staff_row(world.engine, "auditor")
    assert not row.active and row.pending_kind == "activation"
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        settle_request(s, s.get(Staff, world["auditor"].id), actor=world["secadmin2"], decision="approve")
    assert staff_row(world.engine, "auditor").active


def test_the_servers_cli_resets_a_duty_holder_alone(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        assert reset_password(s, s.get(Staff, world["secadmin"].id), "cli-chosen-pass", actor=None)
    assert login(world.engine, "secadmin", "cli-chosen-pass").must_change_password


def test_nobody_resets_their_own_password_through_administration(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin(), pytest.raises(DutyRuleRefused):
        reset_password(s, s.get(Staff, world["secadmin"].id), actor=world["secadmin"])


def test_change_password_checks_the_current_one_and_the_rules(world: World) -> None:
    ids = _sessions(world.engine, "teller.o1")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        row = s.get(Staff, world["teller.o1"].id)
        assert row is not None
        with pytest.raises(InvalidFields) as wrong:
            change_password(s, row, "not-my-password", "another-good-pass")
        assert "current_password" in wrong.value.errors
        with pytest.raises(InvalidFields) as weak:
            change_password(s, row, PASSWORD, "1234567890")
        assert "常见" in weak.value.errors["new_password"]
        change_password(s, row, PASSWORD, "another-good-pass")
    assert _live(world.engine, "teller.o1") == 0 and len(ids) == 2
    assert not login(world.engine, "teller.o1", "another-good-pass").must_change_password


def test_common_password_list_is_shipped_and_lower_cased() -> None:
    common = accounts.common_passwords()
    assert len(common) > 1000 and "qwertyuiop" in common
    assert accounts.password_problem("QwertyUIOP") is not None
    assert accounts.password_problem("tide-lantern-42") is None


@pytest.mark.parametrize("published", ["demo-12345", "Demo-12345", "DEMO_12345!", "my-demo-12345-x"])
def test_the_published_demo_password_is_refused_everywhere_but_the_seed(published: str) -> None:
    assert accounts.password_problem(published) == "这是公开的演示密码，不能使用"
    assert accounts.password_problem("demo-12345", demo_seed=True) is None  # the seed's printed logins
