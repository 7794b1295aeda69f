"""Browser-less participants for tests and the benchmark: synthetic camera and microphone
tracks, and an aiortc client that logs in, joins a call over the signaling WebSocket and
plays the same roles as ``assist-call.js`` (the expert offers, the teller answers; the teller
also feeds the server's recorder after consent)."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import re
import time
from typing import Any

import av
import httpx
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from websockets.exceptions import ConnectionClosed

from remote_assist.rtc import rtc_configuration

VIDEO_CLOCK = 90000


class SyntheticVideo(MediaStreamTrack):
    """A moving test pattern at ``fps`` (real-time paced), like a fake camera."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 15, variants: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._start: float | None = None
        self._count = 0
        self._planes = [self._pattern(i, variants) for i in range(variants)]

    def _pattern(self, i: int, n: int) -> tuple[bytes, bytes, bytes]:
        shift = i * 256 // n
        row = bytes((x + shift) & 0xFF for x in range(self.width))
        y = b"".join(row if (r // 32 + i) % 2 else row[::-1] for r in range(self.height))
        cw, ch = self.width // 2, self.height // 2
        u = bytes([(64 + 8 * i) & 0xFF]) * (cw * ch)
        v = bytes([(192 - 8 * i) & 0xFF]) * (cw * ch)
        return y, u, v

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, self._planes[self._count % len(self._planes)], strict=True):
            plane.update(data)
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class SyntheticAudio(MediaStreamTrack):
    """A quiet 440 Hz tone in 20 ms frames (48 kHz, mono s16)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._samples = 0
        tone = [int(3000 * math.sin(2 * math.pi * 440 * n / 48000)) for n in range(960)]
        self._data = b"".join(s.to_bytes(2, "little", signed=True) for s in tone)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._samples / 48000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._data)
        frame.sample_rate = 48000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += 960
        return frame


async def first_frame(track: MediaStreamTrack, timeout: float = 10.0) -> av.VideoFrame:
    frame = await asyncio.wait_for(track.recv(), timeout)
    assert isinstance(frame, av.VideoFrame)
    return frame


async def drain(track: MediaStreamTrack) -> None:
    """Consume a received track so its decoder keeps running (like a <video> element)."""
    try:
        while True:
            await track.recv()
    except (MediaStreamError, asyncio.CancelledError):
        pass


class Participant:
    """A logged-in staff member with an HTTP client (cookies + CSRF) for the live server."""

    def __init__(self, base_url: str, username: str, password: str = "demo-12345") -> None:
        self.base = base_url.rstrip("/")
        self.username, self.password = username, password
        self.http = httpx.AsyncClient(base_url=self.base, follow_redirects=False, timeout=30)
        self.csrf = ""

    async def login(self) -> Participant:
        page = await self.http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "login page without CSRF field"
        r = await self.http.post("/login", data={"username": self.username, "password": self.password,
                                                 "csrf_token": token.group(1)})
        if r.status_code != 303:
            raise RuntimeError(f"login of {self.username} failed: {r.status_code}")
        home = await self.http.get(r.headers["location"], follow_redirects=True)
        found = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
        self.csrf = found.group(1) if found else token.group(1)
        self.http.headers["X-CSRF-Token"] = self.csrf
        return self

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.post(path, **kwargs)

    async def ws(self, path: str) -> Any:
        from websockets.asyncio.client import connect

        url = "ws" + self.base[len("http"):] + path
        return await connect(url, additional_headers={"Cookie": self.cookie_header(), "Origin": self.base},
                             max_size=2**20)

    async def close(self) -> None:
        await self.http.aclose()


class CallPeer:
    """One side of the peer-to-peer call, driven by the signaling WebSocket."""

    def __init__(self, who: Participant, session_id: int, role: str, ice: dict[str, Any] | None = None) -> None:
        self.who, self.sid, self.role, self.ice = who, session_id, role, ice
        self.pc: RTCPeerConnection | None = None
        self.video = SyntheticVideo()
        self.audio = SyntheticAudio()
        self.remote_video: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.socket: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._drains: list[asyncio.Task[None]] = []

    async def join(self) -> None:
        self.socket = await self.who.ws(f"/assist/sessions/{self.sid}/ws")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                msg = json.loads(text)
                kind = msg.get("type")
                both_here = kind == "peer-joined" or (kind == "welcome" and msg.get("peer_present"))
                if both_here and self.role == "expert":
                    await self._offer()
                elif kind == "offer" and self.role == "teller":
                    await self._answer(msg["sdp"])
                elif kind == "answer" and self.pc is not None:
                    await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
                else:
                    await self.messages.put(msg)
        except ConnectionClosed:  # closed by the server (hang-up, refusal)
            return

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(rtc_configuration(self.ice))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and not self.remote_video.done():
                self.remote_video.set_result(track)
            elif track.kind == "audio":
                self._drains.append(asyncio.ensure_future(drain(track)))

        return pc

    def _live_tracks(self) -> None:
        """Closing a peer connection stops its tracks (aiortc); a camera would keep running,
        so a re-negotiation gets fresh synthetic ones."""
        if self.video.readyState != "live":
            self.video = SyntheticVideo()
        if self.audio.readyState != "live":
            self.audio = SyntheticAudio()

    async def _offer(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        self._live_tracks()
        self.pc = self._new_pc()
        self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.socket.send(json.dumps({"type": "offer", "sdp": self.pc.localDescription.sdp}))

    async def _answer(self, sdp: str) -> None:
        if self.pc is not None:
            await self.pc.close()
        self._live_tracks()
        self.pc = self._new_pc()
        self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.socket.send(json.dumps({"type": "answer", "sdp": self.pc.localDescription.sdp}))

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def close(self) -> None:
        for task in self._drains:
            task.cancel()
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.pc is not None:
            await self.pc.close()
        self.video.stop()
        self.audio.stop()


class RecorderFeed:
    """The outlet's second peer connection, to the server's recorder (HTTP offer/answer)."""

    def __init__(self, who: Participant, session_id: int, ice: dict[str, Any] | None = None,
                 video: MediaStreamTrack | None = None) -> None:
        self.who, self.sid, self.ice = who, session_id, ice
        self.video = video or SyntheticVideo()
        self.audio = SyntheticAudio()
        self.pc: RTCPeerConnection | None = None

    async def start(self) -> httpx.Response:
        self.pc = RTCPeerConnection(rtc_configuration(self.ice))
        self.pc.addTrack(self.video)
        self.pc.addTrack(self.audio)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await self.who.post(f"/assist/sessions/{self.sid}/recorder",
                                json={"sdp": self.pc.localDescription.sdp, "type": "offer"})
        if r.status_code == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(**r.json()))
        return r

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pc is not None and self.pc.connectionState != "connected":
            if time.monotonic() > deadline:
                raise TimeoutError(f"recorder connection state {self.pc.connectionState}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
