"""Errors raised by the audit log. Every verification failure is a subclass of AuditError
that names what failed and where; callers catch AuditError."""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error raised by ``audit``."""


# --- writing entries -------------------------------------------------------------------
class EntryError(AuditError):
    """An entry passed to ``record`` has the wrong shape, an unknown key or PII."""


class LogStateError(AuditError):
    """The stored log is not in a state that allows the operation (e.g. the tree would
    shrink, an index is missing, no checkpoint has been signed yet)."""


class KeyFileError(AuditError):
    """A signer key or verifier key could not be loaded or parsed."""


# --- formats ---------------------------------------------------------------------------
class FormatError(AuditError):
    """A note, checkpoint, proof, policy or export file is malformed."""


class PolicyError(FormatError):
    """A tlog-policy file is malformed."""


# --- verification ----------------------------------------------------------------------
class VerificationError(AuditError):
    """Offline verification failed. Subclasses say which check."""


class UnknownKeyError(VerificationError):
    """No signature on the checkpoint comes from a key the policy trusts."""


class BadSignatureError(VerificationError):
    """A signature from a trusted log key does not verify (forged or damaged)."""


class BadCosignatureError(VerificationError):
    """A cosignature from a trusted witness key does not verify."""


class QuorumError(VerificationError):
    """The checkpoint lacks the witness cosignatures the policy's quorum requires."""


class InclusionError(VerificationError):
    """An entry or proof does not match the tree committed to by the checkpoint."""


class EntryModifiedError(InclusionError):
    """An entry's bytes differ from what the log committed to."""


class EntryDeletedError(InclusionError):
    """An entry the log committed to is missing from the export."""


class EntryInsertedError(InclusionError):
    """The export has an entry the log never committed to."""


class EntriesReorderedError(InclusionError):
    """Entries are present but not in log order."""


class TruncatedLogError(InclusionError):
    """The export ends before the checkpoint's tree size."""


class ConsistencyError(VerificationError):
    """Two checkpoints signed by the log are inconsistent (a fork), or a consistency
    proof does not verify."""


class EvidenceError(VerificationError):
    """An evidence file is missing or its SHA-256 differs from the log."""


class WitnessError(AuditError):
    """A witness rejected or failed to cosign a checkpoint."""
