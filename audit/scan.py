"""Streaming pass over a full export's ``entries.jsonl`` (verify step 7).

Memory is O(log n) in the number of entries: the file is read in blocks of whole lines,
each block's leaves are hashed and folded into aligned complete RFC 6962 subtrees
(RFC 9162 §2.1.1), and only the O(log n) complete subtrees of the prefix read so far
are kept. Per-line Python work is one SHA-256 call: the canonical-entry shape check
("action" first, "v" last) runs on whole blocks with ``bytes.count`` (canonical JSON has
no raw newline, so ``,"v":1}\\n{"action":`` can only occur between two good lines), and
only lines of a block that fails it are looked at one by one. With ``workers`` > 1 the
hashing of chunks runs in a process pool (the parent only reads the file)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import merkle
from .entry import FIELDS, OPTIONAL_FIELDS, canonical_json
from .errors import FormatError

BLOCK = 4 << 20  # bytes read (and hashed) at a time
_HEAD, _TAIL = b'{"action":', b',"v":1}'
_JOINT = _TAIL + b"\n" + _HEAD
_KNOWN = frozenset(FIELDS) | frozenset(OPTIONAL_FIELDS)
DIGEST = re.compile(rb'"sha256":"([0-9a-f]{64})"')


def strict_check(line: bytes) -> None:
    """Raise ValueError unless ``line`` is exactly the canonical JSON of a v1 entry
    (its fields among ``FIELDS`` plus the optional ones, e.g. ``rating``)."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or obj.get("v") != 1 or not set(obj) <= _KNOWN:
        raise ValueError("not a version 1 audit entry")
    if canonical_json(obj) != line:
        raise ValueError("not canonical JSON")


StrictCheck = Callable[[bytes], None]
Bad = tuple[int, str] | None


@dataclass
class ScanResult:
    """``count`` lines; ``root`` MTH of all of them; ``roots[m]`` MTH of the first m
    (for each wanted prefix size m <= count); ``digests`` sha256 hex -> (line, index)
    for the wanted evidence digests found in entries that list digests; ``bad`` the
    first line that is not a canonical v1 entry (reported after the tree check)."""

    count: int = 0
    root: bytes = merkle.EMPTY_ROOT
    roots: dict[int, bytes] = field(default_factory=dict)
    digests: dict[str, tuple[int, int]] = field(default_factory=dict)
    bad: FormatError | None = None


def subtree_root(hashes: list[bytes]) -> bytes:
    """MTH of a complete subtree given its 2**k leaf (or node) hashes, level by level."""
    sha = hashlib.sha256
    while len(hashes) > 1:
        hashes = [sha(b"\x01" + a + b).digest() for a, b in zip(hashes[::2], hashes[1::2], strict=True)]
    return hashes[0]


Pieces = list[tuple[int, bytes]]  # (size, MTH) of aligned complete subtrees, in order


def pieces(leaves: list[bytes], start: int) -> Pieces:
    """Cover leaves [start, start + len(leaves)) with maximal aligned complete subtrees
    (each of size 2**k starting at a multiple of 2**k), left to right."""
    out: Pieces = []
    pos, end = start, start + len(leaves)
    while pos < end:
        size = pos & -pos if pos else 1 << (end - pos).bit_length()
        while pos + size > end:
            size >>= 1
        out.append((size, subtree_root(leaves[pos - start : pos - start + size])))
        pos += size
    return out


def hash_block(
    data: bytes, start: int, strict: StrictCheck | None, prefixes: tuple[int, ...] = ()
) -> tuple[Pieces, dict[int, Pieces], Bad]:
    """Leaf-hash the newline-terminated lines of ``data`` (entries start..) and fold them
    into aligned complete subtrees. ``prefixes``: tree sizes m inside the block whose
    prefix pieces [start, m) are wanted too. Returns (pieces, {m: pieces}, None or
    (first bad line number within the block, why))."""
    lines = data.split(b"\n")
    lines.pop()  # data ends with a newline
    sha = hashlib.sha256
    leaves = [sha(b"\x00" + x).digest() for x in lines]
    pre = {m: pieces(leaves[: m - start], start) for m in prefixes}
    return pieces(leaves, start), pre, _first_bad(data, lines, strict)


