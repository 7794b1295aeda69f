"""Recordings and snapshots as evidence: consent first, one record per session, content-
addressed files, audit entries with their digests, and recovery after a restart.

The manager lives on the app's runtime (``app.state``), never in a module global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.events import Presence
from outlet.files import FileStore
from partners.errors import ActionRefused
from partners.models import Outlet, Staff, utcnow
from remote_assist.actions import assist_action
from remote_assist.errors import ConsentRequired, InvalidInput, NotParticipant, RecordingUnavailable
from remote_assist.evidence import Stamp, encode_jpeg, stamp_jpeg
from remote_assist.models import (
    AssistInspection,
    AssistRecording,
    AssistRequest,
    AssistSession,
    AssistSnapshot,
)
from remote_assist.sessions import consent_of, load_call, require_active

if TYPE_CHECKING:
    from remote_assist.recorder import SessionRecorder

# aiortc and PyAV (remote_assist.recorder, and av in probe/salvage) are imported on first use:
# together they are ~2 s of start-up and tens of MiB that a process which never records (most
# app processes, and every one on a day without 勘验 calls) should not hold.

log = logging.getLogger("servicepoint.assist.recordings")

REC_CHANNEL = "assist.rec."
Notify = Callable[[int, dict[str, Any]], Awaitable[None]]


def _stamp(session: Session, call: AssistSession, at: datetime) -> Stamp:
    req = session.get(AssistRequest, call.request_id)
    outlet = session.get(Outlet, req.outlet_id) if req else None
    assert call.id is not None
    return Stamp(call.id, at, outlet.code if outlet else "", outlet.latitude if outlet else None,
                 outlet.longitude if outlet else None)


class RecordingManager:
    def __init__(self, engine: Engine, store: FileStore, notify: Notify | None = None,
                 server_ice: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self.engine = engine
        self.store = store
        self.notify = notify
        self.server_ice = server_ice or (lambda: None)
        self.live: dict[int, SessionRecorder] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Which process records a session: a presence row on ``assist.rec.<id>`` written with
        # the recording row, so another process never salvages a file that is still written.
        self.presence: Presence | None = None
        self._held: dict[int, int] = {}  # session id → presence token

    def _lock(self, session_id: int) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    def prune(self) -> None:
        """Forget the locks of sessions without a live recorder (keeps memory flat)."""
        for sid, lock in list(self._locks.items()):
            if sid not in self.live and not lock.locked():
                del self._locks[sid]

    # --- the outlet's peer ------------------------------------------------------------------

    def _prepare(self, user: Staff, session_id: int) -> tuple[AssistRecording, Stamp, bool]:
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            call, role = load_call(s, user, session_id)
            if role != "teller":
                raise NotParticipant("录像由网点一侧的浏览器发起")
            require_active(call)
            req = s.get(AssistRequest, call.request_id)
            if req is None or not req.recording_required:
                raise RecordingUnavailable("本次通话无需录像")
            if consent_of(s, session_id) is None:
                raise ConsentRequired()
            rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == session_id)).first()
            created = rec is None
            if rec is None:
                now = utcnow()
                stamp = _stamp(s, call, now)
                work = self.store.work_dir / f"session-{session_id}-{int(now.timestamp())}.mkv"
                rec = AssistRecording(session_id=session_id, work_path=str(work), started_at=now,
                                      latitude=stamp.latitude, longitude=stamp.longitude)
                s.add(rec)
                s.flush()
            elif rec.status != "recording":
                raise RecordingUnavailable("本次通话的录像已经结束，不能继续录制")
            if self.presence is not None and session_id not in self._held:
                channel = f"{REC_CHANNEL}{session_id}"
                if self.presence.members_in(s, channel):
                    raise RecordingUnavailable("本次通话的录像正由另一服务进程处理，请稍后重试")
                self._held[session_id] = self.presence.join_in(s, channel, self.presence.process_id)
            return rec, _stamp(s, call, rec.started_at), created

    async def offer(self, user: Staff, session_id: int, sdp: str, kind: str) -> dict[str, str]:
        """Answer the outlet browser's offer; the first offer opens the record."""
        if kind != "offer" or not sdp:
            raise InvalidInput("无效的连接请求")
        async with self._lock(session_id):
            rec, stamp, _created = await asyncio.to_thread(self._prepare, user, session_id)
            live = self.live.get(session_id)
            if live is None:
                tags = {"title": f"远程视频录像 会话 {session_id}", "comment": stamp.text(),
                        "creation_time": rec.started_at.isoformat() + "Z"}
                if stamp.iso6709():
                    tags["location"] = stamp.iso6709() or ""
                assert rec.work_path is not None
                from remote_assist.recorder import (  # aiortc: see the note above
                    RecordingWriter,
                    SessionRecorder,
                )

                writer = RecordingWriter(Path(rec.work_path), tags=tags)
                writer.start()
                live = SessionRecorder(session_id, writer, on_event=self._event_for(session_id))
                self.live[session_id] = live
            return await live.accept_offer(sdp, kind, self.server_ice())

    def _event_for(self, session_id: int) -> Callable[[str], Awaitable[None]]:
        async def on_event(state: str) -> None:
            if self.notify is not None:
                await self.notify(session_id, {"type": "recording", "state": state})
        return on_event

    def is_recording(self, session_id: int) -> bool:
        live = self.live.get(session_id)
        return live is not None and live.latest is not None

    # --- snapshots -----------------------------------------------------------------------

    async def snapshot(self, expert: Staff, session_id: int, *, point_index: int | None = None,
                       note: str = "") -> AssistSnapshot:
        """取证截图: a still of the outlet's current video, stored, hashed and audited."""
        with Session(self.engine) as s:
            call, role = load_call(s, expert, session_id)
            if role != "expert":
                raise NotParticipant("只有远程专家可以取证截图")
            require_active(call)
            if consent_of(s, session_id) is None:
                raise ConsentRequired()
            insp = s.exec(select(AssistInspection).where(AssistInspection.session_id == session_id)).first()
            if point_index is not None and (insp is None or not 0 <= point_index < len(insp.checklist)):
                raise InvalidInput("勘验要点不存在", field="point")
            request_id = call.request_id
        live = self.live.get(session_id)
        frame = live.snapshot_frame() if live else None
        if frame is None:
            raise RecordingUnavailable("尚未收到网点的视频画面，暂时无法截图")
        now = utcnow()
        with Session(self.engine) as s:
            stamp = _stamp(s, call, now)
        data = await asyncio.to_thread(lambda: stamp_jpeg(encode_jpeg(frame), stamp.text()))
        stored = await asyncio.to_thread(self.store.put_bytes, data)
        snap = await asyncio.to_thread(
            self._record_snapshot, expert, request_id, session_id, stored.sha256, stored.size,
            frame.width, frame.height, stamp, point_index, " ".join(note.split())[:255],
        )
        if self.notify is not None:
            await self.notify(session_id, {"type": "snapshot", "id": snap.id, "point": point_index})
        return snap

    def _record_snapshot(self, expert: Staff, request_id: int, session_id: int, sha: str, size: int,
                         width: int, height: int, stamp: Stamp, point: int | None, note: str) -> AssistSnapshot:
        assert expert.id is not None
        with assist_action(self.engine, expert, "assist.snapshot", request_id, at=stamp.at) as (act, _):
            snap = AssistSnapshot(session_id=session_id, sha256=sha, size=size, width=width,
                                  height=height, taken_at=stamp.at, taken_by=expert.id,
                                  latitude=stamp.latitude, longitude=stamp.longitude,
                                  point_index=point, note=note)
            act.session.add(snap)
            act.session.flush()
            act.add_digest("snapshot", sha)
        return snap

    # --- finishing ---------------------------------------------------------------------------

    async def finalize(self, session_id: int, *, status: str = "finalized",
                       note: str | None = None) -> AssistRecording | None:
        """Close the live record of ``session_id`` (if any), store and audit it."""
        async with self._lock(session_id):
            live = self.live.pop(session_id, None)
            if live is None:
                return None
            stats = await live.close()
            try:
                return await asyncio.to_thread(
                    self._store_and_audit, session_id, status, note, stats.video_frames,
                    stats.dropped_frames, stats.error, live.segments, live.gaps,
                )
            finally:
                token = self._held.pop(session_id, None)
                if token is not None and self.presence is not None:
                    await asyncio.to_thread(self.presence.leave, token)

    def _store_and_audit(self, session_id: int, status: str, note: str | None, frames: int,
                         dropped: int, error: str | None, segments: list[dict[str, Any]],
                         gaps: list[dict[str, Any]]) -> AssistRecording | None:
        with Session(self.engine) as s:
            rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == session_id)).first()
        if rec is None or rec.work_path is None:
            return None
        work = Path(rec.work_path)
        info = probe(work) if work.exists() else None
        if info is None or info[0] == 0:
            status, note = "failed", (note or "") + ("；" if note else "") + (error or "未收到任何视频画面")
            stored = None
        else:
            stored = self.store.put_file(work)
        return self._finish_row(session_id, status=status, note=note, stored=stored,
                                frames=info[0] if info else frames, duration=info[1] if info else 0.0,
                                dropped=dropped, segments=segments, gaps=gaps)

    def _finish_row(self, session_id: int, *, status: str, note: str | None, stored: Any,
                    frames: int, duration: float, dropped: int, segments: list[dict[str, Any]],
                    gaps: list[dict[str, Any]]) -> AssistRecording | None:
        with Session(self.engine) as s:
            call = s.get(AssistSession, session_id)
            expert = s.get(Staff, call.expert_id) if call else None
        if call is None or expert is None:
            return None

        def fill(rec: AssistRecording, at: datetime) -> None:
            rec.status, rec.note, rec.finalized_at, rec.ended_at = status, note, at, rec.ended_at or at
            rec.video_frames, rec.duration_seconds, rec.dropped_frames = frames, round(duration, 3), dropped
            rec.segments, rec.gaps = list(segments) or rec.segments, list(gaps) or rec.gaps
            if stored is not None:
                rec.sha256, rec.size, rec.work_path = stored.sha256, stored.size, None

        try:
            with assist_action(self.engine, expert, "assist.record", call.request_id) as (act, _):
                rec = act.session.exec(select(AssistRecording).where(
                    AssistRecording.session_id == session_id)).one()
                fill(rec, act.at)
                act.session.add(rec)
                if stored is not None:
                    act.add_digest("recording", stored.sha256)
                act.state = ("recording", status)
            return rec
        except ActionRefused as refused:  # the file is kept and the row says why
            log.warning("recording of session %s stored without audit entry: %s", session_id, refused)
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == session_id)).one()
                fill(rec, utcnow())
                rec.note = ((rec.note or "") + f"；审计登记被拒绝：{refused.message}")[:255]
                s.add(rec)
            return rec

    async def close_all(self) -> None:
        """Shutdown: every live record is closed cleanly and kept as partial."""
        for session_id in list(self.live):
            with contextlib.suppress(Exception):
                await self.finalize(session_id, status="partial", note="服务停止，录像保存至停止时刻")

    def recover(self) -> list[int]:
        """Records left open by a recorder that died (a ``servicepoint recorder`` or an app
        process, SIGKILL or power loss) are salvaged (partial) or marked failed; the calls
        themselves go on (media is peer to peer) and the row says where the record was cut
        off. Records a live process still writes are left alone. Returns the session ids
        handled, so the caller tells their participants."""
        with Session(self.engine) as s:
            rows = s.exec(select(AssistRecording).where(AssistRecording.status == "recording")).all()
        writing = {int(c.removeprefix(REC_CHANNEL)) for c, _m in
                   self.presence.members(prefix=REC_CHANNEL)} if self.presence is not None else set()
        handled = []
        for rec in rows:
            if rec.session_id in writing or rec.session_id in self.live:
                continue
            handled.append(rec.session_id)
            work = Path(rec.work_path) if rec.work_path else None
            salvaged = salvage(work, self.store.work_dir) if work and work.exists() else None
            if salvaged is None:
                why = "录像文件缺失" if not (work and work.exists()) else "录像文件无法读取，原文件保留"
                self._finish_row(rec.session_id, status="failed", note=f"录像进程异常中断；{why}",
                                 stored=None, frames=0, duration=0.0, dropped=rec.dropped_frames,
                                 segments=rec.segments, gaps=rec.gaps)
            else:
                path, frames, duration = salvaged
                stored = self.store.put_file(path)
                assert work is not None
                work.unlink(missing_ok=True)
                self._finish_row(rec.session_id, status="partial",
                                 note="录像进程异常中断，录像保存至中断时刻", stored=stored, frames=frames,
                                 duration=duration, dropped=rec.dropped_frames, segments=rec.segments,
                                 gaps=rec.gaps)
        return handled


