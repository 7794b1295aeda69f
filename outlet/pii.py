"""Personal data that a page must show again, kept sealed at rest: a home-visit contact's
phone, an anonymous rater's call-back number (issue 11 §1, issue 12 §1). The applicant
table (``outlet.models.Applicant``) is the other place PII lives; there as here, pages show
it masked, and no log line or audit leaf ever carries it (leaves take keyed pseudonyms).

Sealing is AES-256-GCM (pyca/cryptography) with a 96-bit random nonce; the key is derived
with HKDF-SHA256 from the deployment's ``$DATA/keys/pii.key`` (``Settings.pii_key``), and
the column's name is the associated data, so a sealed value copied into another column does
not open. Stored text: ``"pii1:" + base64url(nonce ‖ ciphertext ‖ tag)`` — the prefix tells
a sealed value from a legacy clear one (read as is until :func:`seal_legacy`, a startup step,
seals it).

The key belongs in the backup with ``audit.key``: without it the sealed values are lost.
:func:`key_problem` is the startup check (``web.app.check_pii_key``): a missing key while
sealed values exist, or a key that does not open them, is said in words, and a missing key is
then not replaced by a new one (that would seal new values under a key the restored one
cannot open).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.engine import Engine

PREFIX = "pii1:"
SEALED_MAX = 128  # column width for a sealed phone number (≤ 32 characters in clear)


#: Every sealed column, as ``table.column`` — also the associated data of its values.
SEALED_COLUMNS = ("home_visit.contact_phone", "rating.contact_phone")

KEY_MISSING = ("个人信息密钥文件 pii.key 缺失：加密保存的电话号码无法显示。请从备份恢复 $DATA/keys/pii.key"
               "（与 audit.key 一同备份）后重启服务，或联系系统管理员。")
KEY_WRONG = ("个人信息密钥 pii.key 与数据库中加密保存的数据不符（可能换了密钥或恢复了另一台服务器的备份）："
             "电话号码无法显示。请恢复与该数据库同一时期备份的 $DATA/keys/pii.key 后重启服务。")


class PiiError(Exception):
    """A sealed value does not open with this key (wrong key, altered, other column).
    ``message`` is the Chinese explanation a page shows."""

    message = KEY_WRONG


class KeyMissing(PiiError):
    """``$DATA/keys/pii.key`` is not there although sealed values may exist."""

    message = KEY_MISSING


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


def _sealed_sample(engine: Engine, column: str) -> tuple[int, str | None]:
    table, name = column.split(".")
    with engine.connect() as conn:
        count = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE {name} LIKE 'pii1:%'")).scalar_one()
        sample = conn.execute(text(f"SELECT {name} FROM {table} WHERE {name} LIKE 'pii1:%' LIMIT 1")).scalar()
    return int(count), sample


def key_problem(engine: Engine, key: bytes | None, columns: Iterable[str] = SEALED_COLUMNS) -> str | None:
    """The startup check: None when ``key`` (None: the key file is missing) opens the sealed
    values in the database, else what is wrong (:data:`KEY_MISSING` / :data:`KEY_WRONG`,
    with how many values are affected)."""
    total, broken = 0, 0
    for column in columns:
        count, sample = _sealed_sample(engine, column)
        total += count
        if sample is not None and key is not None:
            try:
                unseal(key, sample, column=column)
            except PiiError:
                broken += count
    if total and key is None:
        return f"{KEY_MISSING}（受影响：{total} 条）"
    if broken:
        return f"{KEY_WRONG}（受影响：{broken} 条）"
    return None


def seal_legacy(engine: Engine, key: bytes, columns: Iterable[str] = SEALED_COLUMNS) -> int:
    """Seal the values stored in clear before sealing was introduced (a startup step; idempotent:
    sealed values are left alone). Returns how many were sealed."""
    sealed = 0
    for column in columns:
        table, name = column.split(".")
        with engine.begin() as conn:
            rows = conn.execute(text(
                f"SELECT id, {name} FROM {table} WHERE {name} IS NOT NULL AND {name} <> '' "
                f"AND {name} NOT LIKE 'pii1:%'")).all()
            for row_id, clear in rows:
                conn.execute(text(f"UPDATE {table} SET {name} = :v WHERE id = :id AND {name} = :old"),
                             {"v": seal(key, clear, column=column), "id": row_id, "old": clear})
            sealed += len(rows)
    return sealed
