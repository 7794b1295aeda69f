"""C2SP tlog-checkpoint bodies, and opening a signed checkpoint under a tlog-policy."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from .errors import (
    BadCosignatureError,
    BadSignatureError,
    FormatError,
    QuorumError,
    UnknownKeyError,
)
from .note import Note, NoteSignature, Signer, parse_note, sign_note, verify_cosignature
from .policy import Policy

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
# Go's tlog.ParseTree reads the size with strconv.ParseInt(s, 10, 64): at most 2**63 - 1.
MAX_TREE_SIZE = 2**63 - 1
MAX_BODY_BYTES = 1_000_000  # tlog.ParseTree: len(text) > 1e6 is malformed


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """tlog-checkpoint §Note text: origin, size, root hash, extension lines.

        Bounds as in Go's ``tlog.ParseTree``: size a decimal without leading zeros below
        2**63, root exactly 32 bytes (SHA-256), body at most 1,000,000 bytes."""
        if len(text) > MAX_BODY_BYTES:
            raise FormatError(f"checkpoint body is larger than {MAX_BODY_BYTES} bytes")
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise FormatError("checkpoint body needs origin, size and root hash lines")
        origin, size, root_b64, *ext = lines[:-1]
        if not origin:
            raise FormatError("checkpoint origin is empty")
        if not _SIZE.fullmatch(size) or int(size) > MAX_TREE_SIZE:
            raise FormatError(
                f"checkpoint tree size {size[:40]!r} is not a decimal without leading zeros "
                "below 2^63"
            )
        try:
            root = base64.b64decode(root_b64, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise FormatError("checkpoint root hash is not base64") from exc
        if len(root) != 32:
            raise FormatError("checkpoint root hash is not 32 bytes")
        if any(not e for e in ext):
            raise FormatError("checkpoint extension lines must be non-empty")
        return cls(origin, int(size), root, tuple(ext))

    def sign(self, signers: list[Signer]) -> bytes:
        return sign_note(self.body(), signers)


@dataclass
class OpenedCheckpoint:
    """A checkpoint whose log signature and witness quorum verified."""

    checkpoint: Checkpoint
    note: Note
    raw: bytes
    log_key_ids: list[int]
    cosigned: dict[str, int] = field(default_factory=dict)  # witness name -> timestamp


def open_checkpoint(data: bytes, policy: Policy, where: str = "checkpoint") -> OpenedCheckpoint:
    """Verify a signed checkpoint against ``policy``; raise a VerificationError subclass.

    Steps follow C2SP signed-note §Signatures, tlog-checkpoint and tlog-cosignature."""
    # 1. Parse the signed note (signed-note §Format).
    try:
        note = parse_note(data)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from exc
    msg = note.text.encode()
    # 2. Signatures from known log keys MUST verify; unknown keys are ignored.
    verified: list[int] = []
    log_names: set[str] = set()
    for sig in note.signatures:
        for v in policy.logs:
            if (v.name, v.key_id) == (sig.name, sig.key_id):
                if not v.verify(msg, sig.sig):
                    raise BadSignatureError(
                        f"{where}: signature by log key {sig.name}+{sig.key_id:08x} "
                        "does not verify (forged or damaged)"
                    )
                verified.append(sig.key_id)
                log_names.add(v.name)
    # 3. At least one trusted log signature must be present.
    if not verified:
        found = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        trusted = ", ".join(f"{v.name}+{v.key_id:08x}" for v in policy.logs) or "none"
        raise UnknownKeyError(
            f"{where}: no signature from a trusted log key (signed by {found}; "
            f"trusted: {trusted})"
        )
    # 4. Parse the body (tlog-checkpoint §Note text); the key name is the origin.
    try:
        cp = Checkpoint.parse_body(note.text)
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from exc
    if cp.origin not in log_names:
        raise UnknownKeyError(
            f"{where}: origin {cp.origin!r} does not match the log key name "
            f"{', '.join(sorted(log_names))}"
        )
    # 5. Cosignatures from known witness keys MUST verify (tlog-cosignature).
    cosigned = _check_cosignatures(note.signatures, note.text, policy, where)
    # 6. The witnesses that cosigned must satisfy the quorum (tlog-policy).
    if not policy.satisfied(set(cosigned)):
        have = ", ".join(sorted(cosigned)) or "no witness"
        raise QuorumError(
            f"{where}: witness quorum not met: requires {policy.describe_quorum()}, "
            f"cosigned by {have}"
        )
    return OpenedCheckpoint(cp, note, data, verified, cosigned)


def _check_cosignatures(
    sigs: tuple[NoteSignature, ...], body: str, policy: Policy, where: str
) -> dict[str, int]:
    cosigned: dict[str, int] = {}
    for sig in sigs:
        for wname, v in policy.witnesses.items():
            if (v.name, v.key_id) != (sig.name, sig.key_id):
                continue
            ts = verify_cosignature(v, body, sig)
            if ts is None:
                raise BadCosignatureError(
                    f"{where}: cosignature by witness {wname} ({sig.name}+{sig.key_id:08x}) "
                    "does not verify (forged or damaged)"
                )
            cosigned[wname] = ts
    return cosigned
