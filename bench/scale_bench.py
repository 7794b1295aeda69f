"""Scale-out benchmark on a throw-away PostgreSQL server: prints figures, asserts nothing.

    .venv/bin/python bench/scale_bench.py [--seconds 10] [--events 300]

1. Event latency through the hub: process A publishes (each in its own transaction, NOTIFY
   on commit), process B — another OS process with its own listening connection — records
   when each event reaches its subscriber. Median and p99 of publish-start → delivered.
2. Case creation (POST /cases/new, a delegated action with its audit entry) against real
   `servicepoint serve` processes: 1 process, then 2 processes sharing the database, with 16
   and 64 concurrent HTTP connections (threads, round-robin over the processes). Requests/s
   and p99 latency. The server runs with fsync=off (the test server), and the load generator
   shares the machine's cores with the servers and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tests import pg_server  # noqa: E402
from tests.web.test_crash_server import CLI, _free_port, _logged_in, _start  # noqa: E402
from web.db import make_engine  # noqa: E402


def _receiver(url: str, n: int, ready: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    from outlet.events import Hub

    async def run() -> None:
        engine = make_engine(url)
        hub = Hub(engine, poll_seconds=3600)  # NOTIFY only
        await hub.start()
        await hub.listener.connected.wait()
        sub = hub.subscribe("bench.latency")
        ready.set()
        got = []
        async for ev in sub:
            got.append(time.time() - float(ev.payload["t"]))
            if len(got) == n:
                break
        await hub.close()
        engine.dispose()
        out.put(got)

    asyncio.run(run())


def event_latency(url: str, n: int) -> list[float]:
    from outlet.events import Hub

    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_receiver, args=(url, n, ready, out))
    proc.start()
    assert ready.wait(60), "receiver did not start"
    engine = make_engine(url)
    hub = Hub(engine)
    for _ in range(n):
        hub.publish("bench.latency", {"t": repr(time.time())})
        time.sleep(0.01)  # latency, not throughput: one event at a time
    got = out.get(timeout=60)
    proc.join(30)
    engine.dispose()
    return sorted(got)


def case_load(bases: list[str], matter_id: int, connections: int, seconds: float) -> tuple[float, float, int]:
    form = {"matter_id": str(matter_id), "applicant_kind": "person", "applicant_name": "张三",
            "id_number": "11010519491231002X", "phone": "13800138000"}
    clients = [_logged_in(bases[i % len(bases)], "teller1") for i in range(connections)]
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = threading.Barrier(connections + 1)
    stop_at = [0.0]

    def work(client: httpx.Client) -> None:
        nonlocal errors
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                r = client.post("/cases/new", data=form, headers={"HX-Request": "true"})
                ok = (r.headers.get("HX-Redirect") or "").startswith("/cases/")
            except httpx.HTTPError:
                ok = False
            with lock:
                if ok:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors += 1

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    lat.sort()
    return len(lat) / dt, lat[int(len(lat) * 0.99)] if lat else float("nan"), errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0, help="per load run")
    ap.add_argument("--events", type=int, default=300)
    a = ap.parse_args()
    if not pg_server.available():
        print("scale bench: PostgreSQL is not installed (make test-deps installs it); skipped")
        return
    server = pg_server.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url = server.new_database()
        tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
        env = {**os.environ, "SERVICEPOINT_DATA": str(tmp / "var"), "SERVICEPOINT_DATABASE_URL": url}
        subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True, timeout=600)
        print(f"scale bench: PostgreSQL (fsync=off) on 127.0.0.1:{server.port}, {os.cpu_count()} cores")

        lat = event_latency(url, a.events)
        print(f"event A→B ({len(lat)} events, separate processes, LISTEN/NOTIFY): "
              f"median {statistics.median(lat) * 1e3:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.1f} ms")

        engine = make_engine(url)
        with engine.connect() as conn:
            matter_id = conn.execute(text(
                "SELECT matter_id FROM matterversion WHERE name = '社会保障卡申领' LIMIT 1")).scalar_one()
        engine.dispose()
        ports = [_free_port(), _free_port()]
        procs.append(_start(env, ports[0], tmp / "a.log"))
        for n_procs in (1, 2):
            if n_procs == 2:
                procs.append(_start(env, ports[1], tmp / "b.log"))
            bases = [f"http://127.0.0.1:{p}" for p in ports[:n_procs]]
            for conns in (16, 64):
                rate, p99, errors = case_load(bases, matter_id, conns, a.seconds)
                print(f"case creation, {n_procs} process(es), {conns:>2} connections: {rate:6.1f} req/s, "
                      f"p99 {p99 * 1e3:6.0f} ms" + (f", {errors} failed" if errors else ""), flush=True)
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
        server.stop()


if __name__ == "__main__":
    main()
