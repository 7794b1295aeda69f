"""Crash safety of the whole server (issue: signed audit trail §6): SIGKILL `servicepoint
serve` during a burst of concurrent delegated actions; after a restart every acknowledged
action is in the database *and* in the audit log, the next checkpoint is consistent with
the last one signed before the crash, and an export verifies offline."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import audit

CLI = [sys.executable, "-c", "from web.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + log.read_text())


def _logged_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10, follow_redirects=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"username": "teller1", "password": "demo-12345",
                                    "csrf_token": token.group(1)})
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert r.status_code == 200 and fresh, r.text[:200]
    client.headers["X-CSRF-Token"] = fresh.group(1)
    return client


@pytest.mark.timeout(240)
def test_server_killed_mid_burst_loses_no_acknowledged_action(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = {**os.environ, "SERVICEPOINT_DATA": str(data), "SERVICEPOINT_CHECKPOINT_INTERVAL": "0.3"}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True, timeout=180)
    db = data / "servicepoint.db"
    with sqlite3.connect(db) as conn:
        (matter_id,) = conn.execute(
            "SELECT matter_id FROM matterversion WHERE name = '社会保障卡申领' LIMIT 1").fetchone()
        entries_before = conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0]

    port = _free_port()
    server = _start(env, port, tmp_path / "server.log")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    form = {"matter_id": str(matter_id), "applicant_kind": "person", "applicant_name": "张三",
            "id_number": "11010519491231002X", "phone": "13800138000"}

    def burst() -> None:
        client = _logged_in(f"http://127.0.0.1:{port}")
        while not stop.is_set():
            try:
                r = client.post("/cases/new", data=form, headers={"HX-Request": "true"})
            except httpx.HTTPError:
                return  # the server died under us: this one was never acknowledged
            location = r.headers.get("HX-Redirect") or r.headers.get("location") or ""
            if location.startswith("/cases/"):
                with lock:
                    acknowledged.append(location.removeprefix("/cases/"))

    workers = [threading.Thread(target=burst) for _ in range(8)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    with sqlite3.connect(db) as conn:  # a checkpoint signed before the crash
        row = conn.execute("SELECT note FROM audit_checkpoints ORDER BY id DESC LIMIT 1").fetchone()
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    stop.set()
    for w in workers:
        w.join(15)
    assert len(acknowledged) >= 40, "the burst did not get going"
    assert row is not None, "no checkpoint was signed before the crash"

    # Restart: the server comes up on the same files and keeps signing.
    server = _start(env, port, tmp_path / "server.log")
    try:
        with sqlite3.connect(db) as conn:
            cases = {n for (n,) in conn.execute("SELECT number FROM service_case")}
            logged = {n for (n,) in conn.execute(
                "SELECT case_no FROM audit_entries WHERE action = 'case.create'")}
            indexes = [i for (i,) in conn.execute('SELECT "idx" FROM audit_entries ORDER BY "idx"')]
        missing = [n for n in acknowledged if n not in cases or n not in logged]
        assert missing == [], f"acknowledged but lost: {missing[:5]}"
        assert logged <= cases, "an audit entry without its action"
        assert indexes == list(range(len(indexes))) and len(indexes) > entries_before
    finally:
        server.terminate()
        server.wait(15)

    # The next checkpoint must extend the one signed before the crash; export + verify offline.
    out = subprocess.run([*CLI, "audit", "sign"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    previous = tmp_path / "before-crash.checkpoint"
    previous.write_bytes(bytes(row[0]))
    export_dir = tmp_path / "export"
    out = subprocess.run([*CLI, "audit", "export", str(export_dir)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    audit.verify(export_dir, previous=[previous])
