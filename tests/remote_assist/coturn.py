"""A real coturn (Debian's ``turnserver``) on a free loopback port, with the REST
shared-secret scheme, relaying to loopback peers only. Used by the relay tests and the
browser test."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stun_ping(port: int, timeout: float = 0.3) -> bool:
    """A STUN Binding request (RFC 5389) answered means the server is listening."""
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[8:20] == txid


class Coturn:
    def __init__(self, secret: str = "test-turn-secret", realm: str = "servicepoint.test") -> None:
        self.secret, self.realm = secret, realm
        self.port = _free_udp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="coturn-"))

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def start(self) -> Coturn:
        if not Path(TURNSERVER).exists():
            if os.environ.get("SERVICEPOINT_REQUIRE_BROWSER") == "1":
                raise RuntimeError("coturn is required (make test installs Debian's coturn)")
            pytest.skip("Debian coturn (turnserver) not installed")
        base = 50000 + (self.port % 100) * 100  # a relay port range unlikely to collide
        args = [
            TURNSERVER, "-n", "--listening-ip=127.0.0.1", f"--listening-port={self.port}",
            "--relay-ip=127.0.0.1", "--allow-loopback-peers", f"--min-port={base}", f"--max-port={base + 99}",
            "--use-auth-secret", f"--static-auth-secret={self.secret}", f"--realm={self.realm}",
            "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay", "--simple-log",
            f"--log-file={self.dir / 'turn.log'}", f"--pidfile={self.dir / 'turn.pid'}",
            f"--userdb={self.dir / 'turndb'}",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not _stun_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("coturn did not start:\n" + self.log())
        return self

    def log(self) -> str:
        logs = sorted(self.dir.glob("turn*.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
