"""A throw-away PostgreSQL server for the test run (Debian's ``postgresql`` package).

Started once per pytest run on a free loopback port with its own data directory; tests get a
fresh database each from ``new_database``. Runs the server as the ``postgres`` user when the
tests run as root (the server refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    base: Path
    port: int
    user: str

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _run_as_owner([_bin("pg_ctl") or "pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "stop"],
                      check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def _as_postgres() -> bool:
    return os.geteuid() == 0


def _run_as_owner(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
    if _as_postgres():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, timeout=120)


def start() -> PgServer:
    base = Path(tempfile.mkdtemp(prefix="sp-pg-"))
    os.chmod(base, 0o755)
    if _as_postgres():
        shutil.chown(base, "postgres", "postgres")
    user = "postgres" if _as_postgres() else os.environ.get("USER", "postgres")
    data = base / "data"
    _run_as_owner([_bin("initdb") or "initdb", "-D", str(data), "-U", user, "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
    port = _free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c max_connections=200 -c full_page_writes=off")
    _run_as_owner([_bin("pg_ctl") or "pg_ctl", "-D", str(data), "-o", opts, "-l", str(base / "log"),
                   "-w", "-t", "60", "start"])
    server = PgServer(base=base, port=port, user=user)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return server
