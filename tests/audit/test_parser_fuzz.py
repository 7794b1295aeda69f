"""Every malformed input is a precise AuditError, never another exception, and the verifier
CLI never ends in a traceback (issue 8, section 3). Property tests: seeded, bounded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checkpoint import Checkpoint
from audit.cli import audit
from audit.errors import AuditError, FormatError, KeyFileError, PolicyError
from audit.note import Verifier, parse_note
from audit.policy import Policy
from audit.proof import TlogProof
from audit.witness import _parse_request

VECTORS = Path(__file__).parents[1] / "vectors"
PROOF = (VECTORS / "proof_good" / "entry-4.tlog-proof").read_bytes()
POLICY = (VECTORS / "proof_good" / "policy").read_bytes()
CHECKPOINT = PROOF[PROOF.index(b"\n\n") + 2:]
FUZZ = settings(max_examples=150, derandomize=True, deadline=None)


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Up to 4 random edits: replace, insert or delete a byte, or splice in a nasty token."""
    out = bytearray(data)
    tokens = [b"\x00", b"\xff", b"\n", b"\n\n", b" ", b"\t", b"+", b"-1", b"9" * 25, b"\xe2\x80\x94 ",
              "²".encode(), b"\r", b"=", "\u3000".encode()]
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "token"]))
        if op == "replace" and pos < len(out):
            out[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            out[pos:pos] = bytes([draw(st.integers(0, 255))])
        elif op == "delete" and pos < len(out):
            del out[pos]
        else:
            out[pos:pos] = draw(st.sampled_from(tokens))
    return bytes(out)


PARSERS = {
    "note": parse_note,
    "checkpoint": lambda b: Checkpoint.parse_body(b.decode("utf-8", "surrogateescape")),
    "policy": Policy.parse,
    "proof": TlogProof.parse,
    "vkey": lambda b: Verifier.from_vkey(b.decode("utf-8", "surrogateescape")),
    "witness_request": _parse_request,
}
SEEDS = {"note": CHECKPOINT, "checkpoint": CHECKPOINT[: CHECKPOINT.index(b"\n\n") + 1], "policy": POLICY,
         "proof": PROOF, "vkey": POLICY.split(b"\n")[1][4:],
         "witness_request": b"old 3\n" + b"A" * 43 + b"=\n\n" + CHECKPOINT}


@FUZZ
@given(which=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=300))
def test_parsers_on_random_bytes_raise_only_audit_errors(which: str, data: bytes) -> None:
    try:
        PARSERS[which](data)
    except AuditError as exc:
        assert str(exc)


