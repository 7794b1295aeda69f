"""The recording writer and crash recovery, without a network: frames in, a Matroska file
out that PyAV opens with the expected duration and frame count; files cut off by a crash
are salvaged as "partial" or recorded as "failed" — never left without a record."""

from __future__ import annotations

import fractions
import hashlib
from pathlib import Path

import av
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.files import FileStore
from outlet.models import Case
from partners.models import utcnow
from remote_assist import queue
from remote_assist.evidence import encode_jpeg, jpeg_comment, stamp_jpeg
from remote_assist.models import AssistRecording, AssistSession
from remote_assist.recorder import RecordingWriter
from remote_assist.recordings import RecordingManager, probe
from tests.remote_assist.conftest import audit_entries, staff
from web.settings import Settings


def frame(i: int, width: int = 640, height: int = 480) -> av.VideoFrame:
    f = av.VideoFrame(width, height, "yuv420p")
    for n, plane in enumerate(f.planes):
        plane.update(bytes([(i * 7 + n * 50) % 256]) * plane.buffer_size)
    return f


def audio(i: int) -> av.AudioFrame:
    a = av.AudioFrame(format="s16", layout="stereo", samples=960)
    a.sample_rate = 48000
    a.planes[0].update(bytes(a.planes[0].buffer_size))
    a.pts, a.time_base = i * 960, fractions.Fraction(1, 48000)
    return a


def write(path: Path, seconds: float, fps: int = 15, gap_after: float | None = None, gap: float = 0.0) -> RecordingWriter:
    writer = RecordingWriter(path, tags={"comment": "test"}, max_queue=10_000)
    writer.start()
    offset = 0.0
    for i in range(int(seconds * fps)):
        if gap_after is not None and i == round(gap_after * fps):
            offset += gap
            writer.new_segment()
        t = i / fps + offset
        writer.offer("video", frame(i), 1000.0 + t)
        for k in range(int(50 / fps)):  # ~20 ms audio frames between video frames
            writer.offer("audio", audio(i * 4 + k), 1000.0 + t + k * 0.02)
    writer.close()
    return writer


def test_writer_file_has_expected_duration_and_frames(tmp_path: Path) -> None:
    writer = write(tmp_path / "a.mkv", seconds=3.0)
    assert writer.stats.error is None and writer.stats.dropped_frames == 0
    frames, duration = probe(tmp_path / "a.mkv")  # type: ignore[misc]
    assert frames == 45
    assert abs(duration - 44 / 15) < 0.05
    with av.open(str(tmp_path / "a.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "opus"
        assert {k.lower(): v for k, v in c.metadata.items()}["comment"] == "test"
        assert sum(1 for _ in c.decode(video=0)) == 45


def test_writer_gap_keeps_wall_clock_time(tmp_path: Path) -> None:
    write(tmp_path / "g.mkv", seconds=2.0, gap_after=1.0, gap=2.5)
    frames, duration = probe(tmp_path / "g.mkv")  # type: ignore[misc]
    assert frames == 30
    assert abs(duration - (29 / 15 + 2.5)) < 0.05


def test_snapshot_jpeg_carries_the_stamp() -> None:
    jpeg = stamp_jpeg(encode_jpeg(frame(3)), "session=1 geo=36.1,120.3")
    assert jpeg.startswith(b"\xff\xd8") and jpeg_comment(jpeg) == "session=1 geo=36.1,120.3"
    with av.open(__import__("io").BytesIO(jpeg)) as c:
        decoded = next(c.decode(video=0))
    assert (decoded.width, decoded.height) == (640, 480)


def _open_recording(engine: Engine, case: Case, store: FileStore, name: str) -> tuple[int, Path]:
    req = queue.create_request(engine, staff(engine, "teller2"), kind="inspection", case_id=case.id)
    call = queue.accept(engine, staff(engine, "expert1"), req.id)
    work = store.work_dir / name
    with Session(engine) as s, s.begin():
        s.add(AssistRecording(session_id=call.id, work_path=str(work), started_at=utcnow()))
    assert call.id is not None
    return call.id, work


def test_recover_salvages_a_cut_off_recording(engine: Engine, settings: Settings, food_case: Case) -> None:
    store = FileStore(settings.files_dir)
    sid, work = _open_recording(engine, food_case, store, "crashed.mkv")
    write(work, seconds=4.0)
    data = work.read_bytes()
    work.write_bytes(data[: int(len(data) * 0.6)])  # the process died mid-write
    RecordingManager(engine, store).recover()
    with Session(engine) as s:
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).one()
        call = s.get(AssistSession, sid)
    assert rec.status == "partial" and rec.sha256 is not None and "中断" in (rec.note or "")
    stored = store.path_for(rec.sha256)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == rec.sha256
    frames, _duration = probe(stored)  # type: ignore[misc]
    assert 0 < frames < 60 and rec.video_frames == frames
    assert call is not None and call.state == "active"  # the call goes on: media is peer to peer
    entry = audit_entries(engine, "assist.record")[-1]
    assert entry["digests"] == [{"kind": "recording", "sha256": rec.sha256}]
    assert not work.exists()


def test_recover_records_an_unreadable_file_as_failed(engine: Engine, settings: Settings, food_case: Case) -> None:
    store = FileStore(settings.files_dir)
    sid, work = _open_recording(engine, food_case, store, "garbage.mkv")
    work.write_bytes(b"\x1aE\xdf\xa3 not really matroska")
    RecordingManager(engine, store).recover()
    with Session(engine) as s:
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).one()
    assert rec.status == "failed" and rec.sha256 is None
    assert rec.work_path == str(work) and work.exists()  # the raw file stays, and the row says why
    assert "无法读取" in (rec.note or "")
