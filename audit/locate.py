"""Name the entry that makes an export disagree with its signed checkpoint.

``ref`` is the list of leaf hashes the log committed to (the export's ``leaf-hashes``
file, already checked to hash to the signed root); ``got`` are the hashes of the lines
of ``entries.jsonl``. The first position where they differ is classified."""

from __future__ import annotations

from .errors import (
    EntriesReorderedError,
    EntryDeletedError,
    EntryInsertedError,
    EntryModifiedError,
    InclusionError,
    TruncatedLogError,
    VerificationError,
)


def locate_difference(got: list[bytes], ref: list[bytes] | None) -> VerificationError:
    """The error describing the first difference (returned, for the caller to raise)."""
    if ref is None:
        return InclusionError(
            f"entries.jsonl ({len(got)} lines) does not hash to the checkpoint root, and "
            "leaf-hashes is missing or does not match the checkpoint either, so the "
            "modified entry cannot be named"
        )
    size = len(ref)
    p = next((i for i in range(min(len(got), size)) if got[i] != ref[i]), min(len(got), size))
    line = p + 1
    if p == len(got) < size:
        missing = f"entry {p}" if size - p == 1 else f"entries {p}..{size - 1}"
        return TruncatedLogError(
            f"entries.jsonl ends after line {len(got)}: the checkpoint commits to {size} "
            f"entries; {missing} missing (truncated log)"
        )
    if p == size < len(got):
        return EntryInsertedError(
            f"entries.jsonl line {line}: not in the log (the checkpoint has {size} entries)"
        )
    nxt_got = got[p + 1] if p + 1 < len(got) else None
    nxt_ref = ref[p + 1] if p + 1 < size else None
    if nxt_ref is not None and got[p] == nxt_ref and nxt_got == ref[p]:
        return EntriesReorderedError(
            f"entries.jsonl lines {line} and {line + 1} (indexes {p} and {p + 1}) are swapped"
        )
    if nxt_ref is not None and got[p] == nxt_ref:
        return EntryDeletedError(
            f"entry {p} is missing: entries.jsonl line {line} holds entry {p + 1} "
            f"(deleted entry, index {p})"
        )
    if nxt_got is not None and nxt_got == ref[p]:
        return EntryInsertedError(
            f"entries.jsonl line {line}: not in the log (inserted before entry {p}, "
            f"which follows at line {line + 1})"
        )
    positions = {h: i for i, h in enumerate(ref)}
    if got[p] in positions:
        return EntriesReorderedError(
            f"entries.jsonl line {line} holds entry {positions[got[p]]}, expected entry {p}"
        )
    return EntryModifiedError(
        f"entries.jsonl line {line} (index {p}): leaf hash does not match the tree "
        "(modified entry)"
    )
