"""Name the entry that makes an export disagree with its signed checkpoint.

The reference is the export's ``leaf-hashes`` file (the hashes the log committed to,
first checked to fold to the signed root); the lines of ``entries.jsonl`` are hashed
again and compared with it, both streamed (memory O(log n)). The first position where
they differ is classified."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from . import scan
from .errors import (
    EntriesReorderedError,
    EntryDeletedError,
    EntryInsertedError,
    EntryModifiedError,
    InclusionError,
    TruncatedLogError,
    VerificationError,
)


def _ref_ok(ref_path: Path, size: int, root: bytes) -> bool:
    try:
        if ref_path.stat().st_size != 32 * size:
            return False
    except OSError:
        return False
    tree = scan.Tree()
    it = scan.stored_hashes(ref_path)
    while chunk := list(islice(it, 1 << 16)):
        tree.add(scan.pieces(chunk, tree.size))
    return tree.root() == root


def locate_difference(entries: Path, ref_path: Path, size: int, root: bytes) -> VerificationError:
    """The error describing the first difference between ``entries`` (entries.jsonl)
    and ``ref_path`` (leaf-hashes) for a checkpoint of ``size`` and ``root`` (returned,
    for the caller to raise)."""
    if not _ref_ok(ref_path, size, root):
        n = sum(1 for _ in scan.leaf_hashes(entries))
        return InclusionError(
            f"entries.jsonl ({n} lines) does not hash to the checkpoint root, and "
            "leaf-hashes is missing or does not match the checkpoint either, so the "
            "modified entry cannot be named"
        )
    got_it, ref_it = scan.leaf_hashes(entries), scan.stored_hashes(ref_path)
    p = 0
    g = next(got_it, None)
    r = next(ref_it, None)
    while g is not None and r is not None and g == r:
        p += 1
        g, r = next(got_it, None), next(ref_it, None)
    g1, r1 = next(got_it, None), next(ref_it, None)
    n_got = p + (g is not None) + (g1 is not None) + sum(1 for _ in got_it)
    return _classify(p, n_got, size, (g, g1), (r, r1), lambda h: _find(ref_path, h))


def _find(ref_path: Path, h: bytes) -> int | None:
    return next((i for i, x in enumerate(scan.stored_hashes(ref_path)) if x == h), None)


def _classify(
    p: int, n_got: int, size: int, got: tuple[bytes | None, bytes | None],
    ref: tuple[bytes | None, bytes | None], position: object,
) -> VerificationError:  # fmt: skip
    line = p + 1
    if p == n_got < size:
        missing = f"entry {p}" if size - p == 1 else f"entries {p}..{size - 1}"
        return TruncatedLogError(
            f"entries.jsonl ends after line {n_got}: the checkpoint commits to {size} "
            f"entries; {missing} missing (truncated log)"
        )
    if p == size < n_got:
        return EntryInsertedError(
            f"entries.jsonl line {line}: not in the log (the checkpoint has {size} entries)"
        )
    (g, nxt_got), (r, nxt_ref) = got, ref
    if nxt_ref is not None and g == nxt_ref and nxt_got == r:
        return EntriesReorderedError(
            f"entries.jsonl lines {line} and {line + 1} (indexes {p} and {p + 1}) are swapped"
        )
    if nxt_ref is not None and g == nxt_ref:
        return EntryDeletedError(
            f"entry {p} is missing: entries.jsonl line {line} holds entry {p + 1} "
            f"(deleted entry, index {p})"
        )
    if nxt_got is not None and nxt_got == r:
        return EntryInsertedError(
            f"entries.jsonl line {line}: not in the log (inserted before entry {p}, "
            f"which follows at line {line + 1})"
        )
    at = position(g) if g is not None else None  # type: ignore[operator]
    if at is not None:
        return EntriesReorderedError(
            f"entries.jsonl line {line} holds entry {at}, expected entry {p}"
        )
    return EntryModifiedError(
        f"entries.jsonl line {line} (index {p}): leaf hash does not match the tree "
        "(modified entry)"
    )
