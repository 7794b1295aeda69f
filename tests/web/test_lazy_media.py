"""aiortc and PyAV are loaded by the first recording, not by the app: a process that
serves pages and never records (every one on SQLite until a 勘验 call is recorded, every app
process when ``servicepoint recorder`` processes record) must not hold their memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_app_start_and_pages_do_not_import_aiortc_or_av(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, warnings
        warnings.filterwarnings("ignore")
        from starlette.testclient import TestClient
        from web.app import create_app
        from web.settings import Settings
        settings = Settings.from_env(data_dir={str(tmp_path / "var")!r},
                                     database_url="sqlite:///{tmp_path / "sp.db"}",
                                     secret_key_override="test")
        from sqlmodel import SQLModel
        import web.models
        from web.db import make_engine
        SQLModel.metadata.create_all(make_engine(settings.database_url))
        with TestClient(create_app(settings)) as client:  # lifespan: recorder service, sweep
            assert client.get("/login").status_code == 200
            assert client.get("/healthz").status_code == 200
        print("loaded:" + ",".join(m for m in ("aiortc", "av", "aioice") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "loaded:"


def test_recording_code_still_reaches_aiortc_and_av_when_used() -> None:
    """The twin: the lazy imports resolve (a typo in one would only show in a real call)."""
    script = ("import sys; from remote_assist import recordings, evidence; "
              "import remote_assist.recorder; "
              "assert recordings.probe(__import__('pathlib').Path('/nonexistent.mkv')) is None; "
              "print(','.join(m for m in ('aiortc', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "aiortc,av"
