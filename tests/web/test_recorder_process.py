"""Recorders as their own processes, and a real call across two app processes (PostgreSQL).

Two ``servicepoint serve`` processes and ``servicepoint recorder`` processes share one
database and one file store, with ``SERVICEPOINT_ASSIST_RECORDERS=external`` (the apps
record nothing themselves). The participants are aiortc peers (``remote_assist.loopback``),
the same roles as the browsers' ``assist-call.js``: real media, real signaling, real files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outlet.files import FileStore
from remote_assist.loopback import CallPeer, Participant, RecorderFeed, first_frame
from remote_assist.recordings import probe
from tests.remote_assist.conftest import audit_entries, new_case
from tests.web.test_crash_server import CLI
from tests.web.test_scale_out import Cluster
from web.db import make_engine
from web.settings import Settings

pytestmark = pytest.mark.postgres
WAIT = 20.0  # seconds: bounded waits for pushes and media, not speed goals
HX = {"HX-Request": "true"}


class RecorderCluster(Cluster):
    """Two app processes that only hand sessions to recorder processes."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.recorders: list[subprocess.Popen[bytes]] = []
        self.settings = Settings.from_env(data_dir=tmp / "var", database_url=self.url)

    def start_recorder(self) -> subprocess.Popen[bytes]:
        n = len(self.recorders)
        proc = subprocess.Popen([*CLI, "recorder", "--capacity", "4"], env=self.env,
                                stdout=(self.tmp / f"recorder-{n}.log").open("ab"), stderr=subprocess.STDOUT)
        self.recorders.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # ready: its presence row on the recorders' channel
            if self.query("SELECT 1 FROM hub_presence WHERE channel = 'assist.recorders' AND member LIKE :m",
                          m=f"%-{proc.pid}-%"):
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("recorder did not start: " + (self.tmp / f"recorder-{n}.log").read_text())

    def holder(self, sid: int) -> str | None:
        rows = self.query("SELECT member FROM hub_presence WHERE channel = :c", c=f"assist.rec.{sid}")
        return rows[0][0] if rows else None

    def recording(self, sid: int) -> Any:
        rows = self.query("SELECT status, sha256, note, video_frames FROM assist_recording WHERE session_id = :s",
                          s=sid)
        return rows[0] if rows else None

    def entries(self, action: str) -> list[dict[str, Any]]:
        engine = make_engine(self.url)
        try:
            return audit_entries(engine, action)
        finally:
            engine.dispose()

    def stop(self) -> None:
        for proc in self.recorders:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        super().stop()


@pytest.fixture
def rcluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecorderCluster]:
    monkeypatch.setenv("SERVICEPOINT_ASSIST_RECORDERS", "external")
    monkeypatch.setenv("SERVICEPOINT_ASSIST_RTC_HOSTS", "127.0.0.1")  # media on loopback
    monkeypatch.setenv("SERVICEPOINT_ASSIST_TICK_SECONDS", "1")
    from remote_assist.rtc import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])  # the test's own peers too (aioice skips loopback)
    c = RecorderCluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()
        restrict_host_addresses(None)


def _case_id(c: RecorderCluster) -> int:
    engine = make_engine(c.url)
    try:
        case = new_case(engine, c.settings)  # a 食品经营许可 case of teller2's outlet
    finally:
        engine.dispose()
    assert case.id is not None
    return case.id


async def _open_call(teller: Participant, expert: Participant, case_id: int) -> int:
    r = await teller.post("/assist/requests", data={"kind": "inspection", "case_id": str(case_id)})
    assert r.status_code == 303, r.text
    r = await expert.post(f"/assist/requests/{int(r.headers['location'].rsplit('/', 1)[1])}/accept")
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


async def _consent(teller: Participant, sid: int) -> None:
    r = await teller.post(f"/assist/sessions/{sid}/consent", headers=HX, data={
        "name": "张三", "role": "申请人", "purpose": "远程视频勘验取证", "retention_days": "30", "confirmed": "1"})
    assert r.status_code == 200, r.text


