"""Files and directories under the data directory are private to the server's user."""

from __future__ import annotations

import dataclasses
import stat
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
