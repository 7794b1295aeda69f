"""Interop: Go's golang.org/x/mod/sumdb/note and sumdb/tlog (Debian package
golang-golang-x-mod-dev, GOPATH mode, offline) check our exports and proofs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from audit import export, prove
from audit.log import Checkpointer
from audit.models import create_tables
from audit.store import record
from tests.audit.helpers import ORIGIN, fixed_signer, make_entry, sqlite_engine

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors"
GOPATH = "/usr/share/gocode"
HAVE_GO = shutil.which("go") is not None and (
    Path(GOPATH) / "src/golang.org/x/mod/sumdb/note/note.go").exists()  # fmt: skip
REASON = "needs apt-get install golang-go golang-golang-x-mod-dev"
if not HAVE_GO and os.environ.get("SERVICEPOINT_REQUIRE_GO") == "1":
    raise RuntimeError(REASON)
pytestmark = pytest.mark.skipif(not HAVE_GO, reason=REASON)


def go_verify(*args: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": "",
           "GOCACHE": os.environ.get("GOCACHE", str(tmp / "gocache"))}  # fmt: skip
    return subprocess.run(["go", "run", str(HERE / "verify_export.go"), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=240)  # fmt: skip


@pytest.fixture(scope="module")
def gocache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("go")


def test_go_interop_opens_checkpoint_and_recomputes_root_of_a_fresh_export(
    tmp_path: Path, gocache: Path
) -> None:
    engine = sqlite_engine(tmp_path / "log.db")
    create_tables(engine)
    with Session(engine) as s, s.begin():
        for i in range(1000):
            record(s, make_entry(i))
    log = Checkpointer(ORIGIN, [fixed_signer(ORIGIN, "log key 1"), fixed_signer(ORIGIN, "k2")])
    log.sign_checkpoint(engine)
    export(engine, tmp_path / "x", log.policy())
    (tmp_path / "e.tlog-proof").write_bytes(prove(engine, 613))
    r = go_verify(tmp_path / "x", tmp_path / "e.tlog-proof", tmp=gocache)
    assert r.returncode == 0, r.stderr
    assert "OK checkpoint size 1000" in r.stdout and "OK proof of entry 613" in r.stdout


def test_go_interop_accepts_good_vector_and_rejects_tampered(gocache: Path) -> None:
    ok = go_verify(VECTORS / "good", VECTORS / "proof_good" / "entry-4.tlog-proof", tmp=gocache)
    assert ok.returncode == 0, ok.stderr
    bad = go_verify(VECTORS / "modified_entry", tmp=gocache)
    assert bad.returncode == 1 and "root mismatch" in bad.stderr
    forged = go_verify(VECTORS / "bad_signature", tmp=gocache)
    assert forged.returncode == 1 and "note.Open" in forged.stderr
    proof = go_verify(VECTORS / "good", VECTORS / "proof_tampered" / "entry-4.tlog-proof",
                      tmp=gocache)  # fmt: skip
    assert proof.returncode == 1 and "CheckRecord" in proof.stderr
