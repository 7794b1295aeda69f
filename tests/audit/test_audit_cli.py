"""The audit and witness commands (click), and ``python -m audit verify``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.engine import Engine

from audit.cli import audit, witness
from tests.audit.helpers import ORIGIN

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


def test_cli_keygen_sign_export_prove_verify(tmp_path: Path, engine: Engine,
                                             appender: Callable[..., list[int]]) -> None:  # fmt: skip
    runner = CliRunner()
    key = tmp_path / "keys" / "log.key"
    r = runner.invoke(audit, ["keygen", "--origin", ORIGIN, "-o", str(key)])
    assert r.exit_code == 0 and r.output.startswith(ORIGIN + "+")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert runner.invoke(audit, ["keygen", "--origin", ORIGIN, "-o", str(key)]).exit_code == 1
    appender(engine, 5)
    env = {"SERVICEPOINT_DATABASE_URL": str(engine.url), "SERVICEPOINT_AUDIT_KEY_FILE": str(key)}
    r = runner.invoke(audit, ["sign"], env=env)
    assert r.exit_code == 0, r.output
    assert "size 5" in r.output
    r = runner.invoke(audit, ["export", str(tmp_path / "x")], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(audit, ["prove", "2", "-o", str(tmp_path / "x" / "e2.tlog-proof")], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(audit, ["verify", str(tmp_path / "x")])
    assert r.exit_code == 0 and "1. ok  trust policy" in r.output and "verified" in r.output
    r = runner.invoke(audit, ["verify", str(tmp_path / "x" / "e2.tlog-proof")])
    assert r.exit_code == 0, r.output
    # an output folder that does not exist: a precise message and exit 1, no traceback
    r = runner.invoke(audit, ["prove", "2", "-o", str(tmp_path / "nowhere" / "e2.tlog-proof")], env=env)
    assert r.exit_code == 1 and "FAILED: cannot access" in r.output and "nowhere" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_cli_commands_without_a_log_database_end_with_a_message(tmp_path: Path) -> None:
    """Run outside the data directory, `audit prove` used to print a 120-line SQLAlchemy
    traceback (`unable to open database file`); every database command now fails cleanly."""
    runner = CliRunner()
    env = {"SERVICEPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'servicepoint.db'}",
           "SERVICEPOINT_AUDIT_KEY_FILE": str(tmp_path / "none.key")}
    for args in (["prove", "5", "-o", str(tmp_path / "x.p")], ["sign"], ["export", str(tmp_path / "e")]):
        r = runner.invoke(audit, args, env=env)
        assert r.exit_code == 1, (args, r.output)
        assert r.output.startswith("FAILED: "), (args, r.output)
        assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit))


def test_cli_days_before_2000_are_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    """`audit stats --from 0001-01-01` ended in "internal error (OverflowError)"."""
    runner = CliRunner()
    for args in (["stats", str(tmp_path), "--from", "0001-01-01"],
                 ["export", str(tmp_path / "e"), "--vkey", "x", "--db", "sqlite://", "--to", "0001-01-01"]):
        r = runner.invoke(audit, args)
        assert r.exit_code == 2 and "before 2000-01-01" in r.output, (args, r.output)


def test_cli_verify_downloaded_proof_needs_the_keys_from_audit_keys(
        tmp_path: Path, engine: Engine, appender: Callable[..., list[int]]) -> None:  # fmt: skip
    """README: a proof downloaded alone is checked against keys pinned from /audit/keys; without
    them the message says where the keys are."""
    from datetime import date

    from audit.keys import KeyInfo, public_keys_text

    runner = CliRunner()
    key = tmp_path / "keys" / "log.key"
    vkey = runner.invoke(audit, ["keygen", "--origin", ORIGIN, "-o", str(key)]).output.split()[0]
    appender(engine, 3)
    env = {"SERVICEPOINT_DATABASE_URL": str(engine.url), "SERVICEPOINT_AUDIT_KEY_FILE": str(key)}
    assert runner.invoke(audit, ["sign"], env=env).exit_code == 0
    proof = tmp_path / "downloads" / "entry.tlog-proof"
    proof.parent.mkdir()
    assert runner.invoke(audit, ["prove", "1", "-o", str(proof)], env=env).exit_code == 0
    r = runner.invoke(audit, ["verify", str(proof)])
    assert r.exit_code == 1 and "/audit/keys" in r.output and "--policy" in r.output
    pinned = tmp_path / "log.vkey"  # what /audit/keys serves, dates included
    pinned.write_text(public_keys_text([KeyInfo(vkey, date(2026, 1, 1), None)]))
    r = runner.invoke(audit, ["verify", str(proof), "--policy", str(pinned)])
    assert r.exit_code == 0 and "verified" in r.output, r.output


def test_cli_verify_fails_with_the_precise_message() -> None:
    r = CliRunner().invoke(audit, ["verify", str(VECTORS / "modified_entry")])
    assert r.exit_code == 1
    assert "FAILED: entries.jsonl line 4 (index 3)" in r.output
    assert "2. ok  checkpoint" in r.output


def test_cli_python_m_audit_verify_needs_only_the_audit_package(tmp_path: Path) -> None:
    # Copy audit/ alone to a fresh directory: no project package is importable there.
    import shutil

    shutil.copytree(ROOT / "audit", tmp_path / "audit", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ok = subprocess.run([sys.executable, "-m", "audit", "verify", str(VECTORS / "good")],
                        cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "audit", "verify", str(VECTORS / "truncated_log")],
                         cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "truncated log" in bad.stderr


def test_cli_witness_keygen_and_serve_requires_options(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(witness, ["keygen", "--name", "witness.bank.example/w1",
                                "-o", str(tmp_path / "w.key")])  # fmt: skip
    assert r.exit_code == 0 and r.output.startswith("witness.bank.example/w1+")
    assert (tmp_path / "w.key").read_text().startswith("PRIVATE+KEY+witness.bank.example/w1+")
    r = runner.invoke(witness, [])
    assert r.exit_code == 2 and "--key" in r.output
