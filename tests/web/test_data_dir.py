"""Files and directories under the data directory are private to the server's user."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
from pathlib import Path

from sqlalchemy import text
from starlette.testclient import TestClient

from outlet.files import FileStore
from tests.outlet.samples import PDF
from web.app import create_app
from web.db import make_engine
from web.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_files_are_0600_and_directories_0700(settings: Settings, engine: object, tmp_path: Path) -> None:
    data = tmp_path / "fresh-var"
    data.mkdir(mode=0o755)  # as an older version (or an admin) left it
    fresh = dataclasses.replace(settings, data_dir=data, audit_key_file=data / "keys" / "audit.key")
    with TestClient(create_app(fresh)):
        pass
    assert mode(data) == 0o700 and mode(fresh.files_dir) == 0o700
    assert mode(fresh.audit_key_file) == 0o600 and mode(fresh.audit_key_file.parent) == 0o700
    stored = FileStore(fresh.files_dir).save_bytes(PDF, claimed_name="a.pdf", max_bytes=1 << 20)
    blob = FileStore(fresh.files_dir).open(stored.sha256)
    assert mode(blob) == 0o600 and mode(blob.parent) == 0o700
    db = make_engine(f"sqlite:///{data / 'new.db'}")
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    db.dispose()
    assert mode(data / "new.db") == 0o600


def test_start_refuses_a_shared_file_directory_that_is_not_mounted(tmp_path: Path) -> None:
    from tests.web.test_crash_server import CLI

    env = {**os.environ, "SERVICEPOINT_DATA": str(tmp_path / "var"),
           "SERVICEPOINT_FILES_DIR": str(tmp_path / "mnt"), "SERVICEPOINT_FILES_SHARED": "1"}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    out = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "共享文件目录" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "mnt").exists()
    (tmp_path / "mnt").mkdir()
    out = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "var" / "files").exists()  # nothing stored beside the shared directory
