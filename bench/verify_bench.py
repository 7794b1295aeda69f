"""Offline verify benchmark: prints seconds and peak RSS, asserts nothing.

    python bench/verify_bench.py [--sizes 1000000,10000000] [--dir DIR] [--workers N]

For each size an export directory is synthesized directly (entries.jsonl in the app's
canonical entry shape, leaf-hashes, a checkpoint signed by a throw-away key, log.vkey,
policy) -- building a 10M-entry log through SQLite would take far longer than the thing
measured. Then, in the same run and one after another on the same files:

* ``servicepoint-audit verify`` (this package, a fresh process; ``--workers`` sets
  SERVICEPOINT_VERIFY_WORKERS, default: both cores),
* the same with one process (workers=0),
* Go's golang.org/x/mod/sumdb/tlog recomputing the same root
  (tests/interop/verify_export.go, compiled first so compile time is not counted).

Peak RSS is ru_maxrss over the verifier's process tree: the largest single process
(with the pool, parent and workers each stay below it)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import merkle, scan  # noqa: E402
from audit.checkpoint import Checkpoint  # noqa: E402
from audit.entry import canonical_json, normalize  # noqa: E402
from audit.note import Signer  # noqa: E402
from audit.policy import Policy  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from audit_bench import entry  # noqa: E402

ORIGIN = "bench.example/audit"


def synthesize(d: Path, n: int) -> None:
    """entries.jsonl + leaf-hashes + signed checkpoint for n entries (streamed)."""
    d.mkdir(parents=True, exist_ok=True)
    # 1000 distinct leaves reused with a varying time field keep generation fast.
    proto = [canonical_json(normalize(entry(i))) for i in range(1000)]
    tree = scan.Tree()
    sha = hashlib.sha256
    with open(d / "entries.jsonl", "wb") as ef, open(d / "leaf-hashes", "wb") as hf:
        for start in range(0, n, 1 << 16):
            k = min(1 << 16, n - start)
            lines = [
                proto[i % 1000].replace(b'"grant":40', b'"grant":%d' % i, 1)
                for i in range(start, start + k)
            ]
            hashes = [sha(b"\x00" + x).digest() for x in lines]
            ef.write(b"\n".join(lines) + b"\n")
            hf.write(b"".join(hashes))
            tree.add(scan.pieces(hashes, start))
    signer = Signer(ORIGIN, hashlib.sha256(b"verify-bench").digest())
    (d / "checkpoint").write_bytes(Checkpoint(ORIGIN, n, tree.root()).sign([signer]))
    (d / "log.vkey").write_text(signer.vkey + "\n")
    (d / "policy").write_text(Policy.build([signer.vkey], quorum="none").encode())
    (d / "manifest").write_text("")
    assert merkle.HASH_SIZE == 32


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run under a tiny Python wrapper that reports the peak RSS of its own children."""
    wrapper = (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
        "d=time.perf_counter()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(p.returncode,d,r);print(p.stdout[-300:]+p.stderr[-600:],file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True,
                       text=True, env=env)  # fmt: skip
    rc, dt, rss = p.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return float(dt), int(rss) / 1024, p.stderr.strip().splitlines()[0] if p.stderr else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=scan.default_workers())
    ap.add_argument("--no-go", action="store_true")
    a = ap.parse_args()
    tmp = a.dir or Path(tempfile.mkdtemp(prefix="verify-bench-"))
    go_bin = tmp / "verify_export"
    if not a.no_go and shutil.which("go"):
        env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                   GOCACHE=str(tmp / "gocache"))  # fmt: skip
        subprocess.run(["go", "build", "-o", str(go_bin),
                        str(ROOT / "tests/interop/verify_export.go")], check=True, env=env)  # fmt: skip
    cli = [sys.executable, "-m", "audit", "verify"]
    print(f"verify bench: {os.cpu_count()} CPU(s), dir {tmp}", flush=True)
    for n in (int(x) for x in a.sizes.split(",")):
        d = tmp / f"export-{n}"
        t0 = time.perf_counter()
        synthesize(d, n)
        mib = (d / "entries.jsonl").stat().st_size / 2**20
        print(f"{n:>11,} entries ({mib:,.0f} MiB entries.jsonl, synthesized in "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
        rows = [(f"python verify, {a.workers} worker(s)", cli + [str(d)],
                 dict(os.environ, SERVICEPOINT_VERIFY_WORKERS=str(a.workers))),
                ("python verify, 1 process", cli + [str(d)],
                 dict(os.environ, SERVICEPOINT_VERIFY_WORKERS="0"))]  # fmt: skip
        if go_bin.exists():
            rows.append(("Go x/mod/sumdb/tlog", [str(go_bin), str(d)], None))
        got = {}
        for name, cmd, env in rows:
            dt, rss, _ = timed(cmd, env)
            got[name] = dt
            print(f"    {name:34} {dt:7.2f} s  peak RSS {rss:7.1f} MiB  "
                  f"({n / dt:,.0f} entries/s)", flush=True)  # fmt: skip
        if "Go x/mod/sumdb/tlog" in got:
            first = rows[0][0]
            print(f"    ratio Go / python ({first}): "
                  f"{got['Go x/mod/sumdb/tlog'] / got[first]:.2f}x", flush=True)  # fmt: skip
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
