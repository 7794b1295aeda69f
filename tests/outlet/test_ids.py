from __future__ import annotations

from datetime import date

import pytest

from outlet.errors import InvalidIdNumber
from outlet.ids import (
    mask_id,
    resident_check_char,
    uscc_check_char,
    validate_id,
    validate_resident_id,
    validate_uscc,
)


@pytest.mark.parametrize(
    "value",
    ["11010519491231002X", "11010519491231002x", "440524198001010013", "110101200001010010", "370202198512031526"],
)
def test_resident_id_accepts_valid_numbers(value: str) -> None:
    assert validate_resident_id(value) == value.upper()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("110105194912310021", "校验位"),  # check char should be X
        ("11010519491231002", "18位"),
        ("1101051949123100XX", "前17位"),
        ("990105194912310029", "地区码"),  # no province 99
        ("110105194902300023", "出生日期"),  # 30 February
        ("110105189912310023", "出生日期"),  # before 1900
        ("110105209912310023", "出生日期"),  # in the future
    ],
)
def test_resident_id_rejects_invalid_numbers(value: str, why: str) -> None:
    with pytest.raises(InvalidIdNumber) as exc:
        validate_resident_id(value, today=date(2026, 9, 28))
    assert why in exc.value.message


def test_resident_check_char_follows_the_weights() -> None:
    # Σ(a_i × w_i) mod 11 = 2 for this body → check "X"
    assert resident_check_char("11010519491231002") == "X"
    assert resident_check_char("44052419800101001") == "3"


@pytest.mark.parametrize("value", ["91350100M000100Y43", "91110000600037341L", "91440300MA5DEFMU8N", "91370200MA3C5YJP14"])
def test_uscc_accepts_valid_codes(value: str) -> None:
    assert validate_uscc(value.lower()) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("91350100M000100Y44", "校验位"),
        ("91350100M000100Y4", "18位"),
        ("91350100M000100I43", "无效字符"),  # I is not in the charset
        ("Z1350100M000100Y43", "无效字符"),
        ("913501X0M000100Y4A", "地区码"),
    ],
)
def test_uscc_rejects_invalid_codes(value: str, why: str) -> None:
    with pytest.raises(InvalidIdNumber) as exc:
        validate_uscc(value)
    assert why in exc.value.message


def test_uscc_check_value_31_maps_to_zero() -> None:
    # Find a body whose weighted sum is ≡ 0 (mod 31): the check value 31 must map to "0".
    body = "9135010000000000"
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if uscc_check_char(body + c) == "0":
            assert validate_uscc(body + c + "0")
            return
    pytest.fail("no body with check value 0 found")


def test_validate_id_dispatches_on_applicant_kind() -> None:
    assert validate_id("person", "11010519491231002X")
    assert validate_id("enterprise", "91350100M000100Y43")
    with pytest.raises(InvalidIdNumber):
        validate_id("person", "91350100M000100Y43")


def test_mask_id_keeps_three_and_four() -> None:
    assert mask_id("110105194912311234") == "110***********1234"
    assert mask_id("91350100M000100Y43") == "913***********0Y43"
    assert mask_id("") == ""
