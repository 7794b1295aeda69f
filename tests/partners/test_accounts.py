"""Password hashing, login with lockout, account validation, AB角 assignments."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners import accounts
from partners.accounts import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    add_backup,
    authenticate,
    create_staff,
    end_backup,
    hash_password,
    reset_password,
    update_staff,
    verify_password,
)
from partners.errors import AccountLocked, InvalidFields, LoginRefused
from partners.models import Staff
from tests.partners.conftest import AT, PASSWORD, World


def login(engine: Engine, username: str, password: str, at: datetime = AT) -> Staff:
    """Log in the way web/auth.py does: inside a transaction that an exception rolls back."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        return authenticate(s, username, password, at=at)


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


def test_authenticate_locks_after_five_failures_even_inside_a_rolled_back_transaction(
    world: World,
) -> None:
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginRefused) as refused:
            login(world.engine, "teller.o1", "wrong-password")
        assert not isinstance(refused.value, AccountLocked)
    assert staff_row(world.engine, "teller.o1").failed_logins == MAX_FAILED_LOGINS - 1
    with pytest.raises(AccountLocked) as locked:
        login(world.engine, "teller.o1", "wrong-password")
    assert "锁定" in locked.value.message
    # Locked: even the right password is refused for 15 minutes.
    with pytest.raises(AccountLocked):
        login(world.engine, "teller.o1", PASSWORD, at=AT + timedelta(minutes=14))
    assert login(world.engine, "teller.o1", PASSWORD, at=AT + LOCKOUT + timedelta(seconds=1))
    row = staff_row(world.engine, "teller.o1")
    assert row.failed_logins == 0 and row.locked_until is None


def test_authenticate_success_resets_the_failure_count(world: World) -> None:
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginRefused):
            login(world.engine, "teller.o1", "wrong-password")
    login(world.engine, "teller.o1", PASSWORD)
    with pytest.raises(LoginRefused) as refused:
        login(world.engine, "teller.o1", "wrong-password")
    assert not isinstance(refused.value, AccountLocked)


def test_authenticate_refuses_inactive_account_after_password_check(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        update_staff(s, s.get(Staff, world["teller.o1"].id), active=False)
    with pytest.raises(LoginRefused) as refused:
        login(world.engine, "teller.o1", PASSWORD)
    assert "停用" in refused.value.message


def test_reset_password_lifts_lockout(world: World) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(LoginRefused):
            login(world.engine, "teller.o1", "wrong-password")
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        reset_password(s, s.get(Staff, world["teller.o1"].id), "brand-new-pass")
    assert login(world.engine, "teller.o1", "brand-new-pass").username == "teller.o1"


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
        ({"password": "short"}, "password", "至少 8 位"),
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
    with Session(world.engine) as s, s.begin(), pytest.raises(InvalidFields) as invalid:
        create_staff(s, **data)  # type: ignore[arg-type]
    assert message in invalid.value.errors[field]


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
