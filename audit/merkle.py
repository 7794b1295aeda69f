"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.

Pure functions over hashes. Storage back-ends describe which tree *ranges* a proof
needs (``inclusion_ranges`` / ``consistency_ranges``); every such range decomposes into
complete, aligned subtrees (``subtree_ids``), which is what the database stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from .errors import ConsistencyError, InclusionError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]
SubtreeId = tuple[int, int]  # (level, index): leaves [index << level, (index + 1) << level)


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes in one pass, keeping only O(log n) complete subtrees."""
    sha = hashlib.sha256
    stack: list[bytes] = []
    sizes: list[int] = []
    for h in hashes:
        size = 1
        while sizes and sizes[-1] == size:
            h = sha(b"\x01" + stack.pop() + h).digest()
            sizes.pop()
            size <<= 1
        stack.append(h)
        sizes.append(size)
    return fold(stack)


def fold(subtrees: Sequence[bytes]) -> bytes:
    """Hash of a range given its complete subtrees left to right (see ``subtree_ids``)."""
    if not subtrees:
        return EMPTY_ROOT
    acc = subtrees[-1]
    for h in reversed(subtrees[:-1]):
        acc = node_hash(h, acc)
    return acc


def subtree_ids(start: int, end: int) -> list[SubtreeId]:
    """Complete aligned subtrees whose fold is MTH(D[start:end]).

    Valid for every range that RFC 6962's recursive split produces (start aligned to the
    largest power of two not above the range's size), which covers all proof ranges."""
    out: list[SubtreeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Ranges whose hashes form PATH(index, D[0:size]), the leaf's sibling first."""
    if not 0 <= index < size:
        raise InclusionError(f"index {index} is outside a tree of size {size}")
    out: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start = start + k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[Range]:
    """Ranges whose hashes form PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1)."""
    if not 0 <= old <= new:
        raise ConsistencyError(f"no consistency proof from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    out: list[Range] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                out.append((start, end))
            break
        k = split_point(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    out.reverse()
    return out


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2. ``leaf`` is the leaf *hash*. Raises InclusionError."""
    # 1. Compare leaf_index against tree_size.
    if not 0 <= index < size:
        raise InclusionError(f"index {index} is outside a tree of size {size}")
    # 2.-4. Walk the path from the leaf to the root.
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InclusionError(f"inclusion proof for index {index} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r must equal the root.
    if sn != 0:
        raise InclusionError(f"inclusion proof for index {index} is too short")
    if r != root:
        raise InclusionError(f"leaf at index {index} is not in the tree with this root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2. Raises ConsistencyError."""
    if not 0 <= old_size <= new_size:
        raise ConsistencyError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        # Every tree extends the empty tree; C2SP tlog-witness requires an empty proof.
        if proof:
            raise ConsistencyError("consistency proof from size 0 must be empty")
        return
    if old_size == new_size:
        if proof:
            raise ConsistencyError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ConsistencyError(f"two different roots for tree size {old_size}")
        return
    # 1. If first is an exact power of 2, prepend first_hash to the path.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ConsistencyError("consistency proof is empty")
    # 2. fn = first - 1, sn = second - 1; 3. shift while LSB(fn) is set.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 4. fr = sr = first value of the path; 5. fold the rest.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 6. Check fr == first_hash, sr == second_hash and sn == 0.
    if sn != 0 or fr != old_root or sr != new_root:
        raise ConsistencyError(
            f"tree of size {new_size} is not an extension of the tree of size {old_size}"
        )


class MemoryTree:
    """A tree held in memory as leaf hashes (tests, vector generation, verification)."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.leaves: list[bytes] = list(leaf_hashes)
        self._cache: dict[SubtreeId, bytes] = {}

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MemoryTree:
        return cls(leaf_hash(d) for d in leaves)

    def append(self, data: bytes) -> int:
        self.leaves.append(leaf_hash(data))
        return len(self.leaves) - 1

    def subtree(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaves[index]
        key = (level, index)
        h = self._cache.get(key)
        if h is None:
            h = node_hash(self.subtree(level - 1, 2 * index), self.subtree(level - 1, 2 * index + 1))
            self._cache[key] = h
        return h

    def range_hash(self, start: int, end: int) -> bytes:
        return fold([self.subtree(lv, i) for lv, i in subtree_ids(start, end)])

    def root(self, size: int | None = None) -> bytes:
        return self.range_hash(0, len(self.leaves) if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = len(self.leaves) if size is None else size
        return [self.range_hash(a, b) for a, b in inclusion_ranges(index, size)]

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new is None else new
        return [self.range_hash(a, b) for a, b in consistency_ranges(old, new)]
