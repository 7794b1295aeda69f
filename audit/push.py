"""Log side of C2SP tlog-witness: push checkpoints, store cosignatures, report status.

A witness that is down never blocks signing: failures are recorded and retried with
exponential backoff on later ticks."""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from . import store
from .errors import AuditError, FormatError, WitnessError
from .log import Cosignature, add_cosignatures, latest_checkpoint, utcnow
from .models import checkpoints, witness_push
from .note import ALG_COSIGNATURE_V1, Verifier, parse_note, verify_cosignature

if TYPE_CHECKING:
    from .log import Checkpointer, StoredCheckpoint

log = logging.getLogger(__name__)
BACKOFF_BASE = 5.0
BACKOFF_MAX = 900.0

_SIZE_BODY = re.compile(rb"(0|[1-9][0-9]{0,18})\n")


@dataclass(frozen=True)
class WitnessConfig:
    """A witness the log pushes to: its submission prefix URL and its cosigner vkey.
    ``name`` (used in policies and status) defaults to the vkey's key name."""

    url: str
    vkey: str
    name: str = ""

    def __post_init__(self) -> None:
        v = Verifier.from_vkey(self.vkey)
        if v.alg != ALG_COSIGNATURE_V1:
            raise FormatError(f"witness {self.vkey}: not a cosignature/v1 (0x04) key")
        if not self.name:
            object.__setattr__(self, "name", v.name)

    @property
    def verifier(self) -> Verifier:
        return Verifier.from_vkey(self.vkey)


@dataclass(frozen=True)
class WitnessStatus:
    name: str
    url: str
    last_cosigned_size: int
    lag_entries: int
    lag_seconds: float
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    failures: int
    next_attempt_at: datetime | None


def push_all(cp: Checkpointer, engine: Engine) -> None:
    now = _utc(cp.clock())
    with engine.connect() as conn:
        latest = latest_checkpoint(conn)
        rows = {r.name: r for r in conn.execute(select(witness_push))}
    if latest is None:
        return
    for w in cp.witnesses:
        row = rows.get(w.name)
        if row is None:
            with engine.begin() as conn:
                conn.execute(insert(witness_push).values(name=w.name, url=w.url, last_size=0,
                                                         failures=0))  # fmt: skip
            last_size, last_cp, due = 0, None, True
        else:
            last_size, last_cp = row.last_size, row.last_checkpoint_id
            due = row.next_attempt_at is None or row.next_attempt_at <= now
        if last_cp == latest.id or not due:
            continue
        try:
            cosigs, size = _push_one(cp, engine, w, latest, last_size)
        except (AuditError, httpx.HTTPError) as exc:
            _failed(engine, w, row.failures if row is not None else 0, now, exc)
            continue
        with engine.begin() as conn:
            add_cosignatures(conn, latest.id, cosigs)
            conn.execute(
                update(witness_push).where(witness_push.c.name == w.name).values(
                    url=w.url, last_size=size, last_checkpoint_id=latest.id,
                    last_success_at=now, last_attempt_at=now, last_error=None,
                    failures=0, next_attempt_at=None,
                )
            )  # fmt: skip


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _failed(engine: Engine, w: WitnessConfig, failures: int, now: datetime, exc: Exception) -> None:
    failures += 1
    delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
    msg = f"{exc.__class__.__name__}: {exc}"[:500]
    log.warning("audit: witness %s: %s (retry in %.0fs)", w.name, msg, delay)
    with engine.begin() as conn:
        conn.execute(
            update(witness_push).where(witness_push.c.name == w.name).values(
                url=w.url, last_attempt_at=now, last_error=msg, failures=failures,
                next_attempt_at=now + timedelta(seconds=delay),
            )
        )  # fmt: skip


def add_checkpoint_body(old: int, proof: list[bytes], checkpoint: bytes) -> bytes:
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return "".join(lines).encode() + b"\n" + checkpoint


def _push_one(
    cp: Checkpointer, engine: Engine, w: WitnessConfig, latest: StoredCheckpoint, old: int
) -> tuple[list[Cosignature], int]:
    for _attempt in range(2):
        if old > latest.size:
            raise WitnessError(
                f"witness has cosigned size {old}, larger than the log's {latest.size}: "
                "the database may have been restored from a backup"
            )
        with engine.connect() as conn:
            proof = store.consistency_proof(conn, old, latest.size)
        body = add_checkpoint_body(old, proof, latest.note)
        resp = cp.http.post(w.url.rstrip("/") + "/add-checkpoint", content=body)
        if resp.status_code == 200:
            return _parse_cosignatures(w, latest, resp.content), latest.size
        if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(
            "text/x.tlog.size"
        ):
            # tlog-witness: "the tree size of the latest cosigned checkpoint in decimal,
            # followed by a newline" — ASCII, no leading zeros, below 2**63.
            if not _SIZE_BODY.fullmatch(resp.content):
                raise WitnessError(f"409 with an unparsable size {resp.content[:40]!r}")
            old = int(resp.content)
            continue  # retry once from the size the witness last saw
        raise WitnessError(f"HTTP {resp.status_code}: {resp.text.strip()[:200]}")
    raise WitnessError("witness keeps answering 409 Conflict")


def _parse_cosignatures(w: WitnessConfig, cp: StoredCheckpoint, body: bytes) -> list[Cosignature]:
    note = parse_note(cp.note + body)  # concatenate, as tlog-witness suggests
    v = w.verifier
    out = []
    for sig in note.signatures[-len(body.splitlines()) :]:
        if (sig.name, sig.key_id) != (v.name, v.key_id):
            continue  # ignore cosignatures from keys we do not know
        ts = verify_cosignature(v, note.text, sig)
        if ts is None:
            raise WitnessError("witness returned a cosignature that does not verify")
        out.append(Cosignature(w.name, sig.line(), ts))
    if not out:
        raise WitnessError("witness returned no cosignature from its configured key")
    return out[:1]


def witness_status(conn_or_session: Any, witnesses: list[WitnessConfig] | None = None,
                   now: datetime | None = None) -> list[WitnessStatus]:  # fmt: skip
    """Per-witness status for the UI: last cosigned size, lag in entries and seconds,
    last error. ``witnesses`` adds configured witnesses that were never pushed to."""
    conn: Connection = (
        conn_or_session.connection() if hasattr(conn_or_session, "connection") and not
        isinstance(conn_or_session, Connection) else conn_or_session
    )  # fmt: skip
    now = now or utcnow()
    latest = latest_checkpoint(conn)
    size = latest.size if latest else 0
    rows = {r.name: r for r in conn.execute(select(witness_push))}
    names = list(rows) + [w.name for w in witnesses or [] if w.name not in rows]
    urls = {w.name: w.url for w in witnesses or []}
    out = []
    for name in names:
        r = rows.get(name)
        last = r.last_size if r else 0
        lag_s = 0.0
        if last < size:
            first = conn.execute(
                select(checkpoints.c.created_at).where(checkpoints.c.size > last)
                .order_by(checkpoints.c.id).limit(1)
            ).scalar()  # fmt: skip
            lag_s = max(0.0, (now - first).total_seconds()) if first else 0.0
        out.append(WitnessStatus(
            name, r.url if r else urls.get(name, ""), last, size - last, lag_s,
            r.last_success_at if r else None, r.last_attempt_at if r else None,
            r.last_error if r else "never contacted", r.failures if r else 0,
            r.next_attempt_at if r else None,
        ))  # fmt: skip
    return out
