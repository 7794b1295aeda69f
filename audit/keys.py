"""Signing keys: load from a file or the environment (never from the database), keygen,
and the list of public vkeys (current and retired) that the app serves."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .errors import KeyFileError
from .note import ALG_COSIGNATURE_V1, ALG_ED25519, Signer, Verifier

log = logging.getLogger(__name__)
KEY_ENV = "SERVICEPOINT_AUDIT_KEY"
KEY_FILE_ENV = "SERVICEPOINT_AUDIT_KEY_FILE"


def load_signer(path: str | os.PathLike[str] | None = None, *, env: str = KEY_ENV) -> Signer:
    """The signer key from ``path`` (a PRIVATE+KEY file) or, if no path, from ``env``."""
    if path is not None:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            skey = p.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read signer key file {p}: {exc.__class__.__name__}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("signer key file %s is readable by group or others; chmod 600 it", p)
        where = str(p)
    else:
        skey = os.environ.get(env, "")
        if not skey:
            raise KeyFileError(f"no signer key: give a key file or set {env}")
        where = f"${env}"
    try:
        return Signer.from_skey(skey)
    except KeyFileError as exc:
        raise KeyFileError(f"{where}: {exc}") from None


def keygen(path: str | os.PathLike[str], name: str, *, witness: bool = False) -> str:
    """Write a new signer key to ``path`` (mode 0600, never overwrites) and return its
    vkey. ``name`` is the log origin, or the witness name when ``witness`` is true."""
    signer = Signer.generate(name, ALG_COSIGNATURE_V1 if witness else ALG_ED25519)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{p} exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.skey() + "\n")
    return signer.vkey


@dataclass(frozen=True)
class KeyInfo:
    """A log verifier key and the dates it signs (informational for operators: offline
    verifiers trust every ``log`` key of their policy)."""

    vkey: str
    valid_from: date | None = None
    valid_to: date | None = None

    def line(self) -> str:
        parts = [self.vkey]
        if self.valid_from:
            parts.append(f"valid-from={self.valid_from.isoformat()}")
        if self.valid_to:
            parts.append(f"valid-to={self.valid_to.isoformat()}")
        return " ".join(parts)

    def active(self, on: date) -> bool:
        return (self.valid_from is None or self.valid_from <= on) and (
            self.valid_to is None or on <= self.valid_to
        )


def load_keyring(path: str | os.PathLike[str]) -> list[KeyInfo]:
    """Parse a keys file: ``<vkey> [valid-from=YYYY-MM-DD] [valid-to=YYYY-MM-DD]`` lines."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        Verifier.from_vkey(words[0])
        dates: dict[str, date] = {}
        for w in words[1:]:
            k, sep, v = w.partition("=")
            if not sep or k not in ("valid-from", "valid-to"):
                raise KeyFileError(f"{path} line {n}: unknown field {w!r}")
            try:
                dates[k] = date.fromisoformat(v)
            except ValueError:
                raise KeyFileError(f"{path} line {n}: bad date {v!r}") from None
        out.append(KeyInfo(words[0], dates.get("valid-from"), dates.get("valid-to")))
    return out


def public_keys(signers: list[Signer], keyring: list[KeyInfo] | None = None) -> list[KeyInfo]:
    """Current signers' vkeys first, then retired ones from the keyring, deduplicated."""
    seen: set[str] = set()
    out: list[KeyInfo] = []
    ring = {k.vkey: k for k in keyring or []}
    for s in signers:
        out.append(ring.get(s.vkey, KeyInfo(s.vkey)))
        seen.add(s.vkey)
    out.extend(k for k in keyring or [] if k.vkey not in seen)
    return out


def public_keys_text(keys: list[KeyInfo]) -> str:
    """What ``/audit/keys`` serves (text/plain): one vkey per line with its dates."""
    return "".join(k.line() + "\n" for k in keys)
