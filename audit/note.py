"""C2SP signed-note with Ed25519 (type 0x01) and tlog-cosignature/v1 (type 0x04) keys.

Key text formats are those of Go's golang.org/x/mod/sumdb/note:
verifier key ``<name>+<hex key ID>+<base64(type || public key)>`` and signer key
``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import FormatError, KeyFileError

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
DASH = "\u2014 "
# Bounds, as golang.org/x/mod/sumdb/note bounds them: Open refuses a note with more than 100
# signature lines (signed-note: "MUST accept at least up to 16"); key IDs are uint32 written
# as exactly 8 hex digits; an Ed25519 signature is 64 bytes (cosignature/v1: 8 + 64).
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1_000_000  # as Go's tlog.ParseTree bounds a tree note
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def valid_name(name: str) -> bool:
    """signed-note §Format: key names are non-empty UTF-8 without Unicode spaces or '+'
    (Go: ``isValidName``)."""
    if not name or any(c.isspace() or c == "+" for c in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (e.g. a non-UTF-8 byte read opaquely)
        return False
    return True


def _check_name(name: str) -> None:
    if not valid_name(name):
        raise KeyFileError(f"invalid key name {name!r}: must be non-empty UTF-8, no spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    """A public key able to check signature lines of one (name, key ID)."""

    name: str
    key_id: int
    alg: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise KeyFileError(f"malformed verifier key {vkey!r}")
        name, hex_id, b64 = parts
        _check_name(name)
        if not _HEX_ID.fullmatch(hex_id):
            raise KeyFileError(f"malformed verifier key {vkey!r}: key ID is not 8 hex digits")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFileError(f"malformed verifier key {vkey!r}") from exc
        kid = int(hex_id, 16)
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise KeyFileError(f"unsupported verifier key {vkey!r} (Ed25519 types 0x01/0x04 only)")
        if key_id(name, raw[0], raw[1:]) != kid:
            raise KeyFileError(f"verifier key {vkey!r}: key ID does not match the key")
        return cls(name, kid, raw[0], raw[1:])

    @property
    def vkey(self) -> str:
        b64 = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{b64}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        if len(sig) != 64:  # RFC 8032 §5.1.6: an Ed25519 signature is 64 bytes
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig, msg)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 signer (note type 0x01 for logs, 0x04 for witness cosignatures).

    The private key never appears in repr() or str()."""

    def __init__(self, name: str, seed: bytes, alg: int = ALG_ED25519) -> None:
        _check_name(name)
        if len(seed) != 32 or alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise KeyFileError("signer key must be a 32-byte Ed25519 seed of type 0x01 or 0x04")
        self.name = name
        self.alg = alg
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        pub = self._key.public_key().public_bytes_raw()
        self.verifier = Verifier(name, key_id(name, alg, pub), alg, pub)

    def __repr__(self) -> str:
        return f"Signer({self.verifier.vkey!r})"

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw(), alg)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFileError("malformed signer key (expected PRIVATE+KEY+<name>+<id>+<key>)")
        name, hex_id, b64 = parts[2:]
        if not _HEX_ID.fullmatch(hex_id):
            raise KeyFileError("malformed signer key: key ID is not 8 hex digits")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFileError("malformed signer key") from exc
        kid = int(hex_id, 16)
        if len(raw) != 33:
            raise KeyFileError("malformed signer key: wrong key length")
        signer = cls(name, raw[1:], raw[0])
        if signer.verifier.key_id != kid:
            raise KeyFileError("signer key: key ID does not match the key")
        return signer

    def skey(self) -> str:
        """The private key text. Write it only to a 0600 file."""
        seed = self._key.private_bytes_raw()
        b64 = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{b64}"

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    def sign(self, msg: bytes) -> bytes:
        return self._key.sign(msg)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    sig: bytes  # the signature bytes after the 4-byte key ID

    def line(self) -> str:
        b64 = base64.b64encode(struct.pack(">I", self.key_id) + self.sig).decode()
        return f"{DASH}{self.name} {b64}\n"


@dataclass(frozen=True)
class Note:
    text: str  # ends with "\n"
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def sign_note(text: str, signers: list[Signer]) -> bytes:
    """Sign ``text`` (which must end with a newline) with every signer (type 0x01)."""
    _check_text(text)
    sigs = []
    for s in signers:
        if s.alg != ALG_ED25519:
            raise KeyFileError(f"{s.name}: a log must sign with an Ed25519 (0x01) key")
        sigs.append(NoteSignature(s.name, s.verifier.key_id, s.sign(text.encode())))
    return Note(text, tuple(sigs)).encode()


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise FormatError("note text must not contain control characters")


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines (C2SP signed-note §Format).

    Raises :class:`FormatError` for anything malformed, with the same bounds as Go's
    ``note.Open``: at most :data:`MAX_SIGNATURES` lines, valid key names, at least a 4-byte
    key ID and one signature byte per line."""
    if len(data) > MAX_NOTE_BYTES:
        raise FormatError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("note is not valid UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        raise FormatError("note contains a control character other than newline")
    if not s.endswith("\n"):
        raise FormatError("note does not end with a newline")
    # The text is separated from the signatures by the last blank line.
    cut = s.rfind("\n\n")
    if cut < 0:
        raise FormatError("note has no blank line before its signatures")
    text, sig_block = s[: cut + 1], s[cut + 2 :]
    sigs = []
    lines = sig_block.split("\n")[:-1]  # the block ends with "\n" (checked above)
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"note has more than {MAX_SIGNATURES} signatures")
    for line in lines:
        if not line.startswith(DASH):
            raise FormatError(f"malformed signature line {line[:60]!r}")
        name, sep, b64 = line[len(DASH) :].partition(" ")
        if not sep or not valid_name(name) or " " in b64:
            raise FormatError(f"malformed signature line {line[:60]!r}")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
            raise FormatError(f"signature of {name} is not valid base64") from exc
        if len(raw) < 5:
            raise FormatError(f"signature of {name} is too short")
        sigs.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    if not sigs:
        raise FormatError("note has no signatures")
    return Note(text, tuple(sigs))


# --- tlog-cosignature/v1 ---------------------------------------------------------------
def cosignature_message(body: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(signer: Signer, body: str, timestamp: int) -> NoteSignature:
    if signer.alg != ALG_COSIGNATURE_V1:
        raise KeyFileError(f"{signer.name}: cosignatures need a type 0x04 key")
    sig = signer.sign(cosignature_message(body, timestamp))
    return NoteSignature(signer.name, signer.verifier.key_id, struct.pack(">Q", timestamp) + sig)


def verify_cosignature(verifier: Verifier, body: str, sig: NoteSignature) -> int | None:
    """The cosignature's timestamp if it verifies, else None."""
    if len(sig.sig) != 8 + 64:
        return None
    (timestamp,) = struct.unpack(">Q", sig.sig[:8])
    if timestamp >= 1 << 63:
        return None
    if not verifier.verify(cosignature_message(body, timestamp), sig.sig[8:]):
        return None
    return timestamp
