"""The optional ``rating`` field of an audit entry: accepted in the documented shapes,
rejected otherwise; absent fields never change an older leaf's bytes."""

from __future__ import annotations

from typing import Any

import pytest

from audit.entry import leaf_bytes, parse_leaf
from audit.errors import EntryError

BASE: dict[str, Any] = {"time": "2026-11-21T08:30:00.000000Z", "actor": {"id": 0, "role": "applicant"},
                        "action": "rating.submit", "outcome": {"result": "done"}}
RATING = {"level": 2, "stage": "after", "channel": "qr", "dimensions": {"overall": 2, "attitude": 1},
          "reasons": ["b_wait"], "real_name": True, "object": "case"}


def test_entry_rating_submit_shape_round_trips() -> None:
    leaf = leaf_bytes({**BASE, "rating": RATING})
    assert parse_leaf(leaf)["rating"] == RATING
    assert b'"rating"' not in leaf_bytes(BASE)  # optional: absent, not null


def test_entry_rating_step_reference_round_trips() -> None:
    assert parse_leaf(leaf_bytes({**BASE, "rating": {"entry": 7}}))["rating"] == {"entry": 7}


@pytest.mark.parametrize("bad", [
    {**RATING, "level": 6}, {**RATING, "stage": "later"}, {**RATING, "text": "太慢"},
    {**RATING, "dimensions": {"mood": 3}}, {**RATING, "real_name": "yes"},
    {**RATING, "phone": "13800138000"}, {"entry": -1}, {"entry": "3"},
])
def test_entry_rating_rejects_the_tampered_shape(bad: dict[str, Any]) -> None:
    with pytest.raises(EntryError, match="rating"):
        leaf_bytes({**BASE, "rating": bad})


def test_strict_check_accepts_a_rating_entry_and_rejects_an_unknown_key() -> None:
    """A single-entry proof (``.tlog-proof``) runs the strict per-line check: an entry that
    carries the documented optional ``rating`` field is a canonical v1 entry; its tampered
    twin with a key outside the schema is not."""
    from audit.scan import strict_check

    strict_check(leaf_bytes({**BASE, "rating": RATING}))
    forged = leaf_bytes({**BASE, "rating": RATING}).replace(b'"rating"', b'"ratinh"')
    with pytest.raises(ValueError, match="version 1"):
        strict_check(forged)
