"""C2SP tlog-proof files (``.tlog-proof``): one entry's inclusion in a signed checkpoint.

Our proofs carry the entry's leaf bytes in the ``extra`` line so that a proof file is
self-contained; the verifier hashes them and never trusts them otherwise."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from . import store
from .errors import FormatError, LogStateError
from .log import latest_checkpoint
from .models import entries

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]{0,18})")
MAX_INDEX = 2**63 - 2  # an index is below the tree size, itself below 2**63
MAX_HASHES = 63  # an inclusion proof in a tree of fewer than 2**63 leaves
MAX_EXTRA = 1_000_000


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: list[bytes]
    checkpoint: bytes  # verbatim signed checkpoint with cosignatures
    extra: bytes | None = None

    def encode(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint

    @classmethod
    def parse(cls, data: bytes, where: str = "proof") -> TlogProof:
        """C2SP tlog-proof §Format. Raises :class:`FormatError` (index below 2**63, at most
        63 proof hashes of 32 bytes, standard padded base64)."""
        head, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise FormatError(f"{where}: no blank line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise FormatError(f"{where}: proof lines are not ASCII") from None
        if lines[0] != HEADER:
            raise FormatError(f"{where}: first line is not {HEADER}")
        pos, extra = 1, None
        try:
            if len(lines) > 1 and lines[1].startswith("extra "):
                extra = base64.b64decode(lines[1][6:], validate=True)
                pos = 2
            if len(lines) <= pos or not _INDEX.fullmatch(lines[pos]):
                raise FormatError(f"{where}: missing 'index <n>' line")
            index = int(lines[pos][6:])
            if index > MAX_INDEX:
                raise FormatError(f"{where}: index is not below 2^63 - 1")
            if len(lines) - pos - 1 > MAX_HASHES:
                raise FormatError(f"{where}: more than {MAX_HASHES} proof hashes")
            hashes = [base64.b64decode(x, validate=True) for x in lines[pos + 1 :]]
        except (binascii.Error, ValueError):
            raise FormatError(f"{where}: invalid base64") from None
        if any(len(h) != 32 for h in hashes):
            raise FormatError(f"{where}: a proof hash is not 32 bytes")
        return cls(index, hashes, checkpoint, extra)


def prove(engine: Engine, index: int) -> bytes:
    """A ``.tlog-proof`` for entry ``index`` against the latest signed checkpoint."""
    with engine.connect() as conn:
        cp = latest_checkpoint(conn)
        if cp is None or index >= cp.size or index < 0:
            size = cp.size if cp else 0
            raise LogStateError(
                f"entry {index} is not covered by a signed checkpoint yet (latest size {size})"
            )
        leaf = conn.execute(select(entries.c.leaf).where(entries.c.idx == index)).scalar_one()
        hashes = store.inclusion_proof(conn, index, cp.size)
    return TlogProof(index, hashes, cp.text(), bytes(leaf)).encode()
