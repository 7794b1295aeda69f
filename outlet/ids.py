"""Identity number formats: resident ID (GB 11643-1999) and unified social credit code
(GB 32100-2015). A valid checksum proves a well-formed number, never an identity.

Validators return the normalized value or raise :class:`InvalidIdNumber`.
"""

from __future__ import annotations

from datetime import date

from outlet.errors import InvalidIdNumber

# GB 11643-1999: weights for positions 1-17 (= 2**(18-i) mod 11) and the check characters.
RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_CHECK = "10X98765432"
# Province-level area codes (first two digits) in use by GB/T 2260.
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)

# GB 32100-2015: 31-character set (no I, O, Z, S, V) and weights 3**(i) mod 31.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_AUTHORITIES = frozenset("123456789ANY")


def resident_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_WEIGHTS, strict=True))
    return RESIDENT_CHECK[total % 11]


def validate_resident_id(value: str, *, today: date | None = None) -> str:
    """Validate an 18-character resident ID: area, birth date, sequence and check char."""
    v = (value or "").strip().upper()
    if len(v) != 18:
        raise InvalidIdNumber("身份证号码应为18位", field="id_number")
    if not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        raise InvalidIdNumber("身份证号码前17位应为数字，末位为数字或X", field="id_number")
    if v[:2] not in PROVINCES or v[2:6] == "0000":
        raise InvalidIdNumber("身份证号码的地区码无效", field="id_number")
    try:
        birth = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise InvalidIdNumber("身份证号码中的出生日期无效", field="id_number") from None
    if birth.year < 1900 or birth > (today or date.today()):
        raise InvalidIdNumber("身份证号码中的出生日期无效", field="id_number")
    if resident_check_char(v[:17]) != v[17]:
        raise InvalidIdNumber("身份证号码校验位不正确，请核对", field="id_number")
    return v


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Validate an 18-character unified social credit code."""
    v = (value or "").strip().upper()
    if len(v) != 18:
        raise InvalidIdNumber("统一社会信用代码应为18位", field="id_number")
    if any(c not in USCC_CHARSET for c in v):
        raise InvalidIdNumber(
            "统一社会信用代码含有无效字符（不使用 I、O、Z、S、V）", field="id_number"
        )
    if v[0] not in USCC_AUTHORITIES or not v[2:8].isdigit():
        raise InvalidIdNumber("统一社会信用代码的登记管理部门或地区码无效", field="id_number")
    if uscc_check_char(v[:17]) != v[17]:
        raise InvalidIdNumber("统一社会信用代码校验位不正确，请核对", field="id_number")
    return v


def validate_id(kind: str, value: str) -> str:
    """Validate by applicant kind: "person" → resident ID, "enterprise" → USCC."""
    if kind == "person":
        return validate_resident_id(value)
    if kind == "enterprise":
        return validate_uscc(value)
    raise InvalidIdNumber("申请人类型无效", field="kind")


def mask_id(value: str | None) -> str:
    """``110***********1234``: first 3 and last 4 characters kept."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
