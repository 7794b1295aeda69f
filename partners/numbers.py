"""The one parser for whole numbers typed by a person or sent in a request: ids, counts,
caps, page numbers.

``str.isdigit()`` (and ``str.isdecimal()``) accept "²", "٣" or full-width "１", which ``int()``
then rejects or silently converts; and a 20-digit number overflows SQLite's and PostgreSQL's
integers. :func:`ascii_int` takes ASCII digits 0–9 only and checks the range before anything
reaches a query. :mod:`web.params` uses it for every form, query and header value; the domain
modules use it where they validate their own text fields.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ROW_ID = 2**31 - 1  # PostgreSQL INTEGER (SQLModel's int primary keys)
MAX_INDEX = 2**63 - 1  # PostgreSQL BIGINT / SQLite INTEGER

ASCII_DIGITS = re.compile(r"[0-9]+")
ASCII_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,15})?")
# Full-width forms U+FF01–FF5E → ASCII U+0021–007E, ideographic space → space (what Chinese
# IMEs type). Deliberately not NFKC, which would also turn "²" or "①" into digits.
FULLWIDTH_TO_ASCII = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}


def typed_code(value: Any) -> str:
    """A code a person typed (the receipt's 查询码): full-width digits and letters as a
    Chinese IME types them ("１２３４５６") turned into ASCII, surrounding spaces dropped.
    Still to be checked (:func:`ascii_digits`): "²" or "①" stay what they are, and refused."""
    return str(value if value is not None else "").translate(FULLWIDTH_TO_ASCII).strip()


def typed_phone(value: Any) -> str:
    """A phone number as typed (:func:`typed_code`: "１３８００００８８８８" → ASCII), with inner
    spaces and hyphens dropped ("138 0000-8888" → "13800008888"). Still to be matched against
    an ASCII-only pattern (``[0-9]``, never ``\\d``, which also takes "٣" or "３")."""
    return re.sub(r"[\s-]", "", typed_code(value))


def ascii_digits(text: str, length: int | tuple[int, ...] | None = None) -> bool:
    """Whether ``text`` is ASCII digits only (and, if given, exactly ``length`` of them or one
    of the lengths in the tuple). For codes and phone numbers that stay text."""
    if not ASCII_DIGITS.fullmatch(text):
        return False
    return length is None or len(text) in ((length,) if isinstance(length, int) else length)


def ascii_int(value: Any, *, low: int = 0, high: int = MAX_ROW_ID) -> int | None:
    """An integer from a form, query or header value: surrounding spaces dropped, then ASCII
    digits only, within ``low``…``high`` (default: a row id); else ``None`` — never an
    exception, whatever the input."""
    text = str(value if value is not None else "").strip()
    if not ASCII_DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(high)):
        return None
    number = int(text)
    return number if low <= number <= high else None


def ascii_decimal(value: Any) -> float | None:
    """A decimal number from a form or query value (a GPS degree, an accuracy in metres):
    surrounding spaces dropped, then an optional minus, ASCII digits and at most one decimal
    point — the rule of :func:`ascii_int` for fractions. ``float()`` alone would also take
    "3５.9", "1_0", "1e3", "nan" or "inf". Else ``None``, never an exception."""
    text = str(value if value is not None else "").strip()
    return float(text) if ASCII_DECIMAL.fullmatch(text) else None
