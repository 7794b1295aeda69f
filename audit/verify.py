"""Offline verification of an export directory or a ``.tlog-proof`` file.

Needs nothing but this package (no database). Returns None or raises a specific
VerificationError subclass naming the file, line and entry that failed. The numbered
steps are listed in docs/audit.md and follow C2SP tlog-policy, signed-note,
tlog-checkpoint, tlog-cosignature, tlog-proof and RFC 9162 §2.1."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import merkle, scan
from .checkpoint import OpenedCheckpoint, open_checkpoint
from .errors import (
    ConsistencyError,
    EntriesReorderedError,
    EntryDeletedError,
    EntryInsertedError,
    EntryModifiedError,
    EvidenceError,
    FormatError,
    InclusionError,
    KeyFileError,
    PolicyError,
    TruncatedLogError,
    VerificationError,
)
from .locate import locate_difference
from .policy import Policy
from .proof import TlogProof

Step = Callable[[str], None]


@dataclass
class _Entries:
    count: int = 0
    digests: dict[str, tuple[int, int]] = field(default_factory=dict)  # sha -> (line, index)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    p = Path(path)
    try:
        if p.name.endswith(".vkey"):  # as /audit/keys serves it: a vkey first on each line
            text = p.read_bytes().decode("ascii")
            lines = (line.split("#", 1)[0].split() for line in text.splitlines())
            return Policy.build([words[0] for words in lines if words], quorum="none")
        return Policy.parse(p.read_bytes())
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read the policy ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{p}: a vkey file must be ASCII") from None
    except KeyFileError as exc:
        raise PolicyError(f"{p}: {exc}") from None


def verify(
    path: str | os.PathLike[str],
    policy: Policy | str | os.PathLike[str] | None = None,
    *,
    previous: Iterable[str | os.PathLike[str]] = (),
    on_step: Step | None = None,
    strict: bool = False,
) -> None:
    """Verify an export directory or a ``.tlog-proof`` file. ``policy`` is the auditor's
    trust policy; without it the export's own ``policy`` file is used (which only proves
    internal consistency: pass your own policy to pin the keys). ``previous``: earlier
    signed checkpoints the auditor kept, checked for consistency (fork detection).
    ``strict`` re-encodes every entry to check canonical JSON (slower; filtered exports
    and proofs always do)."""
    step = on_step or (lambda _msg: None)
    p = Path(path)
    if p.is_dir():
        _verify_dir(p, policy, [Path(x) for x in previous], step, strict)
    elif p.is_file():
        _verify_proof_file(p, policy, step)
    else:
        raise FormatError(f"{p}: no such export directory or .tlog-proof file")


def _policy(p: Path, policy: Policy | str | os.PathLike[str] | None, step: Step) -> Policy:
    if isinstance(policy, Policy):
        step("trust policy: given by the caller")
        return policy
    if policy is not None:
        step(f"trust policy: {policy}")
        return load_policy(policy)
    base = p if p.is_dir() else p.parent
    for cand in (base / "policy", base.parent / "policy", base / "log.vkey"):
        if cand.is_file():
            where = "the export itself" if p.is_dir() else "the folder of the proof"
            step(f"trust policy: {cand} (found in {where}, not pinned; pass --policy to pin keys)")
            return load_policy(cand)
    raise FormatError(
        f"{p}: no policy given and no policy or log.vkey file next to it; the log's public keys"
        " are served at /audit/keys: save them as log.vkey and pass --policy log.vkey"
    )


def _verify_dir(
    d: Path, policy_arg: object, previous: list[Path], step: Step, strict: bool
) -> None:
    # 1. Load the trust policy (C2SP tlog-policy).
    policy = _policy(d, policy_arg, step)  # type: ignore[arg-type]
    # 2.-6. Open the checkpoint: signed-note format, a trusted log signature, the
    #       tlog-checkpoint body, every known cosignature, the witness quorum.
    opened = _open(d / "checkpoint", policy, "checkpoint")
    cp = opened.checkpoint
    step(f"checkpoint: origin {cp.origin}, size {cp.size}, signed by a trusted log key")
    if policy.quorum != "none":
        step(f"checkpoint: witness quorum met ({', '.join(sorted(opened.cosigned))})")
    # 7. Entries are in the tree (RFC 6962 leaf hashes; RFC 9162 §2.1.3 when filtered).
    hist = _history(d, previous)
    if (d / "indexes").exists():
        roots: dict[int, bytes] = {}
        ents = _verify_filtered(d, opened)
        step(f"entries: {ents.count} selected entries each have a valid inclusion proof")
    else:
        ents, roots = _verify_full(d, opened, {size for _, size, _ in hist}, strict)
        step(f"entries: all {ents.count} entries hash to the checkpoint root")
    # 8. Earlier checkpoints by the same log are consistent with this one (no fork).
    n = _verify_history(d, hist, opened, policy, roots)
    if n:
        step(f"history: {n} earlier checkpoint(s) are consistent with this one")
    # 9. Evidence files match the digests the log recorded.
    m = _verify_evidence(d, ents)
    step(f"evidence: {m} file(s) match the SHA-256 recorded in the log")


def _open(path: Path, policy: Policy, where: str) -> OpenedCheckpoint:
    try:
        data = path.read_bytes()
    except OSError:
        raise FormatError(f"{where}: file {path.name} is missing") from None
    return open_checkpoint(data, policy, where)


def _lines(path: Path) -> Iterable[bytes]:
    try:
        f = open(path, "rb", buffering=1 << 20)
    except OSError:
        raise FormatError(f"{path.name} is missing") from None
    with f:
        for n, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                raise FormatError(f"{path.name} line {n}: does not end with a newline")
            yield line[:-1]


def _check_entry(line: bytes, n: int, index: int, ents: _Entries) -> None:
    """The leaf is a canonical v1 entry (what the log promised to write): filtered
    exports and proofs always re-encode it (few entries)."""
    where = f"entries.jsonl line {n} (index {index})"
    if not (line.startswith(b'{"action":') and line.endswith(b',"v":1}')):
        raise FormatError(f"{where}: not a canonical version 1 audit entry")
    try:
        scan.strict_check(line)
    except ValueError as exc:
        raise FormatError(f"{where}: {exc}") from None
    if b'"digests":[{' in line:
        for m in scan.DIGEST.finditer(line):
            ents.digests.setdefault(m.group(1).decode(), (n, index))


def _verify_full(
    d: Path, opened: OpenedCheckpoint, want_roots: set[int], strict: bool
) -> tuple[_Entries, dict[int, bytes]]:
    """One streaming pass (audit/scan.py): memory O(log n), both cores for big files."""
    cp = opened.checkpoint
    path = d / "entries.jsonl"
    try:
        big = path.stat().st_size > PARALLEL_BYTES
    except OSError:
        big = False
    res = scan.scan(
        path,
        want_roots={m for m in want_roots if 0 < m <= cp.size},
        want_digests=_manifest_digests(d),
        strict=scan.strict_check if strict else None,
        workers=scan.default_workers() if big else 0,
    )
    if res.count != cp.size or res.root != cp.root:
        # The entries do not match: name the entry, using leaf-hashes (authenticated
        # by the signed root) as the reference.
        raise locate_difference(path, d / "leaf-hashes", cp.size, cp.root)
    if res.bad is not None:
        raise res.bad
    return _Entries(res.count, res.digests), res.roots


PARALLEL_BYTES = 64 << 20  # below this a process pool costs more than it saves


def _manifest_digests(d: Path) -> set[str]:
    """Digests listed in the manifest (checked properly in step 9): only these need
    their entry located, so memory does not grow with the log."""
    try:
        text = (d / "manifest").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {line[:64] for line in text.splitlines() if len(line) > 64}


def _verify_filtered(d: Path, opened: OpenedCheckpoint) -> _Entries:
    cp = opened.checkpoint
    try:
        indexes = (d / "indexes").read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        raise FormatError("indexes file is unreadable") from None
    ents = _Entries()
    last = -1
    for n, line in enumerate(_lines(d / "entries.jsonl"), start=1):
        if n > len(indexes):
            raise EntryInsertedError(f"entries.jsonl line {n}: not listed in indexes")
        if not (indexes[n - 1].isascii() and indexes[n - 1].isdigit() and len(indexes[n - 1]) < 20):
            raise FormatError(f"indexes line {n}: {indexes[n - 1][:30]!r} is not a decimal index")
        idx = int(indexes[n - 1])
        if idx <= last or idx >= cp.size:
            raise EntriesReorderedError(f"indexes line {n}: index {idx} out of order or range")
        last = idx
        where = f"entries.jsonl line {n} (index {idx})"
        ppath = d / "proofs" / f"{idx}.tlog-proof"
        try:
            proof = TlogProof.parse(ppath.read_bytes(), f"proofs/{idx}.tlog-proof")
        except OSError:
            raise InclusionError(f"{where}: proofs/{idx}.tlog-proof is missing") from None
        if proof.index != idx or _body(proof.checkpoint) != opened.note.text.encode():
            raise InclusionError(f"{where}: its proof is for another index or checkpoint")
        try:
            merkle.verify_inclusion(merkle.leaf_hash(line), idx, cp.size, proof.hashes, cp.root)
        except InclusionError:
            raise EntryModifiedError(
                f"{where}: leaf hash does not match the tree (inclusion proof fails)"
            ) from None
        _check_entry(line, n, idx, ents)
        ents.count += 1
    if ents.count != len(indexes):
        raise EntryDeletedError(
            f"entries.jsonl has {ents.count} lines but indexes lists {len(indexes)}: "
            f"entry {indexes[ents.count]} is missing"
        )
    return ents


def _body(checkpoint: bytes) -> bytes:
    cut = checkpoint.rfind(b"\n\n")
    return checkpoint[: cut + 1]


def _history(d: Path, previous: list[Path]) -> list[tuple[Path, int, str]]:
    """(file, size, label) of earlier checkpoints: checkpoints/<size> and --previous."""
    out = []
    hdir = d / "checkpoints"
    if hdir.is_dir():
        for f in sorted(hdir.iterdir()):
            if f.name.isascii() and f.name.isdigit() and len(f.name) < 20:
                out.append((f, int(f.name), f"checkpoints/{f.name}"))
    for f in previous:
        out.append((f, -1, str(f)))
    return out


def _verify_history(
    d: Path, hist: list[tuple[Path, int, str]], latest: OpenedCheckpoint, policy: Policy,
    roots: dict[int, bytes],
) -> int:  # fmt: skip
    cp = latest.checkpoint
    # Earlier checkpoints need a trusted log signature; cosignatures are optional there.
    loose = Policy(logs=policy.logs, witnesses=policy.witnesses, quorum="none")
    for f, _size, label in hist:
        old = _open(f, loose, label).checkpoint
        if old.origin != cp.origin:
            raise ConsistencyError(f"{label}: origin {old.origin!r} is not {cp.origin!r}")
        if old.size > cp.size:
            raise ConsistencyError(
                f"{label} (size {old.size}) is larger than the exported checkpoint "
                f"(size {cp.size}): the export is not the latest view of the log"
            )
        fork = (
            f"{label} (size {old.size}) is inconsistent with checkpoint (size {cp.size}): "
            "the log signed two inconsistent trees (fork)"
        )
        if not (d / "indexes").exists():  # full export: recompute the prefix root
            want = roots.get(old.size)
            if want is None:
                want = _prefix_root(d, old.size)
            if want != old.root:
                raise ConsistencyError(fork)
            continue
        proof_file = f.with_name(f"{f.name}.consistency")
        try:
            lines = proof_file.read_text(encoding="ascii").split()
            proof = [base64.b64decode(x, validate=True) for x in lines]
        except (OSError, ValueError, binascii.Error):
            raise ConsistencyError(f"{label}: no readable consistency proof") from None
        try:
            merkle.verify_consistency(old.size, cp.size, proof, old.root, cp.root)
        except ConsistencyError:
            raise ConsistencyError(fork) from None
    return len(hist)


def _prefix_root(d: Path, size: int) -> bytes:
    path = d / "entries.jsonl"
    return scan.scan(path, want_roots={size}).roots.get(size, merkle.EMPTY_ROOT)


def _verify_evidence(d: Path, ents: _Entries) -> int:
    from .export import sha256_file

    manifest = d / "manifest"
    listed: set[str] = set()
    if manifest.exists():
        try:
            listing = manifest.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise FormatError("manifest is unreadable or not UTF-8") from None
        for n, line in enumerate(listing, start=1):
            digest, sep, rel = line.partition("  ")
            if not sep or len(digest) != 64 or not rel.startswith("evidence/") or ".." in rel:
                raise FormatError(f"manifest line {n}: expected '<sha256>  evidence/<path>'")
            listed.add(rel)
            f = d / rel
            if not f.is_file():
                raise EvidenceError(f"{rel} (manifest line {n}) is missing from the export")
            actual = sha256_file(f)
            where = ents.digests.get(digest)
            if where is None:
                raise EvidenceError(
                    f"{rel}: digest {digest} in manifest line {n} is not recorded in any "
                    "exported entry"
                )
            if actual != digest:
                raise EvidenceError(
                    f"{rel}: SHA-256 is {actual} but entries.jsonl line {where[0]} "
                    f"(index {where[1]}) recorded {digest}: the file was altered"
                )
    edir = d / "evidence"
    if edir.is_dir():
        for f in sorted(edir.rglob("*")):
            rel = f.relative_to(d).as_posix()
            if f.is_file() and rel not in listed:
                raise EvidenceError(f"{rel} is not listed in the manifest")
    return len(listed)


def _verify_proof_file(p: Path, policy_arg: object, step: Step) -> None:
    # 1. Load the trust policy (C2SP tlog-policy).
    policy = _policy(p, policy_arg, step)  # type: ignore[arg-type]
    # 2. Parse the proof (C2SP tlog-proof §Format).
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FormatError(f"{p.name}: cannot read ({exc.strerror or exc})") from None
    proof = TlogProof.parse(data, p.name)
    # 3.-7. Open the embedded checkpoint under the policy (signature, body, quorum).
    opened = open_checkpoint(proof.checkpoint, policy, f"{p.name}: checkpoint")
    cp = opened.checkpoint
    step(f"checkpoint: origin {cp.origin}, size {cp.size}, signed by a trusted log key")
    # 8. The entry (our proofs carry its leaf bytes as extra data) is a canonical entry.
    if proof.extra is None:
        raise FormatError(f"{p.name}: no extra line with the entry's leaf bytes")
    _check_entry(proof.extra, 1, proof.index, _Entries())
    # 9. The inclusion proof verifies against the root (RFC 9162 §2.1.3.2).
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(proof.extra), proof.index, cp.size, proof.hashes, cp.root
        )
    except InclusionError as exc:
        raise InclusionError(f"{p.name}: entry {proof.index}: {exc}") from None
    step(f"entry {proof.index}: included in the tree of size {cp.size}")


__all__ = ["verify", "load_policy", "VerificationError", "TruncatedLogError"]