@FUZZ
@given(which=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_parsers_on_mutated_valid_input_raise_only_audit_errors(which: str, data: st.DataObject) -> None:
    blob = mutate(SEEDS[which], data.draw)
    try:
        PARSERS[which](blob)
    except AuditError as exc:
        assert str(exc)


def test_seeds_are_valid() -> None:  # so the mutations above start from real input
    for which, blob in SEEDS.items():
        PARSERS[which](blob)


# --- bounds, as the reference implementation bounds them ------------------------------------

@pytest.mark.parametrize(
    ("size", "ok"),
    [("9223372036854775807", True), ("9223372036854775808", False), ("18446744073709551616", False),
     ("1" + "0" * 30, False)],
)
def test_checkpoint_size_is_below_2_63(size: str, ok: bool) -> None:
    # Issue 8: "A checkpoint size of 2^64 is accepted by the parser (Go's tlog.ParseTree
    # rejects it)". ParseTree: strconv.ParseInt(lines[1], 10, 64).
    body = f"o\n{size}\n{'A' * 43}=\n"
    if ok:
        assert Checkpoint.parse_body(body).size == int(size)
    else:
        with pytest.raises(FormatError, match="2\\^63"):
            Checkpoint.parse_body(body)


@pytest.mark.parametrize("index", ["9223372036854775807", "18446744073709551616"])
def test_proof_index_is_below_2_63_minus_1(index: str) -> None:
    data = PROOF.replace(b"index 4\n", f"index {index}\n".encode())
    with pytest.raises(FormatError):
        TlogProof.parse(data)


def test_proof_has_at_most_63_hashes() -> None:
    head, _, rest = PROOF.partition(b"\n\n")
    lines = head.split(b"\n")
    data = b"\n".join([*lines[:3], *([b"A" * 43 + b"="] * 64)]) + b"\n\n" + rest
    with pytest.raises(FormatError, match="63"):
        TlogProof.parse(data)


@pytest.mark.parametrize("key_id", ["0x" + "7ae834", " 7ae8341", "+7ae8341", "7ae8_341", "7ae8341", "7ae8341bb"])
def test_vkey_key_id_is_exactly_eight_hex_digits(key_id: str) -> None:
    with pytest.raises(KeyFileError):
        Verifier.from_vkey(f"witness.bank-a.example/w1+{key_id}+BLPH4QqMxCM4lXQ22OZIi6xr9cqEuMEvS6qk9C9n/WCg")


def test_signature_line_key_name_has_no_unicode_space() -> None:
    # signed-note §Format: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces"
    bad = CHECKPOINT.replace("— audit.example.gov.cn/zhengyin ".encode(), "— audit\u3000x ".encode(), 1)
    with pytest.raises(FormatError):
        parse_note(bad)


def test_note_signature_lines_split_only_on_newline() -> None:
    # U+2028 is a line boundary for str.splitlines() but not for the note format.
    bad = CHECKPOINT.replace("— audit.example.gov.cn/zhengyin ".encode(), "\u2028— x ".encode(), 1)
    with pytest.raises(FormatError):
        parse_note(bad)


@pytest.mark.parametrize("threshold", ["²", "١", "0", "3", "9" * 5000, "-1"])
def test_policy_threshold_is_a_bounded_ascii_decimal(threshold: str) -> None:
    text = POLICY.replace(b"group witnesses all", b"group witnesses " + threshold.encode())
    with pytest.raises(PolicyError, match="threshold"):
        Policy.parse(text)


# --- the CLI: a message and a non-zero exit, never a traceback -------------------------------

def test_policy_with_a_non_utf8_comment_verifies(tmp_path: Path) -> None:
    # Issue 8: a GBK comment ended `audit verify --policy` in a traceback. tlog-policy
    # §Character set: octets with the high bit set are opaque; UTF-8 is only recommended.
    policy = tmp_path / "auditor.policy"
    policy.write_bytes("# 审计方信任策略（GBK 编码）\n".encode("gbk") + POLICY)
    r = CliRunner().invoke(audit, ["verify", "--policy", str(policy), str(VECTORS / "proof_good" / "entry-4.tlog-proof")])
    assert r.exit_code == 0, r.output
    assert "verified" in r.output


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (POLICY + b"quorum none\n", "policy line 7: more than one quorum line"),
        (POLICY.replace(b"\n", b"\r\n"), "policy line 1: control character"),
        (POLICY.replace(b"group witnesses all", b"group witnesses \xff"), "policy line 5: bad threshold"),
        (POLICY.replace(b"witness bank-a", b"witness \xb0\xa1"), "not a witness or group defined before"),
        (b"\x00", "policy line 1: control character"),
        (b"", "policy has no quorum line"),
    ],
)
def test_cli_malformed_policy_is_a_precise_message(tmp_path: Path, policy: bytes, message: str) -> None:
    path = tmp_path / "p.policy"
    path.write_bytes(policy)
    r = CliRunner().invoke(audit, ["verify", "--policy", str(path), str(VECTORS / "proof_good" / "entry-4.tlog-proof")])
    assert r.exit_code == 1
    assert message in r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)


def test_cli_policy_path_that_is_a_directory_or_vkey_that_is_binary(tmp_path: Path) -> None:
    vkey = tmp_path / "log.vkey"
    vkey.write_bytes(b"\xff\xfe")
    proof = str(VECTORS / "proof_good" / "entry-4.tlog-proof")
    r = CliRunner().invoke(audit, ["verify", "--policy", str(vkey), proof])
    assert r.exit_code == 1 and "FAILED:" in r.output and "ASCII" in r.output


@settings(max_examples=60, derandomize=True, deadline=None)
@given(data=st.data())
def test_cli_verify_on_mutated_proofs_and_policies_never_tracebacks(tmp_path_factory: pytest.TempPathFactory,
                                                                  data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    which = data.draw(st.sampled_from(["proof", "policy"]))
    (d / "e.tlog-proof").write_bytes(mutate(PROOF, data.draw) if which == "proof" else PROOF)
    (d / "p.policy").write_bytes(mutate(POLICY, data.draw) if which == "policy" else POLICY)
    r = CliRunner().invoke(audit, ["verify", "--policy", str(d / "p.policy"), str(d / "e.tlog-proof")])
    assert r.exit_code in (0, 1), r.output  # 2 would be an internal error
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code == 1:
        assert "FAILED: " in r.output
    shutil.rmtree(d)
