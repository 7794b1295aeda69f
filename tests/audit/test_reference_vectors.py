"""Public reference test vectors through our parsers (issue 8, section 3).

The vectors are our own copies under tests/vectors/reference/, each file naming its source:
golang.org/x/mod/sumdb/note and sumdb/tlog tests, and transparency-dev/formats log tests.
Where the C2SP text is stricter than a reference implementation, the vector says so
("why") and we follow the spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit.checkpoint import Checkpoint, open_checkpoint
from audit.errors import (
    BadSignatureError,
    FormatError,
    KeyFileError,
    UnknownKeyError,
    VerificationError,
)
from audit.note import Note, Verifier, parse_note
from audit.policy import Policy

VECTORS = Path(__file__).parents[1] / "vectors" / "reference"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert data["source"]  # every vector file names where it comes from
    return data


def raw(case: dict[str, Any], key: str) -> bytes:
    data = bytes.fromhex(case[f"{key}_hex"]) if f"{key}_hex" in case else case[key].encode()
    repeat = case.get("then_repeat")
    return data + repeat["line"].encode() * repeat["times"] if repeat else data


def open_note(data: bytes, trusted: list[Verifier]) -> tuple[Note, list[str]]:
    """Go's note.Open over our parser: unknown keys ignored, a known key must verify, at
    least one known key must have signed."""
    note = parse_note(data)
    verified: list[str] = []
    for sig in note.signatures:
        for v in trusted:
            if (v.name, v.key_id) == (sig.name, sig.key_id):
                if not v.verify(note.text.encode(), sig.sig):
                    raise BadSignatureError(f"{sig.name}: signature does not verify")
                if sig.name not in verified:
                    verified.append(sig.name)
    if not verified:
        raise UnknownKeyError("note has no verifiable signatures")
    return note, verified


NOTE = load("golang_sumdb_note.json")
TREE = load("golang_sumdb_tlog_tree.json")
FORMATS = load("transparency_dev_formats.json")


@pytest.mark.parametrize("case", NOTE["notes"], ids=lambda c: c["name"])
def test_go_sumdb_note_open(case: dict[str, Any]) -> None:
    trusted = [Verifier.from_vkey(NOTE["vkeys"][k]) for k in case["trusted"]]
    expect = case["expect"]
    errors = {"malformed": FormatError, "bad_signature": BadSignatureError, "unverified": UnknownKeyError}
    if expect == "ok":
        _, verified = open_note(raw(case, "note"), trusted)
        assert verified == case["verified"]
    else:
        with pytest.raises(errors[expect]):
            open_note(raw(case, "note"), trusted)


def test_go_sumdb_note_vkeys_parse_with_their_key_ids() -> None:
    for vkey in NOTE["vkeys"].values():
        assert Verifier.from_vkey(vkey).vkey == vkey


def test_go_sumdb_note_every_mangled_vkey_is_refused() -> None:
    # TestNewVerifier: every proper substring and every single-byte increment is refused.
    vkey = NOTE["mangle_vkey"].encode()
    mangled = [vkey[i:j] for i in range(len(vkey) + 1) for j in range(i + 1, len(vkey) + 1)
               if (i, j) != (0, len(vkey))]
    mangled += [vkey[:i] + bytes([vkey[i] + 1]) + vkey[i + 1:] for i in range(len(vkey))]
    for m in mangled:
        with pytest.raises(KeyFileError):
            Verifier.from_vkey(m.decode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("case", TREE["bodies"] + FORMATS["bodies"], ids=lambda c: c["name"])
def test_reference_checkpoint_bodies(case: dict[str, Any]) -> None:
    body = raw(case, "body").decode("utf-8")
    if case["expect"] == "ok":
        cp = Checkpoint.parse_body(body)
        assert cp.size == case["size"]
        assert list(cp.extensions)[: len(case.get("extensions", []))] == case.get("extensions", [])
        assert cp.body() == body  # re-encodes byte for byte
    else:
        with pytest.raises(FormatError):
            Checkpoint.parse_body(body)


def test_sum_golang_org_checkpoint_signature_verifies() -> None:
    sumdb = FORMATS["sumdb_checkpoint"]
    log = Verifier.from_vkey(sumdb["log_vkey"])
    note, verified = open_note(sumdb["note"].encode(), [log])
    assert verified == ["sum.golang.org"]
    assert Checkpoint.parse_body(note.text).size == sumdb["size"]


def test_sum_golang_org_checkpoint_under_a_policy_needs_the_origin_as_key_name() -> None:
    sumdb = FORMATS["sumdb_checkpoint"]
    policy = Policy.parse(f"log {sumdb['log_vkey']}\nquorum none\n".encode())
    with pytest.raises(UnknownKeyError, match="origin"):
        open_checkpoint(sumdb["note"].encode(), policy)


def test_extra_signatures_verify_and_unknown_ones_are_ignored() -> None:
    sumdb, extra = FORMATS["sumdb_checkpoint"], FORMATS["extra_signatures"]
    data = (sumdb["note"] + "".join(extra["lines"])).encode()
    trusted = [Verifier.from_vkey(v) for v in [sumdb["log_vkey"], *extra["vkeys"]]]
    _, verified = open_note(data, trusted)
    assert verified == ["sum.golang.org", "monkeys", "bananas", "witness"]
    # The same signature line under another (unknown) name is ignored, never an error.
    assert parse_note(data).signatures[-1].name == "random2"


def test_a_damaged_extra_signature_by_a_known_key_fails_the_note() -> None:
    sumdb, extra = FORMATS["sumdb_checkpoint"], FORMATS["extra_signatures"]
    line = extra["lines"][0]
    damaged = line[:20] + ("A" if line[20] != "A" else "B") + line[21:]
    data = (sumdb["note"] + damaged).encode()
    with pytest.raises(VerificationError):
        open_note(data, [Verifier.from_vkey(sumdb["log_vkey"]), Verifier.from_vkey(extra["vkeys"][0])])
