"""Export from the database, then verify offline; every accepted export has a tampered
twin that is rejected with the entry named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from audit import export, prove, verify
from audit.errors import (
    AuditError,
    EntryModifiedError,
    EvidenceError,
    InclusionError,
    LogStateError,
)
from audit.log import Checkpointer
from audit.note import Signer
from tests.audit.helpers import ORIGIN

Append = Callable[..., list[int]]


@pytest.fixture
def log(engine: Engine, log_signer: Signer, appender: Append) -> Checkpointer:
    cp = Checkpointer(ORIGIN, [log_signer])
    appender(engine, 7)
    cp.sign_checkpoint(engine)
    appender(engine, 30, 7)
    cp.sign_checkpoint(engine)
    return cp


def flip(path: Path, line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b"teller", b"tellex", 1)
    path.write_bytes(b"".join(lines))


def test_export_full_verifies_and_names_a_modified_entry(
    tmp_path: Path, engine: Engine, log: Checkpointer
) -> None:
    res = export(engine, tmp_path / "x", log.policy())
    assert (res.tree_size, res.entries, res.filtered) == (37, 37, False)
    verify(tmp_path / "x")
    assert (tmp_path / "x" / "checkpoints" / "7").exists()
    for line in (1, 20, 37):
        shutil.copytree(tmp_path / "x", tmp_path / f"t{line}")
        flip(tmp_path / f"t{line}" / "entries.jsonl", line)
        with pytest.raises(EntryModifiedError, match=f"line {line} \\(index {line - 1}\\)"):
            verify(tmp_path / f"t{line}")


def test_export_filtered_carries_inclusion_proofs(
    tmp_path: Path, engine: Engine, log: Checkpointer
) -> None:
    res = export(engine, tmp_path / "x", log.policy(), outlet="OUT1")
    assert res.filtered and res.entries == 12
    indexes = (tmp_path / "x" / "indexes").read_text().split()
    assert indexes[:3] == ["1", "4", "7"]
    assert (tmp_path / "x" / "proofs" / "4.tlog-proof").exists()
    verify(tmp_path / "x")
    verify(tmp_path / "x" / "proofs" / "4.tlog-proof")
    flip(tmp_path / "x" / "entries.jsonl", 2)
    with pytest.raises(EntryModifiedError, match="line 2 \\(index 4\\)"):
        verify(tmp_path / "x")


def test_export_date_filter_selects_by_entry_time(
    tmp_path: Path, engine: Engine, log: Checkpointer
) -> None:
    assert export(engine, tmp_path / "a", log.policy(), from_=date(2026, 11, 21),
                  to=date(2026, 11, 21)).entries == 37  # fmt: skip
    assert export(engine, tmp_path / "b", log.policy(), from_=date(2026, 11, 22)).entries == 0
    verify(tmp_path / "b")


def test_export_copies_evidence_and_verify_checks_it(
    tmp_path: Path, engine: Engine, log_signer: Signer, appender: Append
) -> None:
    import hashlib

    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"scan bytes")
    digest = hashlib.sha256(b"scan bytes").hexdigest()
    appender(engine, 1, digests=[{"kind": "material", "sha256": digest}])
    log = Checkpointer(ORIGIN, [log_signer])
    log.sign_checkpoint(engine)
    export(engine, tmp_path / "x", log.policy(), evidence=[("case1/scan.pdf", scan)])
    assert (tmp_path / "x" / "manifest").read_text() == f"{digest}  evidence/case1/scan.pdf\n"
    verify(tmp_path / "x")
    (tmp_path / "x" / "evidence" / "case1" / "scan.pdf").write_bytes(b"scan bytez")
    with pytest.raises(EvidenceError, match="line 1 \\(index 0\\)"):
        verify(tmp_path / "x")
    with pytest.raises(AuditError):
        export(engine, tmp_path / "y", log.policy(), evidence=[("../etc/passwd", scan)])


def test_export_needs_a_signed_checkpoint(tmp_path: Path, engine: Engine, log_signer: Signer) -> None:
    with pytest.raises(LogStateError):
        export(engine, tmp_path / "x", Checkpointer(ORIGIN, [log_signer]).policy())


def test_prove_produces_a_verifiable_tlog_proof(
    tmp_path: Path, engine: Engine, log: Checkpointer
) -> None:
    data = prove(engine, 12)
    assert data.startswith(b"c2sp.org/tlog-proof@v1\nextra ")
    assert b"\nindex 12\n" in data
    (tmp_path / "e.tlog-proof").write_bytes(data)
    verify(tmp_path / "e.tlog-proof", log.policy())
    lines = data.split(b"\n")
    lines[3] = lines[4]  # replace one proof hash with another
    (tmp_path / "bad.tlog-proof").write_bytes(b"\n".join(lines))
    with pytest.raises(InclusionError, match="entry 12"):
        verify(tmp_path / "bad.tlog-proof", log.policy())
    with pytest.raises(LogStateError, match="not covered"):
        prove(engine, 37)