def probe(path: Path) -> tuple[int, float] | None:
    """(video frames, duration seconds) of a recording, or None if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return (0, 0.0)
            stream = container.streams.video[0]
            frames, last = 0, 0.0
            for packet in container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                frames += 1
                last = max(last, float(packet.pts * packet.time_base))
            return frames, last
    except (av.FFmpegError, OSError, ValueError):
        return None


def salvage(path: Path, work_dir: Path) -> tuple[Path, int, float] | None:
    """Remux the readable part of a file cut off by a crash into a clean Matroska file."""
    import av

    out_path = work_dir / (path.stem + "-salvaged.mkv")
    frames, last = 0, 0.0
    try:
        with av.open(str(path)) as src, av.open(str(out_path), "w", format="matroska") as dst:
            for key, value in src.metadata.items():
                dst.metadata[key] = value
            mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
            for packet in src.demux(*[s for s in src.streams if s.index in mapping]):
                if packet.dts is None or packet.size == 0:
                    continue
                is_video = packet.stream.type == "video"
                packet.stream = mapping[packet.stream.index]
                dst.mux(packet)
                if is_video:
                    frames += 1
                    last = max(last, float(packet.pts * packet.time_base)) if packet.pts is not None else last
    except (av.FFmpegError, OSError, ValueError):
        if frames == 0:
            out_path.unlink(missing_ok=True)
            return None
    if frames == 0:
        out_path.unlink(missing_ok=True)
        return None
    return out_path, frames, last
