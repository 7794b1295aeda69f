"""Audit log benchmark: prints numbers, asserts nothing (beyond the log being intact).

    python bench/audit_bench.py [--entries 1000000] [--append 6400] [--pg-append N] [--runs 3]
                                [--append-only] [--full] [--no-pg] [--no-sqlite] [--dir DIR]

Append: 1, 8 and 64 writer threads on one engine from ``audit.db.open_engine`` (the app's
engine), in three modes, on SQLite and on PostgreSQL, in the same run:
- "append": each entry its own transaction as the app did before group commit --
  ``with Session(engine) as s, s.begin(): audit.record(s, entry)``;
- "group": each entry a unit of ``audit.group.GroupCommit`` (a SAVEPOINT each, one COMMIT
  per batch of the units that queued up meanwhile) -- how delegated actions commit now;
- "empty txn": BEGIN + COMMIT with nothing in it, the ceiling of one transaction per entry.
Every entry counts only once its COMMIT returned. SQLite WAL with synchronous=NORMAL (the
app's setting): a COMMIT is durable against a process kill, not against power loss;
``--full`` uses synchronous=FULL (fsync per commit). PostgreSQL is a throw-away server with
fsync=off (the test server), so its figures understate commit cost. Each run is repeated
``--runs`` times (the machine may be shared): every run and the median/range are printed,
with the per-entry latency and the process CPU time per entry (all threads; on a machine
shared with other work, entries/s follows the CPU this process gets, and 1 / CPU per entry
is roughly the rate with one whole core for the GIL-bound Python part).

CPU time per entry depends on the load of a shared machine; instruction counts do not. With
valgrind installed, each mode's 64-writer run is also repeated once, small
(``--instr-entries``), under ``valgrind --tool=callgrind`` counting only the writer threads'
instructions (``--toggle-collect=thread_run``; warm-up in the main thread is not counted), and
the instructions per entry are printed next to the figures (``--no-instr`` skips it)."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import event, func, insert, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from audit import export, prove, record, store, verify  # noqa: E402
from audit.db import open_engine  # noqa: E402
from audit.entry import canonical_json, normalize, parse_time  # noqa: E402
from audit.group import GroupCommit  # noqa: E402
from audit.log import Checkpointer  # noqa: E402
from audit.merkle import leaf_hash  # noqa: E402
from audit.models import create_tables, entries  # noqa: E402
from audit.note import Signer  # noqa: E402

ORIGIN = "bench.example/audit"


def entry(i: int) -> dict[str, Any]:
    return {
        "time": f"2026-11-21T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000000Z",
        "actor": {"id": 1000 + i % 97, "role": "teller"},
        "outlet": f"QD-BANK-{i % 40:03d}",
        "partner": "BANK-A",
        "action": ["case.intake", "case.accept", "case.complete"][i % 3],
        "case": f"370211000000000000000000000000120261121{i % 10000:04d}",
        "matter": {"code": "370211000000", "version": 2},
        "grant": 40,
        "outcome": {"result": "done"},
        "digests": [{"kind": "material", "sha256": hashlib.sha256(b"%d" % i).hexdigest()}],
        "state": {"from": "received", "to": "accepted"},
        "subject": None,
    }


def engine_for(path: Path, full: bool) -> Engine:
    eng = open_engine(f"sqlite:///{path}")
    if full:

        @event.listens_for(eng, "connect")
        def _full(dbapi_connection: Any, _r: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=FULL")

    create_tables(eng)
    return eng


MODES = {
    "txn": ("append", "entries/s", "one transaction per entry (BEGIN, record, COMMIT): before"),
    "group": ("group", "entries/s", "group commit: one SAVEPOINT per entry, one COMMIT per batch"),
    "floor": ("empty txn", "txn/s", "empty transactions: the ceiling of one transaction per entry"),
}


def bench_append(eng: Engine, writers: int, total: int, mode: str,
                 check: bool = True) -> tuple[float, list[float], float]:
    """Entries/s, per-entry seconds (until acknowledged) and process CPU seconds per entry for
    ``writers`` threads appending ``total`` entries. ``mode``: "txn" one transaction each,
    "group" group commit, "floor" empty transactions instead of record(). ``check``: count
    the entries afterwards (every one acknowledged is there, indexes consecutive from 0)."""
    per = total // writers
    lat: list[list[float]] = [[] for _ in range(writers)]
    clock = time.perf_counter
    group = GroupCommit(eng)

    def work(k: int) -> None:
        mine = lat[k]
        for i in range(per):
            t = clock()
            if mode == "group":
                with group.unit() as s:
                    record(s, entry(k * per + i))
            else:
                with Session(eng) as s, s.begin():
                    if mode == "floor":
                        s.connection()
                    else:
                        record(s, entry(k * per + i))
            mine.append(clock() - t)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if check and mode != "floor":  # every acknowledged entry is there, indexes consecutive from 0
        with eng.connect() as c:
            n = c.execute(select(func.count()).select_from(entries)).scalar()
            assert n == store.entry_count(c) == per * writers, (n, store.entry_count(c))
    return per * writers / dt, [x for m in lat for x in m], cpu / (per * writers)


def instructions_per_entry(mode: str, writers: int, total: int, url: str | None, tmp: Path) -> float | None:
    """Instructions per entry of ``writers`` threads appending ``total`` entries in ``mode``,
    counted by callgrind in the writer threads only (this process' Python and SQLite; not the
    PostgreSQL server's). ``url``: a fresh PostgreSQL database, else a new SQLite file in
    ``tmp``. None without valgrind or when the run fails."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    out = tmp / f"callgrind-{mode}-{writers}-{os.getpid()}.out"
    cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=thread_run",
           f"--callgrind-out-file={out}", sys.executable, __file__, "--instr-child", mode,
           str(writers), str(total), url or str(tmp / f"instr-{mode}-{writers}.db")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    got = re.search(r"Collected : (\d+)", run.stderr)
    out.unlink(missing_ok=True)
    if run.returncode != 0 or got is None:
        print(f"   (callgrind run failed: {run.stderr.strip().splitlines()[-1:]})")
        return None
    return int(got.group(1)) / total


def instr_child(mode: str, writers: int, total: int, target: str) -> None:
    """The process measured by instructions_per_entry: warm up in the main thread (not
    counted), then the writers (counted)."""
    eng = open_engine(target if "://" in target else f"sqlite:///{target}")
    create_tables(eng)
    group = GroupCommit(eng)
    for i in range(200):  # caches, lazy imports, prepared statements: outside thread_run
        if mode == "group":
            with group.unit() as s:
                record(s, entry(10_000_000 + i))
        else:
            with Session(eng) as s, s.begin():
                record(s, entry(10_000_000 + i))
    with eng.begin() as c:
        c.execute(entries.delete())
    bench_append(eng, writers, total, mode, check=False)
    eng.dispose()


def fresh_sqlite(tmp: Path, full: bool, name: str) -> Engine:
    path = tmp / f"{name}.db"
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    return engine_for(path, full)


def pragmas(tmp: Path, full: bool) -> str:
    eng = engine_for(tmp / "pragmas.db", full)
    with eng.connect() as c:
        got = [f"{p}={c.exec_driver_sql(f'PRAGMA {p}').scalar()}"
               for p in ("journal_mode", "synchronous", "wal_autocheckpoint")]  # fmt: skip
    eng.dispose()
    return ", ".join(got) + " (synchronous: 0=OFF 1=NORMAL 2=FULL)"


def append_runs(new_engine: Any, total: int, runs: int, mode: str,
                instr: Any = None) -> None:
    """Print the figures of ``runs`` runs per writer count; ``instr(mode, writers)``: the
    instructions per entry of a small run (or None), printed on the 64-writer line."""
    what, unit, _doc = MODES[mode]
    for w in (1, 8, 64):
        rates: list[float] = []
        lats: list[float] = []
        cpus: list[float] = []
        for r in range(runs):
            eng = new_engine(f"append{w}-{mode}-{r}")
            rate, lat, cpu = bench_append(eng, w, total, mode)
            eng.dispose()
            rates.append(rate)
            lats += lat
            cpus.append(cpu)
        lats.sort()
        p50, p99, top = lats[len(lats) // 2], lats[int(len(lats) * 0.99)], lats[-1]
        per = instr(mode, w) if instr is not None and w == 64 else None
        print(f"{what:9} {w:>2} writer(s): median {statistics.median(rates):>7,.0f} {unit}  "
              f"range {min(rates):,.0f}-{max(rates):,.0f}  "
              f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; "
              f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {top * 1e3:.0f} ms; "
              f"cpu {statistics.median(cpus) * 1e6:.0f} us/entry"
              + (f", {per:,.0f} instructions/entry" if per else "") + ")",
              flush=True)  # fmt: skip


def postgres_engines() -> tuple[Any, Any]:
    """A throw-away PostgreSQL server (tests/pg_server.py; fsync=off like the test server)
    and a factory of fresh databases on it."""
    from tests import pg_server

    server = pg_server.start()

    def new_engine(_name: str) -> Engine:
        eng = open_engine(server.new_database())
        create_tables(eng)
        return eng

    return server, new_engine


def _child() -> bool:
    """``--instr-child MODE WRITERS TOTAL TARGET``: run instr_child (under callgrind)."""
    if len(sys.argv) == 6 and sys.argv[1] == "--instr-child":
        instr_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return True
    return False


def bulk_load(eng: Engine, n: int) -> None:
    """Fill the log fast (not through record(): that part is measured separately)."""
    batch = []
    for i in range(n):
        e = normalize(entry(i))
        leaf = canonical_json(e)
        batch.append({"idx": i, "leaf": leaf, "leaf_hash": leaf_hash(leaf),
                      "time": parse_time(e["time"]), "actor_id": e["actor"]["id"],
                      "actor_role": "teller", "outlet": e["outlet"], "partner": e["partner"],
                      "action": e["action"], "case_no": e["case"],
                      "matter_code": "370211000000"})  # fmt: skip
        if len(batch) == 50_000 or i == n - 1:
            with eng.begin() as c:
                c.execute(insert(entries), batch)
            batch = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--append", type=int, default=6_400, help="entries per append run")
    ap.add_argument("--runs", type=int, default=3, help="append runs per writer count")
    ap.add_argument("--append-only", action="store_true", help="skip the 1M-entry part")
    ap.add_argument("--full", action="store_true", help="synchronous=FULL instead of NORMAL")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL append runs")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite append runs")
    ap.add_argument("--pg-append", type=int, default=None,
                    help="entries per PostgreSQL append run (default: --append)")
    ap.add_argument("--modes", default="txn,group,floor", help="append modes to run")
    ap.add_argument("--instr-entries", type=int, default=1_280,
                    help="entries of the 64-writer run counted by callgrind")
    ap.add_argument("--no-instr", action="store_true", help="skip the callgrind runs")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m in MODES]
    tmp = a.dir or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    n = a.entries
    mode = "FULL" if a.full else "NORMAL"
    print(f"audit bench: {n:,} entries, SQLite WAL synchronous={mode}, dir {tmp}")

    print(f"engine: {pragmas(tmp, a.full)}")
    print(f"append: {a.append:,} entries per run, {a.runs} run(s) per writer count; latency = "
          "until the entry is committed (acknowledged)")  # fmt: skip
    if not a.no_instr:
        print(f"instructions: callgrind, writer threads only, {a.instr_entries:,} entries by 64 writers "
              "after a warm-up" + ("" if shutil.which("valgrind") else " -- valgrind not installed: skipped"))

    def sqlite_instr(mode: str, w: int) -> float | None:
        return None if a.no_instr else instructions_per_entry(mode, w, a.instr_entries, None, tmp)

    for mode in () if a.no_sqlite else modes:
        print(f"-- SQLite, {MODES[mode][2]}", flush=True)
        append_runs(lambda name: fresh_sqlite(tmp, a.full, name), a.append, a.runs, mode, sqlite_instr)
    if not a.no_pg:
        from tests import pg_server

        if pg_server.available():
            server, new_engine = postgres_engines()

            def pg_instr(mode: str, w: int) -> float | None:
                return None if a.no_instr else instructions_per_entry(
                    mode, w, a.instr_entries, server.new_database(), tmp)

            try:
                for mode in modes:
                    print(f"-- PostgreSQL (fsync=off), {MODES[mode][2]}", flush=True)
                    append_runs(new_engine, a.pg_append or a.append, a.runs, mode, pg_instr)
            finally:
                server.stop()
        else:
            print("-- PostgreSQL not installed: skipped")
    if a.append_only:
        return

    eng = engine_for(tmp / "big.db", a.full)
    t0 = time.perf_counter()
    bulk_load(eng, n)
    t1 = time.perf_counter()
    log = Checkpointer(ORIGIN, [Signer(ORIGIN, hashlib.sha256(b"bench").digest())])
    cp = log.sign_checkpoint(eng)
    t2 = time.perf_counter()
    print(f"bulk load: {n / (t1 - t0):,.0f} entries/s; integrate + sign {cp.size:,}: "
          f"{t2 - t1:.1f} s ({n / (t2 - t1):,.0f} leaves/s)")  # fmt: skip

    rng = random.Random(1)
    idxs = [rng.randrange(n) for _ in range(500)]
    prove(eng, idxs[0])  # warm up
    t0 = time.perf_counter()
    for i in idxs:
        prove(eng, i)
    per_proof = (time.perf_counter() - t0) / len(idxs)
    print(f"prove (.tlog-proof) at {n:,} entries: {per_proof * 1000:.2f} ms per proof")

    t0 = time.perf_counter()
    export(eng, tmp / "export", log.policy())
    t1 = time.perf_counter()
    verify(tmp / "export")
    t2 = time.perf_counter()
    print(f"export {n:,}: {t1 - t0:.1f} s; offline verify: {t2 - t1:.1f} s "
          f"({n / (t2 - t1):,.0f} entries/s)")  # fmt: skip

    leaves = [canonical_json(normalize(entry(i))) for i in range(100_000)]
    t0 = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(b"\x00" + leaf).digest()
    print(f"raw SHA-256 leaf hashing: {len(leaves) / (time.perf_counter() - t0):,.0f} leaves/s "
          f"({sum(map(len, leaves)) // len(leaves)} bytes avg)")  # fmt: skip
    key = Ed25519PrivateKey.generate()
    msg = b"bench.example/audit\n1000000\n" + b"A" * 44 + b"\n"
    t0 = time.perf_counter()
    for _ in range(5000):
        key.sign(msg)
    print(f"raw Ed25519 signing: {5000 / (time.perf_counter() - t0):,.0f} signatures/s")


if __name__ == "__main__":
    if not _child():
        main()
