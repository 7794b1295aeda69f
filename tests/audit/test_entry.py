"""Entries: canonical JSON leaf bytes, validation, PII refusal, pseudonyms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from audit import leaf_bytes, pseudonym
from audit.entry import parse_leaf
from audit.errors import EntryError
from tests.audit.helpers import make_entry


def test_entry_leaf_is_canonical_json() -> None:
    leaf = leaf_bytes(make_entry(1, action="case.accept", outlet="网点-1".encode().hex()[:10]))
    obj = json.loads(leaf)
    assert obj["v"] == 1
    assert leaf == json.dumps(obj, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()  # fmt: skip
    assert b"\n" not in leaf and b" " not in leaf
    assert list(obj) == sorted(obj)
    assert parse_leaf(leaf)["action"] == "case.accept"


def test_entry_fills_optional_fields_and_converts_datetimes() -> None:
    t = datetime(2026, 11, 21, 8, 30, 0, 123456, tzinfo=UTC)
    leaf = leaf_bytes({"time": t, "actor": {"id": 1, "role": "teller"},
                       "action": "case.view", "outcome": {"result": "done"}})  # fmt: skip
    obj = json.loads(leaf)
    assert obj["time"] == "2026-11-21T08:30:00.123456Z"
    assert obj["digests"] == [] and obj["state"] == {"from": None, "to": None}
    assert obj["case"] is None and obj["subject"] is None


def test_entry_keeps_unicode_unescaped() -> None:
    leaf = leaf_bytes(make_entry(2, outcome={"result": "refused", "reason": "no_grant"}))
    assert b"\\u" not in leaf


@pytest.mark.parametrize("change", [
    {"name": "张三"},  # unknown key
    {"actor": {"id": 1}},
    {"actor": {"id": "1", "role": "teller"}},
    {"time": "2026-11-21 08:30:00"},
    {"action": "Case Accept"},
    {"outcome": {"result": "maybe"}},
    {"digests": [{"kind": "material", "sha256": "XYZ"}]},
    {"matter": {"code": "M1"}},
    {"subject": "11010519491231002X"},
    {"v": 2},
])  # fmt: skip
def test_entry_rejects_bad_shape(change: dict[str, Any]) -> None:
    with pytest.raises(EntryError):
        leaf_bytes(make_entry(3, **change))


@pytest.mark.parametrize("change", [
    {"case": "11010519491231002X"},  # resident ID number
    {"outcome": {"result": "refused", "reason": "13812345678"}},  # mobile number
    {"state": {"from": "11010519491231002X", "to": None}},
    {"actor": {"id": 110105194912310021, "role": "teller"}},
])  # fmt: skip
def test_entry_rejects_pii(change: dict[str, Any]) -> None:
    with pytest.raises(EntryError, match="pseudonym|ID number"):
        leaf_bytes(make_entry(4, **change))


def test_entry_accepts_long_case_numbers_that_contain_digits() -> None:
    leaf_bytes(make_entry(5, case="11370211MB284667433000117143000202611210001"))


def test_pseudonym_is_keyed_and_stable() -> None:
    key = b"k" * 32
    p = pseudonym(key, "11010519491231002X")
    assert p.startswith("hmac-sha256:") and len(p) == len("hmac-sha256:") + 43
    assert p == pseudonym(key, "11010519491231002x")  # check letter case does not matter
    assert p != pseudonym(b"other key 123456", "11010519491231002X")
    assert "1101" not in p
    leaf_bytes(make_entry(6, subject=p))


def test_parse_leaf_rejects_non_canonical_bytes() -> None:
    leaf = leaf_bytes(make_entry(7))
    with pytest.raises(EntryError, match="canonical"):
        parse_leaf(json.dumps(json.loads(leaf), indent=1).encode())


def test_pii_fast_check_matches_the_same_strings_as_the_named_patterns() -> None:
    """_check_pii asks _PII_ANY whether any field holds PII, then _PII which one: the two must
    agree on every string, or PII slips into a leaf (or clean entries are refused)."""
    import random

    from audit.entry import _PII, _PII_ANY

    rnd = random.Random(9)
    pieces = ["0", "1", "7", "X", "x", "a", "Z", "@", ".", "cn", " ", "\x00", "\n", "-", "_", "北",
              "13800138000", "11010519491231002", "110105491231002", "u@example.com", "@@"]
    samples = ["", "13800138000", "a13800138000", "13800138000a", "1380013800", "11010519491231002X",
               "110105194912310021", "110105491231002", "3702110000000000000000000000001202611210005",
               "u@example.com", "u@example", "@example.com", "a @b.cn", "张三 u@x.cn"]
    samples += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) for _ in range(20_000)]
    differ = [s for s in samples if bool(_PII.search(s)) != bool(_PII_ANY.search(s))]
    assert differ == []
    assert sum(1 for s in samples if _PII.search(s)) > 1_000  # both kinds of answer are exercised
