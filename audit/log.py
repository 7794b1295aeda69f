"""The checkpointer: integrates entries, signs C2SP checkpoints, pushes them to witnesses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from . import merkle, store
from .checkpoint import Checkpoint
from .errors import ConsistencyError, KeyFileError, LogStateError
from .keys import KeyInfo, public_keys
from .models import checkpoints, cosignatures
from .note import ALG_ED25519, Signer
from .policy import Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cosignature:
    witness: str
    line: str
    timestamp: int


@dataclass
class StoredCheckpoint:
    id: int
    origin: str
    size: int
    root: bytes
    note: bytes  # log signatures only
    created_at: datetime
    cosignatures: list[Cosignature] = field(default_factory=list)

    def text(self) -> bytes:
        """The checkpoint verbatim, with every stored cosignature appended."""
        return self.note + "".join(c.line for c in self.cosignatures).encode()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _load(conn: Connection, rows: Sequence[Any]) -> list[StoredCheckpoint]:
    cps = [StoredCheckpoint(r.id, r.origin, r.size, bytes(r.root), bytes(r.note), r.created_at)
           for r in rows]  # fmt: skip
    if cps:
        by_id = {c.id: c for c in cps}
        q = (
            select(cosignatures)
            .where(cosignatures.c.checkpoint_id.in_(list(by_id)))
            .order_by(cosignatures.c.witness)
        )
        for r in conn.execute(q):
            by_id[r.checkpoint_id].cosignatures.append(Cosignature(r.witness, r.line, r.timestamp))
    return cps


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    q = select(checkpoints).order_by(checkpoints.c.id.desc()).limit(1)
    got = _load(conn, conn.execute(q).all())
    return got[0] if got else None


def get_checkpoint(conn: Connection, checkpoint_id: int) -> StoredCheckpoint | None:
    got = _load(conn, conn.execute(select(checkpoints).where(checkpoints.c.id == checkpoint_id)).all())
    return got[0] if got else None


def recent_checkpoints(
    conn: Connection, limit: int = 50, before_id: int | None = None
) -> list[StoredCheckpoint]:
    q = select(checkpoints).order_by(checkpoints.c.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(checkpoints.c.id < before_id)
    return _load(conn, conn.execute(q).all())


def add_cosignatures(conn: Connection, checkpoint_id: int, cosigs: Sequence[Cosignature]) -> None:
    have = {
        r.witness
        for r in conn.execute(
            select(cosignatures.c.witness).where(cosignatures.c.checkpoint_id == checkpoint_id)
        )
    }
    new = [c for c in cosigs if c.witness not in have]
    if new:
        conn.execute(
            insert(cosignatures),
            [{"checkpoint_id": checkpoint_id, "witness": c.witness, "line": c.line,
              "timestamp": c.timestamp} for c in new],
        )  # fmt: skip


class Checkpointer:
    """Signs checkpoints for the log ``origin`` with ``signers`` (all of them sign every
    checkpoint, which is how keys are rotated) and pushes them to ``witnesses``.

    Construct once in the app's lifespan; pass the engine to each call."""

    def __init__(
        self,
        origin: str,
        signers: Sequence[Signer],
        witnesses: Sequence[Any] = (),
        *,
        keyring: Sequence[KeyInfo] = (),
        http_client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        batch: int = store.DEFAULT_BATCH,
    ) -> None:
        if not signers:
            raise KeyFileError("a checkpointer needs at least one signer key")
        for s in signers:
            if s.name != origin or s.alg != ALG_ED25519:
                raise KeyFileError(
                    f"signer {s.vkey} must be an Ed25519 key named after the origin {origin!r}"
                )
        self.origin = origin
        self.signers = list(signers)
        self.witnesses = list(witnesses)  # push.WitnessConfig
        self.keyring = list(keyring)
        self.clock = clock
        self.batch = batch
        self._http = http_client

    def __repr__(self) -> str:
        return f"Checkpointer({self.origin!r}, {len(self.signers)} signer(s))"

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=10.0)
        return self._http

    def public_keys(self) -> list[KeyInfo]:
        """Current and retired log vkeys (the app serves these at /audit/keys)."""
        return public_keys(self.signers, self.keyring)

    def vkeys(self) -> list[str]:
        return [k.vkey for k in self.public_keys()]

    def policy(self, quorum: str | int = "none") -> Policy:
        """A C2SP tlog-policy trusting this log's keys and its configured witnesses."""
        return Policy.build(self.vkeys(), {w.name: w.vkey for w in self.witnesses}, quorum)

    def sign_checkpoint(self, engine: Engine, *, force: bool = False) -> StoredCheckpoint:
        """Integrate new entries and sign a checkpoint for them. Returns the latest
        checkpoint unchanged when nothing is new (unless ``force``). Refuses to sign a
        checkpoint that is not consistent with the last stored one."""
        store.integrate(engine, self.batch)
        with engine.begin() as conn:
            size = store.lock_tree(conn)  # one signer at a time
            last = latest_checkpoint(conn)
            if last is not None and last.size == size and not force:
                return last
            root = store.root(conn, size)
            if last is not None:
                self._check_consistent(conn, last, size, root)
            note = Checkpoint(self.origin, size, root).sign(self.signers)
            now = datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)
            inserted = conn.execute(
                insert(checkpoints).values(
                    origin=self.origin, size=size, root=root, note=note, created_at=now
                )
            ).inserted_primary_key
            assert inserted is not None
            cp_id = inserted[0]
        log.info("audit: signed checkpoint %s size %d", cp_id, size)
        return StoredCheckpoint(cp_id, self.origin, size, root, note, now)

    def _check_consistent(
        self, conn: Connection, last: StoredCheckpoint, size: int, root: bytes
    ) -> None:
        if last.origin != self.origin:
            raise LogStateError(
                f"last checkpoint is for origin {last.origin!r}, not {self.origin!r}"
            )
        if last.size > size:
            raise LogStateError(
                f"refusing to sign: tree has {size} entries but checkpoint {last.id} "
                f"already committed to {last.size} (database restored from a backup?)"
            )
        proof = store.consistency_proof(conn, last.size, size)
        try:
            merkle.verify_consistency(last.size, size, proof, last.root, root)
        except ConsistencyError as exc:
            raise ConsistencyError(
                f"refusing to sign: tree of size {size} is inconsistent with "
                f"checkpoint {last.id} (size {last.size}): {exc}"
            ) from exc

    def push(self, engine: Engine) -> None:
        """Push the latest checkpoint to every witness that is due (see push.py)."""
        from .push import push_all

        push_all(self, engine)

    def tick(self, engine: Engine) -> StoredCheckpoint | None:
        """One round of the loop: sign if there are new entries, then push."""
        signed = None
        with engine.connect() as conn:
            last = latest_checkpoint(conn)
            pending = store.entry_count(conn) > (last.size if last else -1)
        if pending:
            signed = self.sign_checkpoint(engine)
        if self.witnesses:
            self.push(engine)
        return signed

    async def sign_now(self, engine: Engine) -> StoredCheckpoint:
        """On-demand signing from async code (DB work runs in a worker thread)."""
        cp = await asyncio.to_thread(self.sign_checkpoint, engine)
        if self.witnesses:
            await asyncio.to_thread(self.push, engine)
        return cp

    async def run(self, engine: Engine, interval: float = 10.0) -> None:
        """Sign every ``interval`` seconds when there are new entries; retry witnesses.
        Run it as a task from the app's lifespan and cancel it on shutdown."""
        while True:
            try:
                await asyncio.to_thread(self.tick, engine)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive; never log key material
                log.error("audit checkpointer: %s: %s", exc.__class__.__name__, exc)
            await asyncio.sleep(interval)
