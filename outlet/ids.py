"""Identity number formats. A valid checksum proves a well-formed number, never an identity.

Numbers on the 公民身份号码 format (GB 11643-1999: 6-digit address code, 8-digit birth date,
3-digit sequence, ISO 7064 MOD 11-2 check character), and what is issued on it:

* 居民身份证 — address code of a mainland county (GB/T 2260, provinces 11–65);
* 港澳居民居住证 / 台湾居民居住证 — address code 810000 (Hong Kong), 820000 (Macao) or
  830000 (Taiwan) (《港澳台居民居住证申领发放办法》, 国办发〔2018〕81号, art. 5);
* 外国人永久居留身份证 (2023 version, issued from 2023-12-01, 国家移民管理局《新版外国人永久
  居留身份证机读信息规则》): first digit 9 (foreigner marker; citizens start with 1–8), then
  the 2-digit province code of the issuing place, a 3-digit numeric nationality code
  (ISO 3166-1), birth date, sequence and the same MOD 11-2 check character.

And the unified social credit code of organisations (GB 32100-2015).

Input is normalised before it is checked, so one person never becomes two (the audit
pseudonym is keyed on the normalised number): full-width digits and letters (as typed with
a Chinese IME) become ASCII, spaces of any kind are dropped, ``x`` becomes ``X``. Anything
else — superscripts (²), circled digits (①), other scripts' digits (٣, ३), punctuation — is
refused with a message rather than guessed at.

Validators return the normalized value or raise :class:`InvalidIdNumber`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from outlet.errors import InvalidIdNumber
from partners.numbers import FULLWIDTH_TO_ASCII, ascii_digits

# GB 11643-1999: weights for positions 1-17 (= 2**(18-i) mod 11) and the check characters.
RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_CHECK = "10X98765432"
# Mainland province-level codes (GB/T 2260). 71 (Taiwan), 81 and 82 are in GB/T 2260 but no
# resident ID is issued on them: Hong Kong, Macao and Taiwan residents hold residence
# permits with the whole address code fixed (PERMIT_AREAS).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65".split()
)
FOREIGNER_MARK = "9"
MAX_INPUT = 64  # characters looked at before refusing as "wrong length" (never a 500)

# GB 32100-2015: 31-character set (no I, O, Z, S, V) and weights 3**(i) mod 31.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_AUTHORITIES = frozenset("123456789ANY")


@dataclass(frozen=True)
class IdKind:
    """Which document a number belongs to: ``code`` for programs, ``label`` for people."""

    code: str
    label: str


RESIDENT = IdKind("resident", "居民身份证")
HK_PERMIT = IdKind("hk_permit", "港澳居民居住证（香港）")
MO_PERMIT = IdKind("mo_permit", "港澳居民居住证（澳门）")
TW_PERMIT = IdKind("tw_permit", "台湾居民居住证")
FOREIGN_PR = IdKind("foreign_pr", "外国人永久居留身份证")
USCC = IdKind("uscc", "统一社会信用代码")
PERMIT_AREAS = {"810000": HK_PERMIT, "820000": MO_PERMIT, "830000": TW_PERMIT}



def normalize_id_text(value: str | None, *, what: str = "证件号码") -> str:
    """Full-width → ASCII, drop every kind of space, upper-case; refuse anything that is not
    then an ASCII letter or digit. Returns the normalised text (length not checked)."""
    text = "".join((value or "")[: MAX_INPUT * 2].translate(FULLWIDTH_TO_ASCII).split())
    if not (text.isascii() and text.isalnum()) and text:
        raise InvalidIdNumber(
            f"{what}只能包含数字和字母（不接受上标、圈码、其他文字的数字或标点）", field="id_number"
        )
    return text.upper()


def resident_check_char(first17: str) -> str:
    """GB 11643-1999 (ISO 7064 MOD 11-2) check character of 17 ASCII digits."""
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_WEIGHTS, strict=True))
    return RESIDENT_CHECK[total % 11]


def classify_person_id(v: str) -> IdKind | None:
    """The document kind of a normalised 18-character number, by its address part (no
    date or checksum check); ``None`` when no kind has that address code."""
    if len(v) != 18:
        return None
    if v[0] == FOREIGNER_MARK:
        return FOREIGN_PR if v[1:3] in PROVINCES and v[3:6] != "000" else None
    if v[:6] in PERMIT_AREAS:
        return PERMIT_AREAS[v[:6]]
    if v[:2] in PROVINCES and v[2:6] != "0000":
        return RESIDENT
    return None


def validate_person_id(value: str, *, today: date | None = None, what: str = "身份证号码") -> str:
    """Validate a number on the 公民身份号码 format — resident ID, HK/Macao/Taiwan residence
    permit or 2023 foreign permanent-residence card: length, address code, birth date (1900
    to today) and check character. Returns the normalised number."""
    v = normalize_id_text(value, what=what)
    if not v:
        raise InvalidIdNumber(f"请填写{what}", field="id_number")
    if len(v) != 18:
        raise InvalidIdNumber(f"{what}应为18位", field="id_number")
    if not ascii_digits(v[:17]) or not (ascii_digits(v[17]) or v[17] == "X"):
        raise InvalidIdNumber(f"{what}前17位应为数字，末位为数字或X", field="id_number")
    if classify_person_id(v) is None:
        raise InvalidIdNumber(f"{what}的地区码无效", field="id_number")
    try:
        birth = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise InvalidIdNumber(f"{what}中的出生日期无效", field="id_number") from None
    if birth.year < 1900 or birth > (today or date.today()):
        raise InvalidIdNumber(f"{what}中的出生日期无效", field="id_number")
    if resident_check_char(v[:17]) != v[17]:
        raise InvalidIdNumber(f"{what}校验位不正确，请核对", field="id_number")
    return v


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character of 17 characters from :data:`USCC_CHARSET`."""
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Validate an 18-character unified social credit code. Returns the normalised code."""
    v = normalize_id_text(value, what="统一社会信用代码")
    if not v:
        raise InvalidIdNumber("请填写统一社会信用代码", field="id_number")
    if len(v) != 18:
        raise InvalidIdNumber("统一社会信用代码应为18位", field="id_number")
    if any(c not in USCC_CHARSET for c in v):
        raise InvalidIdNumber(
            "统一社会信用代码含有无效字符（不使用 I、O、Z、S、V）", field="id_number"
        )
    if v[0] not in USCC_AUTHORITIES or not ascii_digits(v[2:8]):
        raise InvalidIdNumber("统一社会信用代码的登记管理部门或地区码无效", field="id_number")
    if uscc_check_char(v[:17]) != v[17]:
        raise InvalidIdNumber("统一社会信用代码校验位不正确，请核对", field="id_number")
    return v


def validate_id(kind: str, value: str) -> str:
    """Validate by applicant kind: "person" → 公民身份号码 format, "enterprise" → USCC."""
    if kind == "person":
        return validate_person_id(value, what="证件号码")
    if kind == "enterprise":
        return validate_uscc(value)
    raise InvalidIdNumber("申请人类型无效", field="kind")


def id_kind(applicant_kind: str, number: str | None) -> IdKind | None:
    """The document kind of a stored (normalised) number, for display on the case page."""
    if applicant_kind == "enterprise":
        return USCC
    return classify_person_id(number or "")


def mask_id(value: str | None) -> str:
    """``110***********1234``: first 3 and last 4 characters kept."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