def _first_bad(data: bytes, lines: list[bytes], strict: StrictCheck | None) -> Bad:
    ok = (
        data.startswith(_HEAD)
        and data.endswith(_TAIL + b"\n")
        and data.count(_JOINT) == len(lines) - 1
    )
    if ok and strict is None:
        return None
    for k, line in enumerate(lines, start=1):
        if not (line.startswith(_HEAD) and line.endswith(_TAIL)):
            return k, "not a canonical version 1 audit entry"
        if strict is not None:
            try:
                strict(line)
            except ValueError as exc:
                return k, str(exc)
    return None


class Tree:
    """The O(log n) complete subtrees of the prefix hashed so far (RFC 9162 §2.1.1:
    pushing aligned subtrees in order and merging equal neighbours keeps exactly the
    binary decomposition of the size)."""

    def __init__(self) -> None:
        self.stack: Pieces = []
        self.size = 0

    def add(self, pcs: Pieces) -> None:
        sha = hashlib.sha256
        for size, h in pcs:
            self.size += size
            while self.stack and self.stack[-1][0] == size:
                h = sha(b"\x01" + self.stack.pop()[1] + h).digest()
                size <<= 1
            self.stack.append((size, h))

    def root(self, extra: Pieces | None = None) -> bytes:
        if extra:
            t = Tree()
            t.stack, t.size = list(self.stack), self.size
            t.add(extra)
            return t.root()
        return merkle.fold([h for _, h in self.stack])


def blocks(path: Path, lo: int = 0, hi: int | None = None) -> Iterator[bytes]:
    """Runs of whole newline-terminated lines of about BLOCK bytes from byte ``lo`` to
    ``hi`` (both on line starts; default: the whole file). A last line without newline
    is yielded as is (the caller reports it)."""
    with open(path, "rb", buffering=0) as f:
        f.seek(lo)
        left = (hi if hi is not None else 1 << 62) - lo
        while left > 0 and (block := f.read(min(BLOCK, left))):
            left -= len(block)
            if left > 0 and not block.endswith(b"\n"):
                more = f.readline()
                left -= len(more)
                block += more
            yield block


def _ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Split the file into about ``parts`` byte ranges that start at line starts."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(size * k // parts, cuts[-1]))
            f.readline()
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def count_lines(path: Path, lo: int, hi: int) -> int:
    """Newlines in bytes [lo, hi) of ``path``."""
    return sum(b.count(b"\n") for b in blocks(path, lo, hi))


Found = dict[str, tuple[int, int]]


def hash_range(
    path: Path, lo: int, hi: int, start: int, strict: StrictCheck | None,
    want_roots: frozenset[int], want_digests: frozenset[str],
) -> tuple[Pieces, dict[int, Pieces], Bad, Found]:  # fmt: skip
    """Hash the lines in bytes [lo, hi) of ``path``, entries start.. : (pieces covering
    them, {m: pieces of [start, m)} for wanted sizes m inside, first bad line (absolute
    line number, why), wanted digests found). Runs in a pool worker or in-process."""
    acc = _RangeAcc(start)
    pre: dict[int, Pieces] = {}
    bad: Bad = None
    found: Found = {}
    pos = start
    for data in blocks(path, lo, hi):
        if not data.endswith(b"\n"):  # the caller reports the unterminated last line
            data = data[: data.rfind(b"\n") + 1]
            if not data:
                break
        k = data.count(b"\n")
        inside = tuple(m for m in want_roots if pos < m <= pos + k)
        pcs, inner, b = hash_block(data, pos, strict, inside)
        for m, extra in inner.items():
            pre[m] = acc.snapshot() + extra
        if b and bad is None:
            bad = (pos + b[0], b[1])
        if want_digests:
            _find_digests(data, pos, want_digests, found)
        acc.add(pcs)
        pos += k
    return acc.pieces, pre, bad, found


