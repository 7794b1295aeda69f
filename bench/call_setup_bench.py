"""Call set-up in real browsers: prints numbers, asserts nothing.

    python bench/call_setup_bench.py [--calls 5]

Two headless Chromium contexts (Debian's chromium, fake camera and microphone, Playwright),
the app under uvicorn in a thread, a real coturn on loopback, relay-only ICE (every packet
through TURN, as in the browser tests). For each call the teller asks for help, the expert
clicks 接听, and the time from the click to the first remote video frame presented on each
side is measured in the browsers (``requestVideoFrameCallback``, clock of the expert's
page for the click). Prints every call and the median (goal: < 1.0 s)."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Injected into every page: the wall-clock time the remote video presented its first frame.
FIRST_FRAME = """document.addEventListener('DOMContentLoaded', () => {
  const v = document.getElementById('remote-video');
  if (v) v.requestVideoFrameCallback(() => { window.__firstFrame = performance.timeOrigin + performance.now(); });
});"""

# With --phases: when each step of the set-up happened on each page (wall clock, ms).
PHASES = """(function () {
  window.__t = {};
  var mark = function (k) { if (!(k in window.__t)) window.__t[k] = performance.timeOrigin + performance.now(); };
  mark('page');
  document.addEventListener('DOMContentLoaded', function () { mark('dom'); });
  var WS = window.WebSocket;
  window.WebSocket = function (url, p) {
    var w = p === undefined ? new WS(url) : new WS(url, p);
    if (/\\/ws$/.test(String(url))) {
      w.addEventListener('open', function () { mark('ws open'); });
      w.addEventListener('message', function (e) { try { mark('got ' + JSON.parse(e.data).type); } catch (x) {} });
    }
    return w;
  };
  window.WebSocket.prototype = WS.prototype;
  var send = WS.prototype.send;
  WS.prototype.send = function (d) { try { mark('sent ' + JSON.parse(d).type); } catch (x) {} return send.call(this, d); };
  if (navigator.mediaDevices) {
    var gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = function (c) { mark('camera asked'); return gum(c).then(function (s) { mark('camera open'); return s; }); };
  }
  var f = window.fetch;
  window.fetch = function (u, o) { var r = f(u, o); if (/\\/ice$/.test(String(u))) r.then(function () { mark('ice servers'); }); return r; };
  var PC = window.RTCPeerConnection;
  window.RTCPeerConnection = function (c) {
    var p = new PC(c); mark('pc created');
    p.addEventListener('icegatheringstatechange', function () { mark('gathering ' + p.iceGatheringState); });
    p.addEventListener('connectionstatechange', function () { mark('pc ' + p.connectionState); });
    p.addEventListener('track', function () { mark('track'); });
    return p;
  };
  window.RTCPeerConnection.prototype = PC.prototype;
})();"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--phases", action="store_true", help="print when each set-up step happened")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from sqlmodel import SQLModel

    from partners.demo import seed_demo
    from remote_assist.rtc import restrict_host_addresses
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.e2e.test_assist_browser import open_page
    from tests.remote_assist.conftest import LiveServer, new_case
    from tests.remote_assist.coturn import Coturn
    from web.app import create_app
    from web.db import make_engine
    from web.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="call-bench-"))
    turn = Coturn().start()
    settings = Settings.from_env(data_dir=data / "var", database_url=f"sqlite:///{data / 'sp.db'}",
                                 secret_key_override="call-bench", turn_urls=(turn.url,),
                                 turn_secret=turn.secret, turn_ttl_seconds=600,
                                 assist_ice_relay_only=True, assist_rtc_hosts=("127.0.0.1",))  # fmt: skip
    engine = make_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    times: dict[str, list[float]] = {"expert": [], "teller": []}
    try:
        with LiveServer(create_app(settings)) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            expert = open_page(browser, server.url, "expert1")
            teller = open_page(browser, server.url, "teller2")
            for page in (expert, teller):
                page.context.add_init_script(FIRST_FRAME)
                if a.phases:
                    page.context.add_init_script(PHASES)
            print(f"call set-up bench: {a.calls} calls, relay-only through coturn, headless Chromium")
            for k in range(a.calls):
                case = new_case(engine, settings)
                one_call(expert, teller, case.id, times, phases=a.phases)
                print(f"  call {k + 1}: accept → first remote frame: expert "
                      f"{times['expert'][-1] * 1000:.0f} ms, teller {times['teller'][-1] * 1000:.0f} ms",
                      flush=True)  # fmt: skip
            browser.close()
    finally:
        restrict_host_addresses(None)
        engine.dispose()
        turn.stop()
        shutil.rmtree(data, ignore_errors=True)
    for side, v in times.items():
        print(f"  {side:6s}: median {statistics.median(v) * 1000:.0f} ms, "
              f"min {min(v) * 1000:.0f} ms, max {max(v) * 1000:.0f} ms")
    both = [max(x, y) for x, y in zip(times["expert"], times["teller"], strict=True)]
    print(f"  both sides: median {statistics.median(both) * 1000:.0f} ms (goal < 1000 ms)")


def one_call(expert: Any, teller: Any, case_id: int | None, times: dict[str, list[float]],
             phases: bool = False) -> None:
    expert.goto("/assist/")
    expert.wait_for_selector("#assist-queue")
    teller.goto(f"/assist/new?case={case_id}")
    teller.click("#assist-submit")
    teller.wait_for_url("**/assist/requests/*")
    rid = teller.url.rsplit("/", 1)[1]
    button = f"tr.queue-item[data-request-id='{rid}'] button.accept"
    expert.wait_for_selector(button)
    clicked = expert.evaluate("() => performance.timeOrigin + performance.now()")
    expert.click(button)
    expert.wait_for_url("**/assist/sessions/*")
    teller.wait_for_url("**/assist/sessions/*")
    for name, page in (("expert", expert), ("teller", teller)):
        at = page.wait_for_function("() => window.__firstFrame", timeout=30_000).json_value()
        times[name].append((at - clicked) / 1000)
    if phases:
        for name, page in (("expert", expert), ("teller", teller)):
            marks = page.evaluate("() => window.__t || {}")
            steps = sorted((t - clicked, k) for k, t in marks.items())
            print(f"    {name}: " + ", ".join(f"{k} {ms:.0f}" for ms, k in steps), flush=True)
    expert.click("#btn-hangup")
    teller.wait_for_selector("#call-ended", timeout=20_000)
    expert.wait_for_selector("#call-ended", timeout=20_000)


if __name__ == "__main__":
    main()
