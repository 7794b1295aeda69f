"""Personal data that a page must show again, kept sealed at rest: a home-visit contact's
phone, an anonymous rater's call-back number (issue 11 §1, issue 12 §1). The applicant
table (``outlet.models.Applicant``) is the other place PII lives; there as here, pages show
it masked, and no log line or audit leaf ever carries it (leaves take keyed pseudonyms).

Sealing is AES-256-GCM (pyca/cryptography) with a 96-bit random nonce; the key is derived
with HKDF-SHA256 from the deployment's ``$DATA/keys/pii.key`` (``Settings.pii_key``), and
the column's name is the associated data, so a sealed value copied into another column does
not open. Stored text: ``"pii1:" + base64url(nonce ‖ ciphertext ‖ tag)`` — the prefix tells
a sealed value from a legacy clear one (read as is; written sealed from now on).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "pii1:"
SEALED_MAX = 128  # column width for a sealed phone number (≤ 32 characters in clear)


class PiiError(Exception):
    """A sealed value does not open with this key (wrong key, altered, other column)."""


def _aead(key: bytes) -> AESGCM:
    if len(key) < 16:
        raise ValueError("pii key must have at least 16 bytes")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"servicepoint pii v1").derive(key)
    return AESGCM(derived)


def seal(key: bytes, text: str, *, column: str) -> str:
    """Seal ``text`` for ``column`` (e.g. ``"home_visit.contact_phone"``); "" stays ""."""
    if not text:
        return ""
    nonce = os.urandom(12)
    body = _aead(key).encrypt(nonce, text.encode("utf-8"), column.encode("ascii"))
    return PREFIX + base64.urlsafe_b64encode(nonce + body).decode("ascii")


def unseal(key: bytes, stored: str | None, *, column: str) -> str:
    """The clear text of a stored value ("" for none; a legacy clear value as is).
    Raises :class:`PiiError` when a sealed value does not open."""
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        return stored
    try:
        raw = base64.urlsafe_b64decode(stored[len(PREFIX):].encode("ascii"))
        return _aead(key).decrypt(raw[:12], raw[12:], column.encode("ascii")).decode("utf-8")
    except (InvalidTag, ValueError) as exc:
        raise PiiError(f"sealed value of {column} does not open") from exc


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(PREFIX)


def mask_phone(phone: str | None) -> str:
    """``139****1111``: a phone number as list pages show it."""
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 7 else ("****" if phone else "")
