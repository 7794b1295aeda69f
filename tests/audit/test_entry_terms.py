"""The optional ``terms`` field (case dates and counts for the figures) and the ``view`` of a
``rating.feedback`` step: accepted in the documented shapes, rejected otherwise; absent
fields never change an older leaf's bytes."""

from __future__ import annotations

from typing import Any

import pytest

from audit.entry import leaf_bytes, parse_leaf
from audit.errors import EntryError
from audit.scan import strict_check

BASE: dict[str, Any] = {"time": "2026-11-21T08:30:00.000000Z", "actor": {"id": 3, "role": "reviewer"},
                        "action": "case.approve", "outcome": {"result": "done"}}
TERMS = {"accepted": "2026-11-16", "due": "2026-11-23", "workdays": 4, "corrections": 1}


def test_entry_terms_round_trip_and_stay_optional() -> None:
    leaf = leaf_bytes({**BASE, "terms": TERMS})
    assert parse_leaf(leaf)["terms"] == TERMS
    strict_check(leaf)
    assert b'"terms"' not in leaf_bytes(BASE)
    assert parse_leaf(leaf_bytes({**BASE, "terms": {"received": "2026-11-16", "due": "2026-11-23"}}))


@pytest.mark.parametrize("bad", [
    {}, {"due": "2026-11-23T00:00:00Z"}, {"due": "23.11.2026"}, {"workdays": -1},
    {"workdays": 1.5}, {"corrections": True}, {"due": "2026-11-23", "note": "x"}, ["2026-11-23"],
])  # fmt: skip
def test_entry_terms_rejects_other_shapes(bad: object) -> None:
    with pytest.raises(EntryError, match="terms"):
        leaf_bytes({**BASE, "terms": bad})


def test_entry_rating_feedback_view() -> None:
    step = {**BASE, "action": "rating.feedback"}
    assert parse_leaf(leaf_bytes({**step, "rating": {"entry": 4, "view": "basic"}}))["rating"]["view"] == "basic"
    for bad in ({"entry": 4, "view": "满意"}, {"entry": 4, "view": None}, {"view": "basic"}):
        with pytest.raises(EntryError, match="rating"):
            leaf_bytes({**step, "rating": bad})