class _RangeAcc:
    """Aligned pieces of a range that starts at an arbitrary leaf, merged when two
    equal neighbours are siblings (the left one starts at a multiple of twice its size):
    O(log n) pieces."""

    def __init__(self, start: int) -> None:
        self.pieces: Pieces = []
        self.ends: list[int] = []  # start leaf of each piece
        self.pos = start

    def add(self, pcs: Pieces) -> None:
        sha = hashlib.sha256
        for size, h in pcs:
            at = self.pos
            self.pos += size
            while (
                self.pieces and self.pieces[-1][0] == size and self.ends[-1] % (2 * size) == 0
            ):
                h = sha(b"\x01" + self.pieces.pop()[1] + h).digest()
                at = self.ends.pop()
                size <<= 1
            self.pieces.append((size, h))
            self.ends.append(at)

    def snapshot(self) -> Pieces:
        return list(self.pieces)


def scan(
    path: Path,
    *,
    want_roots: set[int] = frozenset(),  # type: ignore[assignment]
    want_digests: set[str] = frozenset(),  # type: ignore[assignment]
    strict: StrictCheck | None = None,
    workers: int = 0,
) -> ScanResult:
    """Hash ``path`` (entries.jsonl) into its RFC 6962 root in one streaming pass.
    ``workers`` > 1: the file is cut into byte ranges at line starts; a process pool
    counts their lines, then hashes each range from its first index (two cheap passes
    over the page cache, no data sent between processes). Raises FormatError for a
    missing file or a last line without newline; a non-canonical line is in ``bad``."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(size - 1, 0))
            last = f.read(1)
    except OSError:
        raise FormatError(f"{path.name} is missing") from None
    wr, wd = frozenset(want_roots), frozenset(want_digests)
    if workers > 1 and size:
        with ProcessPoolExecutor(workers) as pool:
            ranges = _ranges(path, 4 * workers)
            n = len(ranges)
            los, his = [a for a, _ in ranges], [b for _, b in ranges]
            counts = list(pool.map(count_lines, [path] * n, los, his))
            starts = [sum(counts[:i]) for i in range(n)]
            outs = list(pool.map(hash_range, [path] * n, los, his, starts, [strict] * n,
                                 [wr] * n, [wd] * n))  # fmt: skip
        total = sum(counts)
    else:
        outs = [hash_range(path, 0, size, 0, strict, wr, wd)] if size else []
        total = None
    res = ScanResult()
    tree = Tree()
    for pcs, pre, bad, found in outs:
        for m, extra in pre.items():
            res.roots[m] = tree.root(extra)
        if bad and res.bad is None:
            res.bad = FormatError(f"entries.jsonl line {bad[0]} (index {bad[0] - 1}): {bad[1]}")
        for k, v in found.items():
            res.digests.setdefault(k, v)
        tree.add(pcs)
    if size and last != b"\n":
        n = total if total is not None else tree.size
        raise FormatError(f"{path.name} line {n + 1}: does not end with a newline")
    res.count = tree.size
    res.root = tree.root()
    return res


def _find_digests(
    data: bytes, start: int, wanted: frozenset[str] | set[str], found: Found
) -> None:
    """Record where each wanted evidence digest is first listed (line, index)."""
    for m in DIGEST.finditer(data):
        hexd = m.group(1).decode()
        if hexd not in wanted or hexd in found:
            continue
        lo = data.rfind(b"\n", 0, m.start()) + 1
        hi = data.find(b"\n", m.end())
        if b'"digests":[{' in data[lo:hi]:
            index = start + data.count(b"\n", 0, lo)
            found[hexd] = (index + 1, index)


def leaf_hashes(path: Path) -> Iterator[bytes]:
    """Leaf hashes of entries.jsonl, streamed (for naming a tampered entry)."""
    sha = hashlib.sha256
    for data in blocks(path):
        lines = data.split(b"\n")
        lines.pop()
        yield from (sha(b"\x00" + x).digest() for x in lines)


def stored_hashes(path: Path) -> Iterator[bytes]:
    """The 32-byte hashes of a ``leaf-hashes`` file, streamed."""
    with open(path, "rb") as f:
        while block := f.read(32 << 15):
            yield from (block[i : i + 32] for i in range(0, len(block), 32))


def default_workers() -> int:
    """Hashing processes for a full verify: both cores when there are two or more
    (``SERVICEPOINT_VERIFY_WORKERS`` overrides; 0 or 1 = single process)."""
    env = os.environ.get("SERVICEPOINT_VERIFY_WORKERS")
    if env is not None and env.isascii() and env.isdigit() and len(env) < 4:
        return int(env)
    return min(2, os.cpu_count() or 1)
