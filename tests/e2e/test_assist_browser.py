"""Remote inspection in two headless Chromium browsers with fake cameras: the teller asks,
the expert's queue updates by push, the expert accepts, both see the other's video playing
(relay-only through a real coturn on loopback), consent, recording, two snapshots, the
checklist and the conclusion; the case shows the result and the audit log holds digests
that match the stored files."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, select

import audit
from outlet.models import Case
from remote_assist.models import AssistRecording, AssistSession
from tests.e2e.conftest import shot
from tests.remote_assist.conftest import LiveServer, new_case
from tests.remote_assist.coturn import Coturn
from web.db import make_engine
from web.settings import Settings

pytestmark = pytest.mark.e2e

PLAYING = """(id) => { const v = document.getElementById(id);
  return !!v && v.videoWidth > 0 && v.readyState >= 2 && v.currentTime > 0.3; }"""


@pytest.fixture(scope="module")
def assist_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from partners.demo import seed_demo
    from remote_assist.rtc import restrict_host_addresses
    from web.app import create_app

    turn = Coturn().start()
    data = tmp_path_factory.mktemp("assist-e2e")
    settings = Settings.from_env(data_dir=data / "var", database_url=f"sqlite:///{data / 'sp.db'}",
                                 secret_key_override="e2e-assist-secret", turn_urls=(turn.url,),
                                 turn_secret=turn.secret, turn_ttl_seconds=600,
                                 # every packet stays on loopback: browsers relay through coturn,
                                 # the recorder listens on 127.0.0.1
                                 assist_ice_relay_only=True, assist_rtc_hosts=("127.0.0.1",))
    engine = make_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    case = new_case(engine, settings)
    try:
        with LiveServer(create_app(settings)) as server:
            yield {"url": server.url, "engine": engine, "settings": settings, "case": case, "turn": turn}
    finally:
        restrict_host_addresses(None)
        engine.dispose()
        turn.stop()


def open_page(browser: Any, base: str, username: str) -> Any:
    ctx = browser.new_context(base_url=base, locale="zh-CN", permissions=["camera", "microphone"],
                              viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo-12345")
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    assert "/login" not in page.url, f"login of {username} failed"
    return page


def wait_playing(page: Any, video_id: str) -> tuple[int, float]:
    page.wait_for_function(PLAYING, arg=video_id, timeout=30_000)
    first = page.evaluate("(id) => document.getElementById(id).currentTime", video_id)
    page.wait_for_function("([id, t]) => document.getElementById(id).currentTime > t + 0.5", arg=[video_id, first])
    return page.evaluate("(id) => document.getElementById(id).videoWidth", video_id), first


@pytest.mark.timeout(180)
def test_assist_browser_inspection_end_to_end(browser: Any, assist_server: dict[str, Any]) -> None:
    base, engine, case = assist_server["url"], assist_server["engine"], assist_server["case"]
    settings: Settings = assist_server["settings"]
    expert = open_page(browser, base, "expert1")
    teller = open_page(browser, base, "teller2")
    errors: list[str] = []
    for page in (expert, teller):
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    expert.goto("/assist/")
    expert.wait_for_selector("#assist-queue")
    teller.goto(f"/assist/new?case={case.id}")
    assert teller.locator("#assist-checklist li").count() == 7  # shown before the inspection starts
    for radio in teller.locator("input[name=kind]").all():  # each sits on its label's line
        box, label = radio.bounding_box(), radio.locator("xpath=..").bounding_box()
        assert box and label and box["width"] < 30, box
        assert label["y"] <= box["y"] + box["height"] / 2 <= label["y"] + label["height"] < box["y"] + 3 * box["height"]
    teller.click("#assist-submit")
    teller.wait_for_url("**/assist/requests/*")
    rid = teller.url.rsplit("/", 1)[1]
    assert teller.text_content("#assist-position").strip() == "第 1 位"
    expert.wait_for_selector(f"tr.queue-item[data-request-id='{rid}']")  # pushed, not polled
    shot(expert, "expert-queue")

    expert.click(f"tr.queue-item[data-request-id='{rid}'] button.accept")
    expert.wait_for_url("**/assist/sessions/*")
    teller.wait_for_url("**/assist/sessions/*")  # the waiting page follows the accept push
    sid = int(expert.url.rsplit("/", 1)[1])

    width_t, _ = wait_playing(teller, "remote-video")
    width_e, _ = wait_playing(expert, "remote-video")
    assert width_t > 0 and width_e > 0

    teller.fill("#consent-form input[name=name]", "张三")
    teller.check("#consent-form input[name=confirmed]")
    teller.click("#consent-form button[type=submit]")
    teller.wait_for_selector("#consent-given")
    teller.wait_for_selector("#rec-indicator:not(.hide)", timeout=30_000)
    expert.wait_for_selector("#rec-indicator:not(.hide)")
    time.sleep(1.5)  # let the recorder see a few seconds

    # A reload of the outlet's page rejoins the same call; the record continues after a gap.
    before = expert.evaluate("document.getElementById('remote-video').srcObject.id")
    teller.reload()
    wait_playing(teller, "remote-video")
    expert.wait_for_function("(old) => document.getElementById('remote-video').srcObject.id !== old", arg=before)
    wait_playing(expert, "remote-video")
    teller.wait_for_selector("#rec-indicator:not(.hide)", timeout=30_000)
    time.sleep(1.0)

    for point in (0, 1):
        expert.click(f"#point-{point} .snap-form button")
        expert.wait_for_selector(f"#point-{point} img.thumb")
    for point in range(7):
        form = f"#point-{point} .point-form"
        if point >= 2:
            expert.check(f"{form} input[name=snapshot_ids] >> nth={point % 2}")
        expert.select_option(f"{form} select[name=result]", "符合")
        expert.click(f"{form} button[type=submit]")
        expert.wait_for_selector(f"#point-{point} .badge.ok")
    expert.select_option("#conclude-form select[name=conclusion]", "通过")
    expert.click("#conclude-form button[type=submit]")
    expert.wait_for_selector("#conclusion-result")
    assert expert.text_content("#conclusion-result").strip() == "通过"
    assert expert.locator("#conclusion-digests li").count() == 3  # two snapshots and the recording
    teller.wait_for_selector("#conclusion-result")  # pushed to the other side
    shot(expert, "inspection-expert")
    shot(teller, "inspection-teller")

    expert.click("#btn-hangup")
    teller.wait_for_selector("#call-ended", timeout=20_000)
    expert.wait_for_selector("#call-ended", timeout=20_000)

    teller.goto(f"/assist/cases/{case.id}")
    assert teller.text_content("#case-inspection-result").strip() == "通过"
    assert teller.locator("#assist-case img.thumb").count() == 2
    assert errors == []

    store_root = Path(settings.files_dir)
    with Session(engine) as s:
        entries = audit.search_entries(s, action="assist.conclude", limit=10).entries
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).one()
        call = s.get(AssistSession, sid)
        stored_case = s.get(Case, case.id)
    digests = entries[0].entry["digests"]
    assert [d["kind"] for d in digests] == ["snapshot", "snapshot", "recording"]
    assert digests[-1]["sha256"] == rec.sha256 and rec.status == "finalized"
    assert len(rec.segments) >= 2 and len(rec.gaps) >= 1  # the reload, noted in the record
    for d in digests:
        path = store_root / d["sha256"][:2] / d["sha256"][2:]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == d["sha256"]
    assert entries[0].entry["case"] == stored_case.number  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while call is not None and set(call.stats) != {"teller", "expert"} and time.monotonic() < deadline:
        time.sleep(0.3)
        with Session(engine) as s:
            call = s.get(AssistSession, sid)
    assert call is not None and set(call.stats) == {"teller", "expert"}  # per-call stats summaries
    for page in (teller, expert):
        page.context.close()
