from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import audit
from outlet.errors import InvalidIdNumber
from outlet.ids import (
    HK_PERMIT,
    id_kind,
    mask_id,
    resident_check_char,
    uscc_check_char,
    validate_id,
    validate_person_id,
    validate_uscc,
)
from outlet.ids import USCC as USCC_KIND
from tests.outlet.conftest import KEY


@pytest.mark.parametrize(
    "value",
    ["11010519491231002X", "11010519491231002x", "440524198001010013", "110101200001010010", "370202198512031526"],
)
def test_resident_id_accepts_valid_numbers(value: str) -> None:
    assert validate_person_id(value) == value.upper()


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
        validate_person_id(value, today=date(2026, 9, 28))
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


# --- Every kind of number issued on the 公民身份号码 format (GB 11643-1999) ----------------

# Bodies of 17 digits; the check character is computed by GB 11643-1999 MOD 11-2.
KINDS = [
    ("11010519900307123", "resident", "居民身份证"),
    ("81000019900307123", "hk_permit", "港澳居民居住证（香港）"),  # 国办发〔2018〕81号
    ("82000019900307123", "mo_permit", "港澳居民居住证（澳门）"),
    ("83000019900307123", "tw_permit", "台湾居民居住证"),
    # 2023 外国人永久居留身份证: 9 + issuing province (11 Beijing) + nationality 840 (USA).
    ("91184019900307123", "foreign_pr", "外国人永久居留身份证"),
    ("93125019851231002", "foreign_pr", "外国人永久居留身份证"),  # 31 Shanghai, 250 France
]


def test_hk_residence_permit_from_the_issue_is_accepted() -> None:
    # Issue 8: "810000199003071237 … is refused as 地区码无效".
    assert validate_person_id("810000199003071237") == "810000199003071237"
    assert id_kind("person", "810000199003071237") == HK_PERMIT


@pytest.mark.parametrize(("body", "code", "label"), KINDS)
def test_person_id_accepts_every_kind_and_names_it(body: str, code: str, label: str) -> None:
    number = body + resident_check_char(body)
    assert validate_id("person", number) == number
    kind = id_kind("person", number)
    assert kind is not None and (kind.code, kind.label) == (code, label)


@pytest.mark.parametrize(("body", "code", "label"), KINDS)
def test_person_id_kinds_reject_a_wrong_check_character(body: str, code: str, label: str) -> None:
    good = resident_check_char(body)
    bad = next(c for c in "0123456789X" if c != good)
    with pytest.raises(InvalidIdNumber, match="校验位"):
        validate_person_id(body + bad)


@pytest.mark.parametrize(
    "body",
    [
        "81010019900307123",  # residence permits carry exactly 810000 / 820000 / 830000
        "71000019900307123",  # 71 (Taiwan) is in GB/T 2260 but no resident ID is issued on it
        "84000019900307123",  # no such family
        "91000019900307123",  # foreigner: nationality 000
        "99984019900307123",  # foreigner: issuing province 99 does not exist
        "11000019900307123",  # resident: a province with county part 0000
    ],
)
def test_person_id_rejects_address_codes_of_no_kind(body: str) -> None:
    with pytest.raises(InvalidIdNumber, match="地区码"):
        validate_person_id(body + resident_check_char(body))


def test_uscc_is_named_for_enterprises() -> None:
    assert id_kind("enterprise", "91350100M000100Y43") == USCC_KIND


# --- Unicode: normalise what means the same, refuse what does not -------------------------

PERSON = "11010519491231002X"


@pytest.mark.parametrize(
    "typed",
    [
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits and X (Chinese IME)
        "１１０１０５１９４９１２３１００２ｘ",
        "110105 19491231 002x",
        "\u3000110105194912310 02X\u00a0",  # ideographic space, no-break space
        "110105\t19491231\n002X",
    ],
)
def test_person_id_normalises_to_one_number_and_one_pseudonym(typed: str) -> None:
    assert validate_person_id(typed) == PERSON
    assert audit.pseudonym(KEY, validate_person_id(typed)) == audit.pseudonym(KEY, PERSON)


@pytest.mark.parametrize(
    "typed",
    [
        "110105199003071²39",  # the issue's example: a superscript two (answered HTTP 500)
        "11010519491231002①",
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # Arabic-Indic digits
        "११०१०५१९४९१२३१००२X",  # Devanagari digits
        "110105-19491231-002X",
        "11010519491231002Ⅹ",  # Roman numeral ten, not the letter X
    ],
)
def test_person_id_refuses_lookalike_digits_with_a_message(typed: str) -> None:
    with pytest.raises(InvalidIdNumber, match="只能包含数字和字母"):
        validate_person_id(typed)


def test_uscc_normalises_full_width_input() -> None:
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


# --- Property tests: random Unicode never escapes as anything but InvalidIdNumber ---------

VALIDATORS = [
    validate_person_id,
    validate_uscc,
    lambda v: validate_id("person", v),
    lambda v: validate_id("enterprise", v),
]
SPACES = st.sampled_from([" ", "\t", "\u3000", "\u00a0", "\u2003", "\n"])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(text=st.text(max_size=40), which=st.sampled_from(range(len(VALIDATORS))))
def test_validators_on_random_unicode_only_raise_invalid_id(text: str, which: int) -> None:
    try:
        result = VALIDATORS[which](text)
    except InvalidIdNumber as e:
        assert e.message
        return
    # Anything accepted is plain ASCII, 18 characters, and a fixed point of validation.
    assert result.isascii() and len(result) == 18
    assert VALIDATORS[which](result) == result


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    body=st.from_regex(r"\A(11[0-9]{3}[1-9]|31[0-9]{3}[1-9]|8[123]0000|9(11|31|44)[1-8][0-9]{2})19[5-9][0-9]0[1-9]1[0-9][0-9]{3}\Z"),
    data=st.data(),
)
def test_every_spelling_of_a_valid_number_gives_one_pseudonym(body: str, data: st.DataObject) -> None:
    number = body + resident_check_char(body)
    canonical = validate_person_id(number)
    spelled = ""
    for c in number.lower():
        if data.draw(st.booleans()):
            c = chr(ord(c) + 0xFEE0)  # the full-width form
        spelled += c + data.draw(st.text(SPACES, max_size=1))
    assert validate_person_id(spelled) == canonical
    assert audit.pseudonym(KEY, validate_person_id(spelled)) == audit.pseudonym(KEY, canonical)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    pos=st.integers(0, 16),
    digit=st.characters(categories=["Nd", "No"]).filter(lambda c: c not in "0123456789"),
)
def test_any_digit_that_is_not_ascii_or_full_width_is_refused(pos: int, digit: str) -> None:
    if 0xFF10 <= ord(digit) <= 0xFF19:
        return  # full-width digits are normalised, see above
    spelled = PERSON[:pos] + digit + PERSON[pos + 1:]
    with pytest.raises(InvalidIdNumber):
        validate_person_id(spelled)
