"""A C2SP tlog-witness server (Starlette app factory) with its own Ed25519 cosigner key
and its own state in a small SQLite file.

Follows c2sp.org/tlog-witness as of C2SP commit 95978ca (2026-07-06, "clarify size zero
and size match handling"): a checkpoint of the size the witness last cosigned but with a
different root, a size-0 checkpoint whose root is not the empty tree's, and a non-empty
proof from size 0 are all 422 (no longer 409)."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import merkle
from .checkpoint import Checkpoint
from .errors import ConsistencyError, FormatError, KeyFileError
from .keys import load_signer
from .note import ALG_COSIGNATURE_V1, ALG_ED25519, Signer, Verifier, cosign, parse_note

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # bytes of one add-checkpoint request, counted while reading
MAX_PROOF_LINES = 63  # tlog-witness: "The client MUST NOT send more than 63 proof lines"
MAX_SIZE = 2**63 - 1  # tree sizes are below 2**63 (Go: tlog.ParseTree, strconv.ParseInt)
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """Cosigns checkpoints of trusted logs after checking consistency with the last size
    it cosigned for that origin. ``trust``: (origin, log vkey) pairs."""

    def __init__(
        self,
        signer: Signer,
        trust: Iterable[tuple[str, str]],
        state_path: str | os.PathLike[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signer.alg != ALG_COSIGNATURE_V1:
            raise KeyFileError("a witness needs a cosignature/v1 (type 0x04) key")
        self.signer = signer
        self.clock = clock
        self.trusted: dict[str, list[Verifier]] = {}
        for origin, vkey in trust:
            v = Verifier.from_vkey(vkey)
            if v.alg != ALG_ED25519:
                raise KeyFileError(f"trusted log key {vkey} is not an Ed25519 note key")
            self.trusted.setdefault(origin, []).append(v)
        self.state_path = str(state_path)
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS witness_logs "
                "(origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL)"
            )

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.state_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def seen(self, origin: str) -> tuple[int, bytes | None]:
        with self._db() as db:
            row = db.execute(
                "SELECT size, root FROM witness_logs WHERE origin = ?", (origin,)
            ).fetchone()
        return (row[0], bytes(row[1])) if row else (0, None)

    def add_checkpoint(self, body: bytes) -> Answer:
        """POST /add-checkpoint, with the status codes of C2SP tlog-witness."""
        # 1. Parse the request: old size line, proof lines, blank line, checkpoint.
        try:
            old, proof, cp_bytes = _parse_request(body)
            note = parse_note(cp_bytes)
            cp = Checkpoint.parse_body(note.text)
        except FormatError as exc:
            return Answer(400, f"malformed request: {exc}\n".encode())
        # 2. Unknown origin: 404.
        keys = self.trusted.get(cp.origin)
        if keys is None:
            return Answer(404, b"unknown log origin\n")
        # 3. A signature from a trusted key must verify; unknown keys are ignored: 403.
        ok = False
        for sig in note.signatures:
            for v in keys:
                if (v.name, v.key_id) == (sig.name, sig.key_id):
                    if not v.verify(note.text.encode(), sig.sig):
                        return Answer(403, b"invalid log signature\n")
                    ok = True
        if not ok:
            return Answer(403, b"no signature from a trusted log key\n")
        # 4. Old size must not exceed the checkpoint size: 400.
        if old > cp.size:
            return Answer(400, b"old size is larger than the checkpoint size\n")
        # 5.-8. Check against the recorded state and record the new size atomically.
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT size, root FROM witness_logs WHERE origin = ?", (cp.origin,)
            ).fetchone()
            seen_size, seen_root = (row[0], bytes(row[1])) if row else (0, merkle.EMPTY_ROOT)
            # 5. Old size must be the size last cosigned (0 if never): 409 with that size.
            if old != seen_size:
                db.execute("ROLLBACK")
                return Answer(409, f"{seen_size}\n".encode(), "text/x.tlog.size")
            # 6. A size-0 checkpoint must have the empty tree's root (RFC 6962 §2.1): 422.
            if cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
                db.execute("ROLLBACK")
                return Answer(422, b"a checkpoint of size 0 must have the empty tree's root\n")
            # 7. Same size, different root: 422 (since 2026-07-06; was 409).
            if old == cp.size and seen_root != cp.root:
                db.execute("ROLLBACK")
                log.warning("witness: %s signed two roots for size %d", cp.origin, cp.size)
                return Answer(422, b"checkpoint has the size last cosigned but a different root\n")
            # 8. From size 0 the proof must be empty; otherwise it must verify: 422.
            try:
                merkle.verify_consistency(old, cp.size, proof, seen_root, cp.root)
            except ConsistencyError as exc:
                db.execute("ROLLBACK")
                log.warning("witness: inconsistent checkpoint from %s: %s", cp.origin, exc)
                return Answer(422, f"consistency proof does not verify: {exc}\n".encode())
            db.execute(
                "INSERT INTO witness_logs (origin, size, root) VALUES (?, ?, ?) "
                "ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root",
                (cp.origin, cp.size, cp.root),
            )
            db.execute("COMMIT")
        finally:
            db.close()
        # 9. Cosign (tlog-cosignature/v1; the timestamp MUST NOT be zero) and answer.
        timestamp = int(self.clock())
        if not 0 < timestamp <= MAX_SIZE:
            return Answer(500, b"witness clock is not a positive POSIX time below 2^63\n")
        sig = cosign(self.signer, note.text, timestamp)
        return Answer(200, sig.line().encode())


def _parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    if len(body) > MAX_BODY:
        raise FormatError("request body too large")
    head, sep, checkpoint = body.partition(b"\n\n")
    if not sep:
        raise FormatError("no blank line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise FormatError("request head is not ASCII") from None
    m = _OLD.fullmatch(lines[0])
    if not m:
        raise FormatError("first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise FormatError("too many consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise FormatError("consistency proof line is not base64") from None
        if len(h) != 32:
            raise FormatError("consistency proof hash is not 32 bytes")
        proof.append(h)
    return int(m.group(1)), proof, checkpoint


def create_app(witness: Witness, prefix: str = "") -> Starlette:
    """The witness HTTP app: ``POST {prefix}/add-checkpoint``."""

    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():  # bounded while reading, not after
            body += chunk
            if len(body) > MAX_BODY:
                return Response(b"request body too large\n", 413,
                                headers={"content-type": "text/plain; charset=utf-8"})
        ans = await anyio.to_thread.run_sync(witness.add_checkpoint, bytes(body))
        # Headers set directly: Starlette would append "; charset" to a text/ media type.
        return Response(ans.body, ans.status, headers={"content-type": ans.content_type})

    return Starlette(
        routes=[Route(prefix.rstrip("/") + "/add-checkpoint", add_checkpoint, methods=["POST"])]
    )


def create_witness_app(
    key_file: str | os.PathLike[str],
    state_file: str | os.PathLike[str],
    trust: Iterable[tuple[str, str]],
    prefix: str = "",
) -> Starlette:
    """App factory for ``uvicorn --factory`` style use and the ``witness`` CLI."""
    return create_app(Witness(load_signer(key_file), trust, state_file), prefix)
