"""Pages benchmark: the teller's busiest requests against bare Starlette endpoints, with a
real HTTP load generator (wrk, Debian). Prints numbers, asserts nothing.

    python bench/pages_bench.py [--conns 1,16,64] [--repeats 3] [--seconds 5]

Starts ``servicepoint serve`` (one process, SQLite, demo data) and ``bench/bare_app.py``
(same uvicorn settings), logs a demo teller in (session cookie + CSRF token, passed to
wrk's Lua script bench/wrk_form.lua), then for each connection count and repeat runs,
interleaved A/B/A/B on the same machine:

  teller home   GET /cases/          vs  bare GET /page   (one SQLite read + a template)
  case page     GET /cases/<number>  vs  bare GET /page
  case creation POST /cases/new      vs  bare POST /form  (a form and one insert)

and prints req/s, p50, p99 (ms) and the ratio servicepoint / bare, as min/median/max over
the repeats, plus the server's RSS (MiB) idle and after each connection count."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from partners.demo import DEMO_PASSWORD  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk_form.lua"
FORM = {"applicant_kind": "person", "applicant_name": "张三", "id_number": "11010519491231002X",
        "phone": "13800138000"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start_servicepoint(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "SERVICEPOINT_DATA": str(data / "var")}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    cli = [sys.executable, "-c", "from web.cli import main; main()"]
    subprocess.run([*cli, "demo"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/healthz", proc)
    return proc, url


def start_bare(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_app.py"),
                             str(data / "bare.db"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_up(url + "/page", proc)
    return proc, url


def login(url: str) -> dict[str, str]:
    """Cookie, CSRF token, a case number and a matter id for the demo teller."""
    c = httpx.Client(base_url=url, follow_redirects=True, timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    r = c.post("/login", data={"username": "teller1", "password": DEMO_PASSWORD,
                               "csrf_token": token.group(1)})  # fmt: skip
    home = c.get("/cases/").text
    number = re.search(r'href="/cases/([0-9A-Z-]{10,})"', home)
    new = c.get("/cases/new").text
    matter = re.search(r"matter_id=(\d+)", new)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', new)
    assert r.status_code == 200 and number and matter and csrf, "demo teller login failed"
    cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    return {"cookie": cookie, "csrf": csrf.group(1), "case": number.group(1),
            "matter": matter.group(1)}  # fmt: skip


def wrk(url: str, conns: int, seconds: float, method: str, path: str, cookie: str = "",
        csrf: str = "", body: str = "") -> dict[str, Any]:  # fmt: skip
    cmd = ["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s",
           "-s", str(LUA), url, "--", method, path, cookie, csrf, body]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    return dict(json.loads(line[5:]))


def rss(proc: subprocess.Popen[bytes]) -> float:
    return float(psutil.Process(proc.pid).memory_info().rss) / 2**20


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--conns", default="1,16,64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk; make test-deps installs it)")
    data = Path(tempfile.mkdtemp(prefix="pages-bench-"))
    sp, sp_url = start_servicepoint(data)
    bare, bare_url = start_bare(data)
    try:
        s = login(sp_url)
        time.sleep(2)
        print(f"pages bench: {psutil.cpu_count()} cores; servicepoint serve (1 process, SQLite) vs "
              f"bare Starlette, same uvicorn; {a.seconds:.0f} s per run, {a.repeats} repeats, "
              "interleaved; figures min/median/max")  # fmt: skip
        print(f"servicepoint RSS idle after login: {rss(sp):.1f} MiB; bare app {rss(bare):.1f} MiB")
        form = urlencode({**FORM, "matter_id": s["matter"], "csrf_token": s["csrf"]})
        pairs = {
            "teller home": (("GET", "/cases/", ""), ("GET", "/page", "")),
            "case page": (("GET", f"/cases/{s['case']}", ""), ("GET", "/page", "")),
            "case creation": (("POST", "/cases/new", form), ("POST", "/form", urlencode(FORM))),
        }
        for conns in (int(x) for x in a.conns.split(",")):
            got: dict[str, dict[str, list[float]]] = {k: {} for k in pairs}
            for _ in range(a.repeats):
                for name, ((m1, p1, b1), (m2, p2, b2)) in pairs.items():
                    r1 = wrk(sp_url, conns, a.seconds, m1, p1, s["cookie"], s["csrf"], b1)
                    r2 = wrk(bare_url, conns, a.seconds, m2, p2, "", "", b2)
                    g = got[name]
                    for key, val in (("rps", r1["rps"]), ("p50", r1["p50_ms"]),
                                     ("p99", r1["p99_ms"]), ("bare_rps", r2["rps"]),
                                     ("bare_p50", r2["p50_ms"]), ("bare_p99", r2["p99_ms"]),
                                     ("ratio", r1["rps"] / max(r2["rps"], 1e-9)),
                                     ("errors", r1["errors"] + r2["errors"])):  # fmt: skip
                        g.setdefault(key, []).append(val)
            print(f"\n{conns} connection(s):")
            for name, g in got.items():
                print(f"  {name:13} {spread(g['rps']):>17} req/s  p50 {spread(g['p50'], '{:.1f}')} "
                      f"p99 {spread(g['p99'], '{:.1f}')} ms | bare {spread(g['bare_rps'])} req/s "
                      f"p50 {spread(g['bare_p50'], '{:.1f}')} p99 {spread(g['bare_p99'], '{:.1f}')} ms"
                      f" | ratio {spread([100 * x for x in g['ratio']], '{:.1f}')} %"
                      + (f" | {sum(g['errors']):.0f} errors" if sum(g["errors"]) else ""),
                      flush=True)  # fmt: skip
            print(f"  servicepoint RSS now {rss(sp):.1f} MiB")
    finally:
        for p in (sp, bare):
            p.terminate()
            p.wait(15)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
