"""The C2SP tlog-witness server: every status code of POST /add-checkpoint."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from audit import merkle
from audit.checkpoint import Checkpoint
from audit.note import ALG_COSIGNATURE_V1, Signer, parse_note, verify_cosignature
from audit.push import add_checkpoint_body
from audit.witness import Witness, create_app
from tests.audit.helpers import ORIGIN, fixed_signer

LEAVES = [b"entry %d" % i for i in range(10)]
TREE = merkle.MemoryTree.from_leaves(LEAVES)


@pytest.fixture
def setup(tmp_path: Path, log_signer: Signer, witness_signer: Signer) -> tuple[TestClient, Witness]:
    w = Witness(witness_signer, [(ORIGIN, log_signer.vkey)], tmp_path / "w.db", lambda: 1_800_000_000)
    return TestClient(create_app(w)), w


def signed(signer: Signer, size: int, root: bytes | None = None, origin: str = ORIGIN) -> bytes:
    return Checkpoint(origin, size, TREE.root(size) if root is None else root).sign([signer])


def post(client: TestClient, body: bytes) -> tuple[int, str, str]:
    r = client.post("/add-checkpoint", content=body)
    return r.status_code, r.text, r.headers.get("content-type", "")


def test_witness_cosigns_and_records_the_size(
    setup: tuple[TestClient, Witness], log_signer: Signer, witness_signer: Signer
) -> None:
    client, w = setup
    cp = signed(log_signer, 4)
    status, text, _ = post(client, add_checkpoint_body(0, [], cp))
    assert status == 200
    note = parse_note(cp + text.encode())
    sig = note.signatures[-1]
    assert sig.name == witness_signer.name
    assert verify_cosignature(witness_signer.verifier, note.text, sig) == 1_800_000_000
    assert w.seen(ORIGIN) == (4, TREE.root(4))
    # Next checkpoint with a consistency proof from 4.
    status, _, _ = post(client, add_checkpoint_body(4, TREE.consistency_proof(4, 9), signed(log_signer, 9)))
    assert status == 200 and w.seen(ORIGIN)[0] == 9


def test_witness_409_when_old_size_differs_with_its_size_as_body(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, w = setup
    post(client, add_checkpoint_body(0, [], signed(log_signer, 4)))
    status, text, ctype = post(client, add_checkpoint_body(2, TREE.consistency_proof(2, 9), signed(log_signer, 9)))
    assert (status, text, ctype) == (409, "4\n", "text/x.tlog.size")
    assert w.seen(ORIGIN)[0] == 4


def test_witness_422_for_a_different_root_at_the_same_size(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    # c2sp.org/tlog-witness since C2SP 95978ca (2026-07-06): "If the old size matches the
    # checkpoint size, the witness MUST check that the root hashes are also identical. If
    # they don't match, the witness MUST respond with a 422" (it was 409 before).
    client, w = setup
    post(client, add_checkpoint_body(0, [], signed(log_signer, 4)))
    status, text, ctype = post(client, add_checkpoint_body(4, [], signed(log_signer, 4, b"\x09" * 32)))
    assert status == 422 and "different root" in text and ctype != "text/x.tlog.size"
    assert w.seen(ORIGIN) == (4, TREE.root(4))  # not recorded, not cosigned


def test_witness_same_size_same_root_is_cosigned_again(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, _ = setup
    post(client, add_checkpoint_body(0, [], signed(log_signer, 4)))
    assert post(client, add_checkpoint_body(4, [], signed(log_signer, 4)))[0] == 200


def test_witness_422_for_a_size_zero_checkpoint_without_the_empty_root(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    # tlog-witness (2026-07-06): "A checkpoint of size zero MUST have the root hash of the
    # empty tree, which RFC 6962, Section 2.1 defines as the hash of the empty string".
    client, w = setup
    assert post(client, add_checkpoint_body(0, [], signed(log_signer, 0, b"\x07" * 32)))[0] == 422
    assert post(client, add_checkpoint_body(0, [], signed(log_signer, 0, merkle.EMPTY_ROOT)))[0] == 200
    assert w.seen(ORIGIN) == (0, merkle.EMPTY_ROOT)


def test_witness_422_for_a_proof_from_size_zero(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    # tlog-witness: "If the proof is not empty when the old size is zero … 422".
    client, w = setup
    assert post(client, add_checkpoint_body(0, [TREE.root(1)], signed(log_signer, 4)))[0] == 422
    assert w.seen(ORIGIN)[0] == 0


def test_witness_bounds_sizes_and_proof_lines(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, _ = setup
    # Sizes are below 2**63 (Go: tlog.ParseTree uses strconv.ParseInt(…, 64)).
    huge = Checkpoint(ORIGIN, 2**64, TREE.root(4)).sign([log_signer])
    assert post(client, add_checkpoint_body(0, [], huge))[0] == 400
    assert post(client, b"old 9223372036854775808\n\n" + signed(log_signer, 4))[0] == 400
    # "The client MUST NOT send more than 63 consistency proof lines."
    assert post(client, add_checkpoint_body(4, [TREE.root(1)] * 64, signed(log_signer, 9)))[0] == 400


def test_witness_refuses_an_oversized_body_while_reading(setup: tuple[TestClient, Witness]) -> None:
    client, _ = setup

    def chunks():  # chunked, no Content-Length
        for _ in range(1000):
            yield b"x" * 1024

    r = client.post("/add-checkpoint", content=chunks())
    assert r.status_code == 413


def test_witness_422_when_the_consistency_proof_fails(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, w = setup
    post(client, add_checkpoint_body(0, [], signed(log_signer, 4)))
    forked = merkle.MemoryTree.from_leaves([b"fork", *LEAVES[1:]])
    body = add_checkpoint_body(4, forked.consistency_proof(4, 9), signed(log_signer, 9, forked.root(9)))
    assert post(client, body)[0] == 422
    assert w.seen(ORIGIN)[0] == 4  # not recorded


def test_witness_404_for_an_unknown_origin(setup: tuple[TestClient, Witness]) -> None:
    client, _ = setup
    other = fixed_signer("other.example/log", "other")
    assert post(client, add_checkpoint_body(0, [], signed(other, 2, origin=other.name)))[0] == 404


def test_witness_403_without_a_valid_trusted_signature(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, _ = setup
    stranger = fixed_signer(ORIGIN, "stranger")
    assert post(client, add_checkpoint_body(0, [], signed(stranger, 2)))[0] == 403
    good = signed(log_signer, 2)
    head, b64 = good.decode().rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    damaged = f"{head} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    assert post(client, add_checkpoint_body(0, [], damaged))[0] == 403


def test_witness_400_for_old_larger_than_new_or_garbage(
    setup: tuple[TestClient, Witness], log_signer: Signer
) -> None:
    client, _ = setup
    assert post(client, add_checkpoint_body(5, [], signed(log_signer, 4)))[0] == 400
    assert post(client, b"old x\n\n" + signed(log_signer, 4))[0] == 400
    assert post(client, b"hello")[0] == 400


def test_witness_requires_a_cosignature_key(tmp_path: Path, log_signer: Signer) -> None:
    from audit.errors import KeyFileError

    with pytest.raises(KeyFileError):
        Witness(log_signer, [(ORIGIN, log_signer.vkey)], tmp_path / "w.db")
    Witness(Signer("w", b"\x01" * 32, ALG_COSIGNATURE_V1), [(ORIGIN, log_signer.vkey)], tmp_path / "w.db")