async def _expect(peer: CallPeer, kind: str, **match: Any) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            msg = await peer.messages.get()
            if msg.get("type") == kind and all(msg.get(k) == v for k, v in match.items()):
                return msg


def _on_other_process(who: Participant, base: str) -> Participant:
    """The same login (cookie, CSRF token) with its next page load served by another process."""
    again = Participant(base, who.username)
    again.http.cookies = who.http.cookies
    again.csrf = who.csrf
    again.http.headers["X-CSRF-Token"] = who.csrf
    return again


async def _until(check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(check)
        if got:
            return got
        await asyncio.sleep(0.3)
    return await asyncio.to_thread(check)


@pytest.mark.timeout(300)
def test_call_across_two_app_processes_recorded_by_a_recorder_process(rcluster: RecorderCluster) -> None:
    c = rcluster
    recorder = c.start_recorder()
    case_id = _case_id(c)

    async def scenario() -> dict[str, Any]:
        teller = await Participant(c.base(0), "teller2").login()  # the outlet's pages from process A
        expert = await Participant(c.base(1), "expert1").login()  # the expert's from process B
        teller_b = _on_other_process(teller, c.base(1))
        sid = await _open_call(teller, expert, case_id)
        tp, ep = CallPeer(teller, sid, "teller"), CallPeer(expert, sid, "expert")
        tp2 = CallPeer(teller_b, sid, "teller")
        feed = RecorderFeed(teller, sid)
        try:
            await tp.join()
            await ep.join()
            seen = await asyncio.gather(first_frame(await asyncio.wait_for(tp.remote_video, WAIT), WAIT),
                                        first_frame(await asyncio.wait_for(ep.remote_video, WAIT), WAIT))
            # the teller reloads; the page and its socket land on process B: the old socket on
            # A is replaced (4409), the expert re-offers and media flows again
            await tp2.join()
            await _expect(tp2, "welcome", peer_present=True)
            await _until(lambda: tp._reader is not None and tp._reader.done(), WAIT)
            replaced = tp.socket.close_code
            after_reload = await first_frame(await asyncio.wait_for(tp2.remote_video, WAIT), WAIT)

            await _consent(teller, sid)
            offered = await feed.start()  # through process A, to the recorder process
            await feed.wait_connected(WAIT)
            await _expect(tp2, "recording", state="on")  # pushed by the recorder, through the hub
            await _expect(ep, "recording", state="on")
            holder = await asyncio.to_thread(c.holder, sid)
            await asyncio.sleep(2.0)
            snap = await expert.post(f"/assist/sessions/{sid}/snapshots", data={"point": "0"}, headers=HX)
            await ep.send({"type": "hangup"})
            hung = await _expect(tp2, "hangup")
            rec = await _until(lambda: (r := c.recording(sid)) is not None and r[0] != "recording" and r, WAIT)
            return {"sid": sid, "seen": [(f.width, f.height) for f in seen], "replaced": replaced,
                    "after_reload": (after_reload.width, after_reload.height), "offered": offered.status_code,
                    "holder": holder, "snap": snap.status_code, "hangup": hung, "rec": rec}
        finally:
            await feed.stop()
            for peer in (tp, tp2, ep):
                await peer.close()
            for who in (teller, teller_b, expert):
                await who.close()

    out = asyncio.run(scenario())
    assert out["seen"] == [(640, 480), (640, 480)]
    assert out["replaced"] == 4409 and out["after_reload"] == (640, 480)
    assert out["offered"] == 200 and f"-{recorder.pid}-" in (out["holder"] or "")
    assert out["snap"] == 200 and out["hangup"]["reason"] == "hangup"
    status, sha, _note, frames = out["rec"]
    assert status == "finalized" and sha and frames > 0
    stored = FileStore(c.tmp / "mnt-files").path_for(sha)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    probed = probe(stored)
    assert probed is not None and probed[0] == frames
    (snaps,), = c.query("SELECT count(*) FROM assist_snapshot WHERE session_id = :s", s=out["sid"])
    assert snaps == 1 and len(c.entries("assist.snapshot")) == 1
    assert c.entries("assist.record")[-1]["digests"] == [{"kind": "recording", "sha256": sha}]


@pytest.mark.timeout(300)
def test_recorder_killed_mid_call_is_salvaged_and_a_second_recorder_takes_new_sessions(
        rcluster: RecorderCluster) -> None:
    c = rcluster
    first = c.start_recorder()
    case_ids = [_case_id(c), _case_id(c)]

    async def scenario() -> dict[str, Any]:
        teller = await Participant(c.base(0), "teller2").login()
        expert = await Participant(c.base(1), "expert1").login()
        sid = await _open_call(teller, expert, case_ids[0])
        tp, ep = CallPeer(teller, sid, "teller"), CallPeer(expert, sid, "expert")
        feeds = [RecorderFeed(teller, sid)]
        try:
            await tp.join()
            await ep.join()
            track = await asyncio.wait_for(ep.remote_video, WAIT)
            await first_frame(track, WAIT)
            await _consent(teller, sid)
            assert (await feeds[0].start()).status_code == 200
            await feeds[0].wait_connected(WAIT)
            await _expect(ep, "recording", state="on")
            await asyncio.sleep(3.0)
            os.kill(first.pid, signal.SIGKILL)  # the recorder dies mid-call
            first.wait(10)
            # detected when its heartbeat goes stale; the sweep salvages the partial file
            rec = await _until(lambda: (r := c.recording(sid)) is not None and r[0] != "recording" and r, 60)
            lost = await _expect(tp, "recording", state="lost")
            still = await first_frame(track, WAIT)  # the call itself goes on, peer to peer
            (state,), = await asyncio.to_thread(c.query, "SELECT state FROM assist_session WHERE id = :s", s=sid)
            feeds.append(RecorderFeed(teller, sid))
            again = await feeds[-1].start()  # the teller's page retries: this record is closed
            await ep.send({"type": "hangup"})
            await _expect(tp, "hangup")

            second = await asyncio.to_thread(c.start_recorder)
            sid2 = await _open_call(teller, expert, case_ids[1])
            await _consent(teller, sid2)
            feeds.append(RecorderFeed(teller, sid2))
            new = await feeds[-1].start()
            await feeds[-1].wait_connected(WAIT)
            holder2 = await asyncio.to_thread(c.holder, sid2)
            return {"sid": sid, "rec": rec, "lost": lost, "still": (still.width, still.height), "state": state,
                    "again": (again.status_code, again.json().get("error", "")), "new": new.status_code,
                    "holder2": holder2, "second": second.pid}
        finally:
            for feed in feeds:
                await feed.stop()
            for peer in (tp, ep):
                await peer.close()
            for who in (teller, expert):
                await who.close()

    out = asyncio.run(scenario())
    status, sha, note, frames = out["rec"]
    assert (status, bool(sha)) == ("partial", True), note
    assert frames > 0 and "录像进程异常中断" in note
    stored = FileStore(c.tmp / "mnt-files").path_for(sha)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    assert out["lost"] == {"type": "recording", "state": "lost"}
    assert out["still"] == (640, 480) and out["state"] == "active"
    assert out["again"][0] == 409 and "已经结束" in out["again"][1]
    [entry] = c.entries("assist.record")
    assert entry["digests"] == [{"kind": "recording", "sha256": sha}]  # the salvaged file is in the log
    assert out["new"] == 200 and f"-{out['second']}-" in (out["holder2"] or "")


def test_recorder_command_and_external_recorders_refuse_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "SERVICEPOINT_DATA": str(tmp_path / "var")}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    out = subprocess.run([*CLI, "recorder"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "servicepoint recorder 需要 PostgreSQL" in out.stderr
    env["SERVICEPOINT_ASSIST_RECORDERS"] = "external"
    out = subprocess.run([*CLI, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "SERVICEPOINT_ASSIST_RECORDERS=external 需要 PostgreSQL" in out.stderr
    assert not (tmp_path / "var" / "servicepoint.db").exists()  # refused before touching anything
