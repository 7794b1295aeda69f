"""End to end without a browser: in-process aiortc participants against the app served by
uvicorn on loopback. Signaling, the peer-to-peer call, consent, the server's recorder with a
reconnect, snapshots, the audited conclusion, and refusal of outsiders."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from websockets.exceptions import ConnectionClosed

from outlet.files import FileStore
from outlet.models import Case, CaseEvent
from remote_assist.evidence import jpeg_comment
from remote_assist.loopback import CallPeer, Participant, RecorderFeed, first_frame
from remote_assist.models import AssistRecording, AssistSnapshot
from remote_assist.recordings import probe
from tests.remote_assist.conftest import LiveServer, audit_entries
from web.settings import Settings

HX = {"HX-Request": "true"}


async def expect(peer: CallPeer, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(peer.messages.get(), max(0.01, deadline - time.monotonic()))
        if msg.get("type") == kind and all(msg.get(k) == v for k, v in match.items()):
            return msg


async def open_call(url: str, case: Case) -> tuple[Participant, Participant, int]:
    teller = await Participant(url, "teller2").login()
    expert = await Participant(url, "expert1").login()
    r = await teller.post("/assist/requests", data={"kind": "inspection", "case_id": str(case.id)})
    assert r.status_code == 303, r.text
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    r = await expert.post(f"/assist/requests/{rid}/accept")
    assert r.status_code == 303, r.text
    return teller, expert, int(r.headers["location"].rsplit("/", 1)[1])


async def inspection(url: str, case: Case) -> dict[str, Any]:
    teller, expert, sid = await open_call(url, case)
    tp, ep = CallPeer(teller, sid, "teller"), CallPeer(expert, sid, "expert")
    feeds: list[RecorderFeed] = []
    try:
        await tp.join()
        await ep.join()
        seen = await asyncio.gather(first_frame(await asyncio.wait_for(tp.remote_video, 15)),
                                    first_frame(await asyncio.wait_for(ep.remote_video, 15)))
        assert [(f.width, f.height) for f in seen] == [(640, 480), (640, 480)]

        snap_early = await expert.post(f"/assist/sessions/{sid}/snapshots", data={"point": "0"}, headers=HX)
        assert snap_early.status_code == 409  # no consent yet: no evidence
        r = await teller.post(f"/assist/sessions/{sid}/consent", headers=HX, data={
            "name": "张三", "role": "申请人", "purpose": "远程视频勘验取证", "retention_days": "1095", "confirmed": "1"})
        assert r.status_code == 200
        feeds.append(RecorderFeed(teller, sid))
        assert (await feeds[0].start()).status_code == 200
        await feeds[0].wait_connected()
        started = time.monotonic()
        await expect(tp, "recording", state="on")
        await expect(ep, "recording", state="on")
        await asyncio.sleep(2.0)
        for point in range(7):
            r = await expert.post(f"/assist/sessions/{sid}/snapshots", data={"point": str(point)}, headers=HX)
            assert r.status_code == 200, r.text
        await feeds[0].stop()  # the outlet's page reloads: the record continues after a gap
        await asyncio.sleep(1.0)
        feeds.append(RecorderFeed(teller, sid))
        assert (await feeds[1].start()).status_code == 200
        await feeds[1].wait_connected()
        await asyncio.sleep(1.5)
        for point in range(7):
            r = await expert.post(f"/assist/sessions/{sid}/points/{point}", data={"result": "符合"}, headers=HX)
            assert r.status_code == 200, r.text
        ended = time.monotonic()
        r = await expert.post(f"/assist/sessions/{sid}/conclude", data={"conclusion": "通过", "note": "现场符合要求"},
                              headers=HX)
        assert r.status_code == 200, r.text
        panel = BeautifulSoup(r.text, "html.parser")

        outsider = await Participant(url, "expert2").login()
        sock = await outsider.ws(f"/assist/sessions/{sid}/ws")
        with pytest.raises(ConnectionClosed):
            await sock.recv()
        refused = (sock.close_code, sock.close_reason)
        other_outlet = await Participant(url, "teller1").login()
        stranger_feed = RecorderFeed(other_outlet, sid)
        recorder_refused = (await stranger_feed.start()).status_code
        await stranger_feed.stop()
        for p in (outsider, other_outlet):
            await p.close()

        await ep.send({"type": "hangup"})
        hung = await expect(tp, "hangup")
        return {"sid": sid, "panel": panel, "span": ended - started, "refused": refused,
                "recorder_refused": recorder_refused, "hangup": hung}
    finally:
        for feed in feeds:
            await feed.stop()
        for peer in (tp, ep):
            await peer.close()
        for who in (teller, expert):
            await who.close()


@pytest.mark.timeout(120)
def test_live_inspection_records_snapshots_and_concludes(live: LiveServer, engine: Engine, settings: Settings,
                                                          food_case: Case) -> None:
    out = asyncio.run(inspection(live.url, food_case))
    sid = out["sid"]
    assert out["panel"].select_one("#conclusion-result").get_text(strip=True) == "通过"
    assert out["refused"][0] == 4403 and "参与人" in out["refused"][1]
    assert out["recorder_refused"] == 403
    assert out["hangup"]["type"] == "hangup"

    store = FileStore(settings.files_dir)
    with Session(engine) as s:
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).one()
        snaps = s.exec(select(AssistSnapshot).where(AssistSnapshot.session_id == sid)
                       .order_by(col(AssistSnapshot.id))).all()
        events = s.exec(select(CaseEvent).where(CaseEvent.case_id == food_case.id)).all()
    assert rec.status == "finalized" and rec.sha256
    assert len(rec.gaps) == 1 and rec.gaps[0]["seconds"] >= 0.8 and len(rec.segments) == 2
    frames, duration = probe(store.path_for(rec.sha256))  # type: ignore[misc]
    assert abs(duration - out["span"]) < 1.5, (duration, out["span"])
    active = out["span"] - rec.gaps[0]["seconds"]
    assert 0.7 * 15 * active <= frames <= 1.2 * 15 * active, (frames, active)
    assert rec.video_frames == frames

    assert len(snaps) == 7 and {s.point_index for s in snaps} == set(range(7))
    comment = jpeg_comment(store.path_for(snaps[0].sha256).read_bytes())
    assert comment is not None and f"session={sid}" in comment and "geo=" in comment

    conclusion = audit_entries(engine, "assist.conclude")[-1]
    assert conclusion["case"] == food_case.number and conclusion["state"]["to"] == "passed"
    expected = [{"kind": "snapshot", "sha256": s.sha256} for s in snaps] + [{"kind": "recording", "sha256": rec.sha256}]
    assert conclusion["digests"] == expected
    for digest in conclusion["digests"]:  # every digest matches the stored file
        assert hashlib.sha256(store.path_for(digest["sha256"]).read_bytes()).hexdigest() == digest["sha256"]
    recorded = audit_entries(engine, "assist.record")[-1]
    assert recorded["digests"] == [{"kind": "recording", "sha256": rec.sha256}]
    assert len(audit_entries(engine, "assist.snapshot")) == 7
    assert any(e.action == "assist.conclude" and "通过" in (e.note or "") for e in events)
    with Session(engine) as s:
        from remote_assist.inspections import passed_inspection

        assert passed_inspection(s, food_case.id)  # type: ignore[arg-type]
    assert json.dumps(conclusion, ensure_ascii=False).count("张三") == 0


async def record_then_stop(server: LiveServer, case: Case) -> int:
    teller, expert, sid = await open_call(server.url, case)
    feed = RecorderFeed(teller, sid)
    try:
        r = await teller.post(f"/assist/sessions/{sid}/consent", headers=HX, data={
            "name": "张三", "role": "申请人", "purpose": "远程视频勘验取证", "retention_days": "30", "confirmed": "1"})
        assert r.status_code == 200
        assert (await feed.start()).status_code == 200
        await feed.wait_connected()
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.__exit__, None, None, None)  # the server shuts down mid-recording
        return sid
    finally:
        await feed.stop()
        await teller.close()
        await expert.close()


@pytest.mark.timeout(90)
def test_live_shutdown_keeps_the_recording_as_partial(settings: Settings, engine: Engine, food_case: Case,
                                                      rtc_env: None) -> None:
    from web.app import create_app

    server = LiveServer(create_app(settings)).__enter__()
    sid = asyncio.run(record_then_stop(server, food_case))
    with Session(engine) as s:
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).one()
    assert rec.status == "partial" and rec.note and "服务停止" in rec.note
    path = FileStore(settings.files_dir).path_for(rec.sha256 or "")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256
    frames, _ = probe(path)  # type: ignore[misc]
    assert frames > 10
    assert audit_entries(engine, "assist.record")[-1]["digests"] == [{"kind": "recording", "sha256": rec.sha256}]
