"""RFC 6962 hashing and proofs, against the spec's known answers and its recursive
definitions (not against our own stored-tree code)."""

from __future__ import annotations

import hashlib

import pytest

from audit import merkle
from audit.errors import ConsistencyError, InclusionError

# transparency-dev test leaves and roots (AUDIT-FORMATS.md).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOT_3 = "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written straight from the definition."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(d) <= 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def test_merkle_known_answer_roots() -> None:
    assert merkle.MemoryTree.from_leaves(LEAVES[:3]).root().hex() == ROOT_3
    assert merkle.MemoryTree.from_leaves(LEAVES).root().hex() == ROOT_8
    assert merkle.root_from_leaf_hashes(map(merkle.leaf_hash, LEAVES)).hex() == ROOT_8
    assert mth(LEAVES).hex() == ROOT_8


def test_merkle_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()
    assert merkle.MemoryTree().root() == merkle.EMPTY_ROOT


def test_merkle_root_rejects_a_changed_leaf() -> None:
    changed = [*LEAVES[:7], b"\x60\x61"]
    assert merkle.MemoryTree.from_leaves(changed).root().hex() != ROOT_8


@pytest.mark.parametrize("size", range(1, 20))
def test_merkle_inclusion_proofs_match_rfc_and_verify(size: int) -> None:
    data = [bytes([i]) * (i % 5) for i in range(size)]
    tree = merkle.MemoryTree.from_leaves(data)
    root = tree.root()
    assert root == mth(data) == merkle.root_from_leaf_hashes(tree.leaves)
    for m in range(size):
        proof = tree.inclusion_proof(m)
        assert proof == path(m, data)
        merkle.verify_inclusion(merkle.leaf_hash(data[m]), m, size, proof, root)
        with pytest.raises(InclusionError):
            merkle.verify_inclusion(merkle.leaf_hash(b"tampered"), m, size, proof, root)
        if proof:
            bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
            with pytest.raises(InclusionError):
                merkle.verify_inclusion(merkle.leaf_hash(data[m]), m, size, bad, root)
            with pytest.raises(InclusionError):
                merkle.verify_inclusion(merkle.leaf_hash(data[m]), m, size, proof[:-1], root)


@pytest.mark.parametrize("new", range(1, 18))
def test_merkle_consistency_proofs_match_rfc_and_verify(new: int) -> None:
    data = [b"leaf %d" % i for i in range(new)]
    tree = merkle.MemoryTree.from_leaves(data)
    for old in range(1, new + 1):
        proof = tree.consistency_proof(old, new)
        assert proof == (subproof(old, data, True) if old < new else [])
        merkle.verify_consistency(old, new, proof, tree.root(old), tree.root(new))
        if old < new:
            forked = merkle.MemoryTree.from_leaves([b"fork", *data[1:old]]).root()
            with pytest.raises(ConsistencyError):
                merkle.verify_consistency(old, new, proof, forked, tree.root(new))


def test_merkle_consistency_rejects_shrinking_and_nonempty_zero_proof() -> None:
    t = merkle.MemoryTree.from_leaves([b"a", b"b"])
    with pytest.raises(ConsistencyError):
        merkle.verify_consistency(2, 1, [], t.root(2), t.root(1))
    with pytest.raises(ConsistencyError):
        merkle.verify_consistency(0, 2, [t.root()], merkle.EMPTY_ROOT, t.root())
    merkle.verify_consistency(0, 2, [], merkle.EMPTY_ROOT, t.root())


def test_merkle_subtree_ids_cover_range_with_aligned_subtrees() -> None:
    assert merkle.subtree_ids(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.subtree_ids(8, 13) == [(2, 2), (0, 12)]
