"""Queue benchmark through the full app (a real ``servicepoint serve`` process, SQLite WAL):

1. tickets issued at the kiosk and served (呼叫下一位 → 开始办理 → 完成) by 8 counters calling
   concurrently — tickets per second and per-call latency — against a plain Starlette endpoint
   served the same way and hit with the same concurrency in the same run;
2. the hall display's push latency with 20 displays connected: from the 呼叫下一位 request
   being sent to each display receiving the board naming that ticket (median and p99);
3. the same call seen by a user: the real hall display page in headless Chromium (activated
   like a paired screen, its own JavaScript rendering the push), from sending 呼叫下一位 to the
   number appearing under "正在呼叫" (median, p99, max) — what tests/e2e/test_queue_browser.py
   used to assert as "< 2 s"; skipped when Chromium is not installed.

Prints figures only (no assertions), with the load average beside them:
``.venv/bin/python bench/queue_bench.py [--tickets 200] [--calls 30] [--browser-calls 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import websockets  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

import web.models  # noqa: E402,F401
from outlet import devices  # noqa: E402
from outlet.queue import counters, defaults  # noqa: E402
from partners.accounts import hash_password  # noqa: E402
from partners.demo import seed_demo  # noqa: E402
from partners.models import Outlet, Staff  # noqa: E402
from web.db import make_engine  # noqa: E402

COUNTERS = 8
DISPLAYS = 20
PLAIN = "from starlette.applications import Starlette\nfrom starlette.responses import HTMLResponse\n" \
        "from starlette.routing import Route\nasync def ok(request):\n    await request.body()\n" \
        "    return HTMLResponse('<p>ok</p>')\napp = Starlette(routes=[Route('/ok', ok, methods=['POST'])])\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError("server did not start") from None
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def setup(data: Path) -> tuple[str, str]:
    """Demo partners, outlet A open all day with 8 counters and 8 tellers; kiosk + display."""
    env = {**os.environ, "SERVICEPOINT_DATA": str(data)}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", "from web.cli import main; main()", "migrate"], env=env, check=True,
                   capture_output=True)
    engine = make_engine(f"sqlite:///{data / 'servicepoint.db'}")
    seed_demo(engine)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        lead = s.exec(select(Staff).where(Staff.username == "lead1")).one()
        admin = s.exec(select(Staff).where(Staff.username == "admin")).one()
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours = ""
        pw = hash_password("bench-queue-2026")
        for i in range(COUNTERS):
            s.add(Staff(username=f"bench{i}", display_name=f"柜员{i}", password_hash=pw,
                        outlet_id=lead.outlet_id, roles="teller"))
    # line A takes every ticket of the run (its cap, 200 by default, would refuse the display part)
    with Session(engine) as s:
        values = defaults.form_values(defaults.load(s))
    values["lines"][0]["daily_cap"] = str(defaults.MAX_CAP)
    defaults.save(engine, admin, values)
    counters.use_defaults(engine, admin, outlet_id=lead.outlet_id, n_counters=COUNTERS)
    _k, kiosk = devices.pair(engine, lead, kind="kiosk", label="bench kiosk")
    _d, display = devices.pair(engine, lead, kind="hall_display", label="bench display")
    engine.dispose()
    return kiosk, display


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def teller(base: str, i: int) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    token = csrf(c.get("/login").text)
    c.post("/login", data={"username": f"bench{i}", "password": "bench-queue-2026", "csrf_token": token})
    page = c.get("/queue/").text
    c.headers["X-CSRF-Token"] = csrf(page)
    ids = re.findall(r'<option value="(\d+)"', page)
    if 'id="queue-sign-in"' in page:  # not yet signed in today
        c.post("/queue/sign-in", data={"counter_id": ids[i]})
    return c


def kiosk_client(base: str, token: str) -> tuple[httpx.Client, str, str]:
    c = httpx.Client(base_url=base, timeout=30, params={"t": token})
    home = c.get("/queue/kiosk").text
    line = re.search(r'name="line_id" value="(\d+)"', home)
    assert line
    return c, csrf(home), line.group(1)


def issue(k: tuple[httpx.Client, str, str]) -> str:
    c, token, line = k
    r = c.post("/queue/kiosk/ticket", data={"line_id": line, "csrf_token": token})
    assert r.status_code == 201, r.status_code
    m = re.search(r'id="slip-number">([A-Z]\d+)<', r.text)
    assert m
    return m.group(1)


def serve_all(base: str, clients: list[httpx.Client], total: int, lat: list[float]) -> int:
    """Each counter: 呼叫下一位 → 开始办理 → 完成 until ``total`` tickets are done."""
    done = [0]
    lock = threading.Lock()

    def work(c: httpx.Client) -> None:
        while True:
            with lock:
                if done[0] >= total:
                    return
            t0 = time.perf_counter()
            r = c.post("/queue/act/call", headers={"HX-Request": "true"})
            if r.status_code == 409:  # the queue is empty: this counter is finished
                return
            lat.append(time.perf_counter() - t0)
            tid = re.search(r'name="ticket_id" value="(\d+)"', r.text)
            assert tid, r.text[:200]
            c.post("/queue/act/serve", data={"ticket_id": tid.group(1)}, headers={"HX-Request": "true"})
            c.post("/queue/act/done", data={"ticket_id": tid.group(1)}, headers={"HX-Request": "true"})
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0]


def bench_queue(base: str, kiosk: str, n: int) -> tuple[float, float, list[float]]:
    """Issue ``n`` tickets (2 kiosks at once), then 8 counters call and serve them all.
    Returns (issued per second, served per second, 呼叫下一位 latencies)."""
    clients = [teller(base, i) for i in range(COUNTERS)]
    kiosks = [kiosk_client(base, kiosk) for _ in range(2)]
    t0 = time.perf_counter()
    issuers = [threading.Thread(target=lambda k=k: [issue(k) for _ in range(n // 2)]) for k in kiosks]
    for t in issuers:
        t.start()
    for t in issuers:
        t.join()
    issued = (n // 2 * 2) / (time.perf_counter() - t0)
    lat: list[float] = []
    t0 = time.perf_counter()
    served = serve_all(base, clients, n // 2 * 2, lat)
    return issued, served / (time.perf_counter() - t0), lat


def bench_plain(base: str, n: int, clients: int) -> float:
    """Plain POSTs per second with ``clients`` concurrent clients, ``n`` requests in all."""
    def hit(count: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(count):
                c.post("/ok", data={"x": "1"})

    t0 = time.perf_counter()
    threads = [threading.Thread(target=hit, args=(n // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n // clients * clients / (time.perf_counter() - t0)


async def display_latency(base: str, kiosk: str, display: str, calls: int) -> list[float]:
    """20 displays connected; per call, the time until each display has the board with it."""
    ws_url = base.replace("http", "ws") + f"/queue/display/live?t={display}"
    socks = [await websockets.connect(ws_url, origin=base) for _ in range(DISPLAYS)]  # type: ignore[arg-type]
    for s in socks:
        await s.recv()  # the first board
    c = await asyncio.to_thread(teller, base, 0)
    k = await asyncio.to_thread(kiosk_client, base, kiosk)
    lats: list[float] = []
    for _ in range(calls):
        number = await asyncio.to_thread(issue, k)
        for s in socks:  # drain the issue's board
            await wait_for(s, lambda m: any(w["count"] for w in m["board"]["waiting"]))
        t0 = time.perf_counter()
        send = asyncio.create_task(asyncio.to_thread(c.post, "/queue/act/call", headers={"HX-Request": "true"}))
        got = await asyncio.gather(*(wait_for(s, lambda m, n=number: bool(m["announce"]) and m["announce"]["ticket"] == n)
                                     for s in socks))
        lats.extend(t - t0 for t in got)
        r = await send
        tid = re.search(r'name="ticket_id" value="(\d+)"', r.text)
        assert tid
        await asyncio.to_thread(c.post, "/queue/act/serve",
                                data={"ticket_id": tid.group(1)}, headers={"HX-Request": "true"})
        await asyncio.to_thread(c.post, "/queue/act/done", data={"ticket_id": tid.group(1)},
                                headers={"HX-Request": "true"})
        for s in socks:  # drain serve/done boards
            while True:
                try:
                    await asyncio.wait_for(s.recv(), 0.05)
                except TimeoutError:
                    break
    for s in socks:
        await s.close()
    return lats


async def wait_for(sock: websockets.ClientConnection, ok: object) -> float:
    while True:
        msg = json.loads(await sock.recv())
        if ok(msg):  # type: ignore[operator]
            return time.perf_counter()


def browser_display_latency(base: str, kiosk: str, display: str, calls: int) -> list[float] | None:
    """The hall display page in headless Chromium: per call, seconds from sending 呼叫下一位
    to the ticket's number shown in ``#calls`` (None without Chromium)."""
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        return None
    from playwright.sync_api import sync_playwright

    c = teller(base, 1)
    k = kiosk_client(base, kiosk)
    lats: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(base_url=base, locale="zh-CN", viewport={"width": 1920, "height": 1080}).new_page()
        page.goto(f"/devices/activate/{display}")  # sets the device cookie, lands on the display
        page.wait_for_selector("body[data-seq]")  # its WebSocket delivered the first board
        for _ in range(calls):
            number = issue(k)
            sent: list[httpx.Response] = []
            caller = threading.Thread(target=lambda sent=sent: sent.append(
                c.post("/queue/act/call", headers={"HX-Request": "true"})))
            t0 = time.perf_counter()
            caller.start()
            page.wait_for_selector(f"#calls .num:text('{number}')", timeout=60_000)
            lats.append(time.perf_counter() - t0)
            caller.join()
            tid = re.search(r'name="ticket_id" value="(\d+)"', sent[0].text)
            assert tid
            for step in ("serve", "done"):
                c.post(f"/queue/act/{step}", data={"ticket_id": tid.group(1)}, headers={"HX-Request": "true"})
        browser.close()
    return lats


