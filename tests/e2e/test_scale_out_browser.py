"""Issue 9 §5 with real browsers: two ``servicepoint serve`` processes on one PostgreSQL, the
teller's Chromium on process A, the expert's on process B, a ``servicepoint recorder`` process.

The request is pushed to the expert across processes, the call's signaling crosses them (each
page's socket is on its own process), both sides see the other's fake camera playing (relayed by
a real coturn on loopback), and the recording is finalized by the recorder process with a file
whose digest matches the row.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outlet.files import FileStore
from tests.e2e.test_assist_browser import open_page, wait_playing
from tests.remote_assist.coturn import Coturn
from tests.web.test_recorder_process import RecorderCluster, _case_id

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def browser_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecorderCluster]:
    """Two app processes (external recorders only) and one recorder process; browsers relay
    through coturn so every packet stays on loopback."""
    turn = Coturn().start()
    for name, value in {"ASSIST_RECORDERS": "external", "ASSIST_RTC_HOSTS": "127.0.0.1",
                        "ASSIST_TICK_SECONDS": "1", "ASSIST_ICE_RELAY_ONLY": "1",
                        "TURN_URLS": turn.url, "TURN_SECRET": turn.secret}.items():
        monkeypatch.setenv("SERVICEPOINT_" + name, value)
    c = RecorderCluster(tmp_path)
    try:
        c.start_recorder()
        yield c
    finally:
        c.stop()
        turn.stop()


@pytest.mark.timeout(300)
def test_browsers_on_two_app_processes_call_and_a_recorder_process_records(
        browser: Any, browser_cluster: RecorderCluster) -> None:
    c = browser_cluster
    case_id = _case_id(c)
    teller = open_page(browser, c.base(0), "teller2")  # the outlet's pages from process A
    expert = open_page(browser, c.base(1), "expert1")  # the expert's from process B
    errors: list[str] = []
    for page in (teller, expert):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        expert.goto("/assist/")
        expert.wait_for_selector("#assist-queue")
        teller.goto(f"/assist/new?case={case_id}")
        teller.click("#assist-submit")
        teller.wait_for_url("**/assist/requests/*")
        rid = teller.url.rsplit("/", 1)[1]
        expert.wait_for_selector(f"tr.queue-item[data-request-id='{rid}']")  # pushed from A to B
        expert.click(f"tr.queue-item[data-request-id='{rid}'] button.accept")
        expert.wait_for_url("**/assist/sessions/*")
        teller.wait_for_url("**/assist/sessions/*")  # the accept on B is pushed to A
        sid = int(expert.url.rsplit("/", 1)[1])

        # offer/answer/ICE cross the processes; each side's remote video plays and advances
        width_t, _ = wait_playing(teller, "remote-video")
        width_e, _ = wait_playing(expert, "remote-video")

        teller.fill("#consent-form input[name=name]", "张三")
        teller.check("#consent-form input[name=confirmed]")
        teller.click("#consent-form button[type=submit]")
        teller.wait_for_selector("#consent-given")
        teller.wait_for_selector("#rec-indicator:not(.hide)", timeout=30_000)  # the recorder process is on
        expert.wait_for_selector("#rec-indicator:not(.hide)")  # and B hears it through the hub
        holder = c.holder(sid)
        expert.wait_for_timeout(2_000)  # a few seconds of video for the recorder
        expert.click("#btn-hangup")
        teller.wait_for_selector("#call-ended", timeout=20_000)
        deadline = time.monotonic() + 30  # finalize: the recorder closes the file, then the row
        while (rec := c.recording(sid)) is None or rec[0] == "recording":
            assert time.monotonic() < deadline, f"recording not finalized: {rec}"
            time.sleep(0.3)
    finally:
        for page in (teller, expert):
            page.context.close()

    assert width_t > 0 and width_e > 0
    assert holder is not None and f"-{c.recorders[0].pid}-" in holder  # held by the recorder, not an app
    status, sha, note, frames = rec
    assert status == "finalized" and sha and frames > 0, note
    stored = FileStore(c.tmp / "mnt-files").path_for(sha)
    data = stored.read_bytes()
    assert data and hashlib.sha256(data).hexdigest() == sha
    assert errors == []
