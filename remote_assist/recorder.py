"""The server-side recorder: an aiortc peer per session that receives the outlet's camera
and audio and writes one continuous Matroska file (H.264 + Opus).

* ``RecordingWriter`` owns the container in its own thread (encoding never blocks the event
  loop). Frames reach it through a bounded queue; when the encoder cannot keep up, frames
  are dropped and counted instead of piling up in memory.
* Timestamps come from the server's monotonic clock, so a reconnect continues the same
  file: the time without frames simply passes, and the session notes the gap.
* ``SessionRecorder`` holds the current peer connection; a new offer (page reload, ICE
  failure) replaces the old connection, never the file. Matroska stays readable up to the
  last written cluster if the process dies, which is what the startup recovery relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from partners.models import utcnow
from remote_assist.rtc import rtc_configuration

log = logging.getLogger("servicepoint.assist.recorder")

MAX_WIDTH, MAX_HEIGHT = 1280, 720
AUDIO_RATE = 48000
_STOP = object()


@dataclass
class WriterStats:
    video_frames: int = 0
    audio_frames: int = 0
    dropped_frames: int = 0
    width: int = 0
    height: int = 0
    duration_seconds: float = 0.0
    error: str | None = None


class RecordingWriter:
    """One Matroska file written by one thread."""

    def __init__(self, path: Path, *, tags: dict[str, str] | None = None, fps: int = 15,
                 max_queue: int = 90) -> None:
        self.path = Path(path)
        self.tags = dict(tags or {})
        self.fps = fps
        self.stats = WriterStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name=f"rec-{self.path.stem}", daemon=True)
        self._t0: float | None = None
        self._last_video_ms = -1
        self._audio_next: int | None = None
        self._resync_audio = True
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def new_segment(self) -> None:
        """The next audio frame realigns audio time with the wall clock (after a gap)."""
        self._resync_audio = True

    def offer(self, kind: str, frame: av.VideoFrame | av.AudioFrame, at: float) -> bool:
        """Queue a decoded frame received at monotonic time ``at``; False if dropped."""
        with self._lock:
            if self._t0 is None:
                self._t0 = at
        try:
            self._queue.put_nowait((kind, frame, at - self._t0))
            return True
        except queue.Full:
            if kind == "video":
                self.stats.dropped_frames += 1
            return False

    def close(self, timeout: float = 30.0) -> WriterStats:
        """Flush the encoders and close the file (blocking; call it from a thread)."""
        if self._thread.is_alive():
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        return self.stats

    # --- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        container = None
        try:
            # A cluster at least every second, flushed as it is written: a process killed
            # mid-call leaves a file readable up to about a second before the kill (the
            # muxer's default is a cluster per 5 s, kept in a buffer until then).
            container = av.open(str(self.path), "w", format="matroska",
                                container_options={"cluster_time_limit": "1000", "flush_packets": "1"})
            for key, value in self.tags.items():
                container.metadata[key] = value
            video = audio = None
            early: list[tuple[av.AudioFrame, float]] = []  # audio before the first video frame
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                kind, frame, rel = item
                if video is None and (kind == "video" or len(early) >= 100):
                    # Every stream must exist before the first packet is muxed; the video size
                    # comes from the first frame (or a default if the camera never delivers).
                    video = self._add_video(container, frame if kind == "video" else None)
                    audio = container.add_stream("libopus", rate=AUDIO_RATE)
                    audio.layout = "stereo"
                    for a_frame, a_rel in early:
                        self._write_audio(container, audio, a_frame, a_rel)
                    early.clear()
                if kind == "video":
                    self._write_video(container, video, frame, rel)
                elif audio is None:
                    early.append((frame, rel))
                else:
                    self._write_audio(container, audio, frame, rel)
                del frame, item
            for stream in (video, audio):
                if stream is not None:
                    for packet in stream.encode(None):
                        container.mux(packet)
        except Exception as exc:  # keep what was written; the caller records the error
            log.exception("recording %s failed", self.path)
            self.stats.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()

    def _add_video(self, container: Any, first: av.VideoFrame | None) -> Any:
        width, height = (first.width, first.height) if first is not None else (640, 480)
        scale = min(1.0, MAX_WIDTH / width, MAX_HEIGHT / height)
        width, height = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
        stream = container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "28"}
        self.stats.width, self.stats.height = width, height
        return stream

    def _write_video(self, container: Any, stream: Any, frame: av.VideoFrame, rel: float) -> None:
        ms = max(int(rel * 1000), self._last_video_ms + 1)
        self._last_video_ms = ms
        image = frame.reformat(width=self.stats.width, height=self.stats.height, format="yuv420p")
        image.pts, image.time_base = ms, Fraction(1, 1000)
        for packet in stream.encode(image):
            container.mux(packet)
        self.stats.video_frames += 1
        self.stats.duration_seconds = max(self.stats.duration_seconds, ms / 1000)

    def _write_audio(self, container: Any, stream: Any, frame: av.AudioFrame, rel: float) -> None:
        wall = int(rel * AUDIO_RATE)
        if self._audio_next is None or self._resync_audio or wall - self._audio_next > AUDIO_RATE // 5:
            self._audio_next = max(wall, self._audio_next or 0)
            self._resync_audio = False
        samples = int(frame.samples * AUDIO_RATE / (frame.sample_rate or AUDIO_RATE))
        frame.pts, frame.time_base = self._audio_next, Fraction(1, AUDIO_RATE)
        self._audio_next += samples
        for packet in stream.encode(frame):
            container.mux(packet)
        self.stats.audio_frames += 1


EventCallback = Callable[[str], Awaitable[None]]


@dataclass
class SessionRecorder:
    """The live recording of one session: the writer, the current peer and the timeline."""

    session_id: int
    writer: RecordingWriter
    on_event: EventCallback | None = None
    pc: RTCPeerConnection | None = None
    latest: av.VideoFrame | None = None
    latest_at: float = 0.0
    segments: list[dict[str, str]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _segment_start: datetime | None = None
    _last_end: datetime | None = None
    closed: bool = False

    async def accept_offer(self, sdp: str, kind: str, ice: dict[str, Any] | None) -> dict[str, str]:
        """Answer a new offer from the outlet; it replaces any previous connection."""
        if self.closed:
            raise RuntimeError("recorder closed")
        await self.detach()
        pc = RTCPeerConnection(rtc_configuration(ice))
        self.pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            task = asyncio.ensure_future(self._pump(track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.pc is pc:
                await self.detach()

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        await pc.setLocalDescription(await pc.createAnswer())
        local = pc.localDescription
        return {"sdp": local.sdp, "type": local.type}

    async def _pump(self, track: MediaStreamTrack) -> None:
        first = True
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            now = time.monotonic()
            if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                continue
            if first:
                first = False
                await self._segment_started()
            if isinstance(frame, av.VideoFrame):
                self.latest, self.latest_at = frame, now
            self.writer.offer(track.kind, frame, now)
            del frame
        await self._segment_ended()

    async def _segment_started(self) -> None:
        if self._segment_start is not None:
            return
        now = utcnow()
        self.writer.new_segment()
        if self._last_end is not None:
            self.gaps.append({"from": _iso(self._last_end), "to": _iso(now),
                              "seconds": round((now - self._last_end).total_seconds(), 3)})
        self._segment_start = now
        if self.on_event is not None:
            await self.on_event("on")

    async def _segment_ended(self) -> None:
        if self._segment_start is None:
            return
        now = utcnow()
        self.segments.append({"start": _iso(self._segment_start), "end": _iso(now)})
        self._segment_start, self._last_end = None, now
        if self.on_event is not None and not self.closed:
            await self.on_event("paused")

    def snapshot_frame(self, max_age: float = 5.0) -> av.VideoFrame | None:
        if self.latest is None or time.monotonic() - self.latest_at > max_age:
            return None
        return self.latest

    async def detach(self) -> None:
        """Close the current peer connection (the file stays open)."""
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._segment_ended()
        self.latest = None

    async def close(self) -> WriterStats:
        """Stop receiving and close the file."""
        self.closed = True
        await self.detach()
        stats = await asyncio.to_thread(self.writer.close)
        if self.on_event is not None:
            await self.on_event("off")
        return stats


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds") + "Z"
