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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=5)
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
            print(f"call set-up bench: {a.calls} calls, relay-only through coturn, headless Chromium")
            for k in range(a.calls):
                case = new_case(engine, settings)
                one_call(expert, teller, case.id, times)
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


def one_call(expert: Any, teller: Any, case_id: int | None, times: dict[str, list[float]]) -> None:
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
    expert.click("#btn-hangup")
    teller.wait_for_selector("#call-ended", timeout=20_000)
    expert.wait_for_selector("#call-ended", timeout=20_000)


if __name__ == "__main__":
    main()
