"""A relay-only call (two headless Chromium, fake cameras, a real coturn) whose network path
is cut and restored by the test: the call page restarts ICE once per episode, shows no
false error, and the video comes back by itself. Prints the recovery time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import SQLModel

from tests.e2e.test_assist_browser import open_page, wait_playing
from tests.remote_assist.conftest import LiveServer, new_case
from tests.remote_assist.coturn import Coturn
from tests.remote_assist.udp_cut import UdpCut
from web.db import make_engine
from web.settings import Settings

pytestmark = pytest.mark.e2e

# Presented-frame counter and every status text the page showed (for false errors).
WATCH = """() => {
  const v = document.getElementById('remote-video');
  window.__frames = 0;
  const tick = (now, meta) => { window.__frames = meta.presentedFrames; v.requestVideoFrameCallback(tick); };
  v.requestVideoFrameCallback(tick);
  window.__statuses = [];
  const s = document.getElementById('call-status');
  new MutationObserver(() => window.__statuses.push(s.textContent)).observe(s, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def cut_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from partners.demo import seed_demo
    from remote_assist.rtc import restrict_host_addresses
    from web.app import create_app

    turn = Coturn().start()
    fwd = UdpCut(turn.port).start()
    data = tmp_path_factory.mktemp("assist-cut")
    settings = Settings.from_env(data_dir=data / "var", database_url=f"sqlite:///{data / 'sp.db'}",
                                 secret_key_override="e2e-cut-secret",
                                 turn_urls=(f"turn:127.0.0.1:{fwd.port}?transport=udp",),
                                 turn_secret=turn.secret, turn_ttl_seconds=600,
                                 assist_ice_relay_only=True, assist_rtc_hosts=("127.0.0.1",))
    engine = make_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    case = new_case(engine, settings)
    try:
        with LiveServer(create_app(settings)) as server:
            yield {"url": server.url, "case": case, "fwd": fwd}
    finally:
        restrict_host_addresses(None)
        engine.dispose()
        fwd.stop()
        turn.stop()


def frames(page: Any) -> int:
    return int(page.evaluate("window.__frames"))


@pytest.mark.timeout(180)
def test_cut_call_restarts_ice_once_and_video_returns(browser: Any, cut_server: dict[str, Any]) -> None:
    base, case, fwd = cut_server["url"], cut_server["case"], cut_server["fwd"]
    expert = open_page(browser, base, "expert1")
    teller = open_page(browser, base, "teller2")
    expert.goto("/assist/")
    expert.wait_for_selector("#assist-queue")
    teller.goto(f"/assist/new?case={case.id}")
    teller.click("#assist-submit")
    teller.wait_for_url("**/assist/requests/*")
    rid = teller.url.rsplit("/", 1)[1]
    expert.click(f"tr.queue-item[data-request-id='{rid}'] button.accept")
    expert.wait_for_url("**/assist/sessions/*")
    teller.wait_for_url("**/assist/sessions/*")
    wait_playing(teller, "remote-video")
    wait_playing(expert, "remote-video")
    for page in (expert, teller):
        page.evaluate(WATCH)

    for rebind in (False, True):  # the same path returns; then a different path
        episode(expert, teller, fwd, rebind)


def restarts(page: Any) -> int:
    return int(page.get_attribute("#assist-call", "data-ice-restarts") or 0)


def episode(expert: Any, teller: Any, fwd: UdpCut, rebind: bool) -> None:
    counts = {"expert": restarts(expert), "teller": restarts(teller)}
    for page in (expert, teller):
        page.evaluate("window.__statuses = []")
    fwd.cut()
    expert.wait_for_function("() => document.getElementById('call-status').textContent.includes('网络不稳定')",
                             timeout=30_000)
    time.sleep(6)  # the path stays down past the restart trigger: the restart itself is cut
    before = {"expert": frames(expert), "teller": frames(teller)}
    fwd.restore(rebind=rebind)
    t0 = time.monotonic()
    back = {}
    for name, page in (("expert", expert), ("teller", teller)):
        page.wait_for_function("(n) => window.__frames > n + 15", arg=before[name], timeout=40_000)
        back[name] = time.monotonic() - t0
    made = {"expert": restarts(expert) - counts["expert"], "teller": restarts(teller) - counts["teller"]}
    print(f"\n{'new' if rebind else 'same'} path: video back {back['expert']:.1f} s (expert), "
          f"{back['teller']:.1f} s (teller) after it returned; ICE restarts expert {made['expert']}, "
          f"teller requests {made['teller']}")
    for page in (expert, teller):
        shown = page.evaluate("window.__statuses")
        assert not [s for s in shown if "出错" in s], shown
        page.wait_for_function("() => document.getElementById('call-status').textContent === '通话已连接'")
    # One restart per episode, plus one retry for each RESTART_RETRY_MS the path stayed down.
    assert made["expert"] <= 3, made
