"""Crash safety: SIGKILL a process in the middle of concurrent appends and signing; every
acknowledged append survives, indexes stay consecutive, the log stays consistent. Appends
are one transaction each, or units of a group commit (acknowledged after the batch's COMMIT)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audit import export, verify
from audit.db import open_engine
from audit.log import Checkpointer, latest_checkpoint
from audit.models import create_tables
from audit.note import Signer
from audit.store import entry_count
from tests.audit.helpers import ORIGIN

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, threading, time, hashlib
    from sqlalchemy.orm import Session
    from audit.db import open_engine
    from audit.log import Checkpointer
    from audit.note import Signer
    from audit.store import record
    from audit.group import GroupCommit
    from tests.audit.helpers import make_entry, ORIGIN

    import audit.db
    audit.db.CHECKPOINT_EVERY = 5  # out-of-lock WAL checkpoints all the time: kill amid them
    engine = open_engine(sys.argv[1])
    group = GroupCommit(engine) if sys.argv[2] == "group" else None
    signer = Signer(ORIGIN, hashlib.sha256(b"crash log key").digest())
    out = sys.stdout
    lock = threading.Lock()

    def writer(k):
        i = 0
        while True:
            if group is not None:
                with group.unit() as s:
                    idx = record(s, make_entry(k * 1000000 + i))
            else:
                with Session(engine) as s, s.begin():
                    idx = record(s, make_entry(k * 1000000 + i))
            with lock:  # acknowledged only after COMMIT returned
                out.write(f"{idx}\\n")
                out.flush()
            i += 1

    def signer_loop():
        log = Checkpointer(ORIGIN, [signer], batch=7)
        while True:
            log.sign_checkpoint(engine)
            time.sleep(0.01)

    for k in range(16 if group else 8):
        threading.Thread(target=writer, args=(k,), daemon=True).start()
    threading.Thread(target=signer_loop, daemon=True).start()
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
@pytest.mark.parametrize("mode", ["txn", "group"])
def test_crash_sigkill_during_appends_loses_no_acknowledged_entry(tmp_path: Path, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    engine = open_engine(url)
    create_tables(engine)
    signer = Signer(ORIGIN, hashlib.sha256(b"crash log key").digest())
    log = Checkpointer(ORIGIN, [signer])
    log.sign_checkpoint(engine)  # empty-tree checkpoint before the crash
    engine.dispose()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, mode], stdout=subprocess.PIPE,
                             env=env, cwd=ROOT)  # fmt: skip
    assert child.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 60
    while len(acked) < 400 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate()
    acked += [int(x) for x in rest.split()]
    assert len(acked) >= 400, "the child did not append"

    engine = open_engine(url)
    with engine.connect() as c:
        n = entry_count(c)
        before = latest_checkpoint(c)
        from sqlalchemy import func, select

        from audit.models import entries

        assert c.execute(select(func.count()).select_from(entries)).scalar() == n  # no gaps
    assert set(acked) <= set(range(n)) and len(set(acked)) == len(acked)
    assert before is not None
    after = log.sign_checkpoint(engine)  # raises if inconsistent with the pre-crash one
    assert after.size == n >= before.size
    export(engine, tmp_path / "x", log.policy())
    verify(tmp_path / "x")