def load() -> str:
    """The load average (1, 5, 15 min), printed beside every figure."""
    return "load " + " / ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=200)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--browser-calls", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        kiosk, display = setup(data)
        env = {**os.environ, "SERVICEPOINT_DATA": str(data), "SERVICEPOINT_CHECKPOINT_INTERVAL": "10"}
        env.pop("SERVICEPOINT_DATABASE_URL", None)
        port, plain_port = free_port(), free_port()
        (data / "plain_app.py").write_text(PLAIN)
        log = open(data / "server.log", "wb")
        app = subprocess.Popen([sys.executable, "-c", "from web.cli import main; main()", "serve", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
        plain = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(data), "plain_app:app",
                                  "--port", str(plain_port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
        base, plain_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{plain_port}"
        try:
            wait_up(base + "/healthz", app)
            wait_up(plain_base + "/ok", plain)
            issued, served, lat = bench_queue(base, kiosk, args.tickets)
            plain2 = bench_plain(plain_base, args.tickets, 2)
            plain8 = bench_plain(plain_base, 3 * args.tickets, COUNTERS)
            print(f"issue: {issued:.1f} tickets/s from 2 kiosks at once "
                  f"(plain endpoint, 2 clients: {plain2:.1f} requests/s → {issued / plain2:.1%}) [{load()}]")
            print(f"call: {served:.1f} tickets/s called, served and finished by {COUNTERS} counters at once "
                  f"(3 requests each; plain endpoint, {COUNTERS} clients: {plain8 / 3:.1f} triples/s → "
                  f"{served / (plain8 / 3):.1%}) [{load()}]")
            print(f"  呼叫下一位 latency: median {statistics.median(lat) * 1000:.1f} ms, "
                  f"p99 {pct(lat, 0.99) * 1000:.1f} ms")
            lats = asyncio.run(display_latency(base, kiosk, display, args.calls))
            print(f"hall display push ({DISPLAYS} displays, {args.calls} calls, {len(lats)} deliveries): "
                  f"median {statistics.median(lats) * 1000:.1f} ms, p99 {pct(lats, 0.99) * 1000:.1f} ms "
                  f"(from sending 呼叫下一位 to the display holding the new board) [{load()}]")
            shown = browser_display_latency(base, kiosk, display, args.browser_calls)
            if shown is None:
                print("hall display in Chromium: skipped (Debian chromium not installed)")
            else:
                print(f"hall display in Chromium ({len(shown)} calls): median {statistics.median(shown) * 1000:.1f} ms, "
                      f"p99 {pct(shown, 0.99) * 1000:.1f} ms, max {max(shown) * 1000:.1f} ms "
                      f"(from sending 呼叫下一位 to the number shown under 正在呼叫) [{load()}]")
        finally:
            for p in (app, plain):
                p.terminate()
                p.wait(timeout=15)
            log.close()


if __name__ == "__main__":
    main()
