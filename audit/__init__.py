"""servicepoint's audit log: a transparency log speaking RFC 6962 and the C2SP formats
(signed-note, tlog-checkpoint, tlog-cosignature, tlog-witness, tlog-proof, tlog-policy).

Imports nothing from the rest of the project, so an auditor can install it alone."""

from __future__ import annotations

from .entry import leaf_bytes, pseudonym
from .errors import AuditError
from .export import ExportResult, export
from .keys import KeyInfo, keygen, load_keyring, load_signer, public_keys_text
from .log import Checkpointer, StoredCheckpoint
from .models import create_tables
from .note import Signer, Verifier
from .policy import Policy
from .proof import prove
from .push import WitnessConfig, WitnessStatus, witness_status
from .query import EntryView, Page, get_entry, list_checkpoints, search_entries
from .store import record
from .verify import verify

__all__ = [
    "AuditError", "Checkpointer", "EntryView", "ExportResult", "KeyInfo", "Page", "Policy",
    "Signer", "StoredCheckpoint", "Verifier", "WitnessConfig", "WitnessStatus",
    "create_tables", "export", "get_entry", "keygen", "leaf_bytes", "list_checkpoints",
    "load_keyring", "load_signer", "prove", "pseudonym", "public_keys_text", "record",
    "search_entries", "verify", "witness_status",
]  # fmt: skip
