"""Export the log (or a filtered part of it) for offline verification. See docs/audit.md
for the layout; ``verify.py`` checks it."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.engine import Engine

from . import store
from .errors import AuditError, LogStateError
from .log import latest_checkpoint, recent_checkpoints
from .models import entries
from .policy import Policy
from .proof import TlogProof

CHUNK = 1 << 20
ROWS = 20_000


@dataclass(frozen=True)
class ExportResult:
    path: Path
    tree_size: int
    entries: int
    filtered: bool
    evidence: int


def export(
    engine: Engine,
    dir: str | os.PathLike[str],
    policy: Policy,
    *,
    outlet: str | None = None,
    from_: date | datetime | None = None,
    to: date | datetime | None = None,
    evidence: Iterable[tuple[str, str | os.PathLike[str]]] = (),
    history: int = 16,
) -> ExportResult:
    """Write an export directory for the latest signed checkpoint.

    Without filters ``entries.jsonl`` holds every entry 0..size-1 and ``leaf-hashes``
    lets the verifier name a tampered entry. With ``outlet``/``from_``/``to`` it holds
    the selected entries, ``indexes`` their positions and ``proofs/<index>.tlog-proof``
    their inclusion proofs. ``evidence`` is (relative path, file) pairs copied under
    ``evidence/`` and listed with their SHA-256 in ``manifest``. ``policy`` names the
    log and witness keys written to ``log.vkey``, ``witnesses/`` and ``policy``."""
    out = Path(dir)
    if out.exists() and any(out.iterdir()):
        raise AuditError(f"export directory {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    filtered = outlet is not None or from_ is not None or to is not None
    # Entries and checkpoints are append-only, so short read transactions are enough
    # (on SQLite every app transaction takes the write lock: keep them short).
    with engine.connect() as conn:
        cp = latest_checkpoint(conn)
        history_cps = recent_checkpoints(conn, limit=history + 1)
    if cp is None:
        raise LogStateError("no signed checkpoint yet: sign one before exporting")
    size, cp_text = cp.size, cp.text()
    (out / "checkpoint").write_bytes(cp_text)
    if not filtered:
        count = _write_all(engine, out, size)
    else:
        count = _write_filtered(engine, out, size, cp_text, outlet, from_, to)
    seen_sizes = {size}
    hist = out / "checkpoints"
    for old in history_cps:
        if old.size in seen_sizes or old.size > size:
            continue
        seen_sizes.add(old.size)
        hist.mkdir(exist_ok=True)
        (hist / str(old.size)).write_bytes(old.text())
        if filtered:
            with engine.connect() as conn:
                proof = store.consistency_proof(conn, old.size, size)
            lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            (hist / f"{old.size}.consistency").write_text(lines, encoding="ascii")
    (out / "log.vkey").write_text("".join(v.vkey + "\n" for v in policy.logs), encoding="ascii")
    if policy.witnesses:
        (out / "witnesses").mkdir()
        for name, v in policy.witnesses.items():
            (out / "witnesses" / f"{_safe_name(name)}.vkey").write_text(v.vkey + "\n")
    (out / "policy").write_text(policy.encode(), encoding="utf-8")
    n_evidence = _write_evidence(out, evidence)
    return ExportResult(out, size, count, filtered, n_evidence)


def _write_all(engine: Engine, out: Path, size: int) -> int:
    pos = 0
    with open(out / "entries.jsonl", "wb", buffering=CHUNK) as ef, open(
        out / "leaf-hashes", "wb", buffering=CHUNK
    ) as hf:
        while pos < size:
            stop = min(size, pos + ROWS)
            q = (
                select(entries.c.idx, entries.c.leaf, entries.c.leaf_hash)
                .where(entries.c.idx >= pos, entries.c.idx < stop)
                .order_by(entries.c.idx)
            )
            with engine.connect() as conn:
                rows = conn.execute(q).all()
            for idx, leaf, h in rows:
                if idx != pos:
                    break
                ef.write(bytes(leaf) + b"\n")
                hf.write(bytes(h))
                pos += 1
            if pos != stop:
                raise LogStateError(f"entry {pos} is missing from audit_entries")
    return pos


def _write_filtered(
    engine: Engine, out: Path, size: int, cp_text: bytes, outlet: str | None,
    from_: date | datetime | None, to: date | datetime | None,
) -> int:  # fmt: skip
    q = select(entries.c.idx, entries.c.leaf).where(entries.c.idx < size).order_by(entries.c.idx)
    if outlet is not None:
        q = q.where(entries.c.outlet == outlet)
    if from_ is not None:
        q = q.where(entries.c.time >= _start(from_))
    if to is not None:
        q = q.where(entries.c.time < _end(to))
    (out / "proofs").mkdir()
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    with open(out / "entries.jsonl", "wb") as ef, open(out / "indexes", "w") as xf:
        for start in range(0, len(rows), 1000):
            with engine.connect() as conn:
                proofs = [store.inclusion_proof(conn, r.idx, size) for r in rows[start:start + 1000]]
            for (idx, leaf), hashes in zip(rows[start : start + 1000], proofs, strict=True):
                ef.write(bytes(leaf) + b"\n")
                xf.write(f"{idx}\n")
                proof = TlogProof(idx, hashes, cp_text, bytes(leaf)).encode()
                (out / "proofs" / f"{idx}.tlog-proof").write_bytes(proof)
    return len(rows)


def _start(d: date | datetime) -> datetime:
    return d if isinstance(d, datetime) else datetime.combine(d, time.min)


def _end(d: date | datetime) -> datetime:
    """``to`` is inclusive for a date (the whole day), exclusive for a datetime."""
    if isinstance(d, datetime):
        return d
    return datetime.combine(date.fromordinal(d.toordinal() + 1), time.min)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in name)


def _write_evidence(out: Path, evidence: Iterable[tuple[str, str | os.PathLike[str]]]) -> int:
    lines = []
    for rel, src in evidence:
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise AuditError(f"evidence path {rel!r} must be relative and stay inside evidence/")
        dest = out / "evidence" / p
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        lines.append(f"{sha256_file(dest)}  evidence/{p}\n")
    (out / "manifest").write_text("".join(lines), encoding="utf-8")
    return len(lines)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
