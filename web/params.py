"""Integer parameters, bounded at the boundary so no handler ever sees a number the database
cannot hold (a 30-digit id must be a 404 or a form message, never an OverflowError).

* Path parameters: ``{name:id}`` (row ids: ``INTEGER`` primary keys, at most 2**31 - 1 on
  PostgreSQL) and ``{name:index}`` (audit leaf indexes: ``BIGINT``, at most 2**63 - 1). The
  route regex itself admits only numbers in range, so anything longer or larger is no route
  at all: 404. Registered when :mod:`web.routes` is imported, before any route is built.
* Form and query values: :func:`int_param`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from outlet.errors import InvalidInput
from partners.numbers import MAX_INDEX, MAX_ROW_ID, ascii_int


def bounded_digits(maximum: int) -> str:
    """A regex matching exactly the decimal numbers 0…``maximum`` (ASCII digits; shorter
    numbers may carry leading zeros)."""
    top = str(maximum)
    alternatives = [f"[0-9]{{1,{len(top) - 1}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        if digit != "0":
            rest = len(top) - i - 1
            alternatives.append(top[:i] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(top)
    return "(?:" + "|".join(alternatives) + ")"


class RowIdConvertor(Convertor[int]):
    """Starlette's ``int`` convertor with the upper bound in the regex: row ids."""

    maximum = MAX_ROW_ID
    regex = bounded_digits(MAX_ROW_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        assert 0 <= value <= self.maximum, "out of range"
        return str(value)


class IndexConvertor(RowIdConvertor):
    """Audit leaf indexes (``BIGINT``)."""

    maximum = MAX_INDEX
    regex = bounded_digits(MAX_INDEX)


register_url_convertor("id", RowIdConvertor())
register_url_convertor("index", IndexConvertor())


def int_param(value: Any, *, low: int = 0, high: int = MAX_ROW_ID) -> int | None:
    """An integer from a form or query value (:func:`partners.numbers.ascii_int`): ASCII
    digits only (``int()`` would also take "١٢" or full-width digits, and raise on "²"),
    within ``low``…``high``; else ``None``. Routes answer ``None`` for an id with 404 and for a
    form number with 422 and the form kept."""
    return ascii_int(value, low=low, high=high)


class NotAnId(ValueError):
    """A form field holds a value that is present but no row id ("²", "１", 30 digits, "-1")."""


def given_id(values: Mapping[str, Any], name: str) -> int | None:
    """The row id in ``values[name]``: ``None`` only when the field is absent or empty; the id
    when it is one (:func:`int_param`). Raises NotAnId for a present value that is no id — it
    must never read as "absent" (which means "none chosen" or "create a new record")."""
    raw = str(values.get(name, "") or "").strip()
    if not raw:
        return None
    number = int_param(raw)
    if number is None:
        raise NotAnId(name)
    return number


def form_id(values: Mapping[str, Any], name: str, message: str) -> int | None:
    """A row id chosen in a form (``values[name]``, a select's value): ``None`` when the field
    is empty (nothing chosen); the id when it is one. A value that is present but no id raises
    InvalidInput (422, ``message`` beside the field, the form kept)."""
    try:
        return given_id(values, name)
    except NotAnId:
        raise InvalidInput(message, field=name, errors={name: message}) from None


def record_id(values: Mapping[str, Any], name: str, message: str) -> int | None:
    """The id of the record a create-or-edit form changes (a hidden ``values[name]``):
    ``None`` when absent or empty (create a new one); the id when it is one. A value that is
    present but no id raises HTTPException 404 with ``message`` — nothing is created."""
    try:
        return given_id(values, name)
    except NotAnId:
        raise HTTPException(404, message) from None


__all__ = ["MAX_INDEX", "MAX_ROW_ID", "NotAnId", "bounded_digits", "form_id", "given_id", "int_param", "record_id"]
