"""Recorders as a service: which process records a session, and how a request reaches it.

A *recorder* is any process running a :class:`RecorderService` — the app itself (the
default, ``SERVICEPOINT_ASSIST_RECORDERS=in-process``: nothing extra to run) or one or more
``servicepoint recorder`` processes (``external``), on this host or others, sharing the
database and the file store. The app never needs to know where a recorder runs:

* A recorder announces itself with a presence row on ``assist.recorders`` (member
  ``"<process id> <capacity>"``) and serves requests published on
  ``assist.recorder.req.<its process id>``; replies go to ``assist.recorder.reply.<asker>``.
* The lease of a session is the presence row ``assist.rec.<session id>`` that the recorder
  writes in the same transaction as the ``assist_recording`` row; it counts while the
  recorder's heartbeat (``hub_process.seen_at``, every 5 s) is younger than 20 s. While it
  counts, every offer (a reconnect), snapshot and finalize of that session goes to that
  recorder; the first offer goes to the live recorder with the most free capacity.
* A recorder that dies (SIGKILL, power, network) stops beating; the app's sweep (one process
  under its lease) then salvages its partial file from the shared ``assist-work/`` directory
  (``RecordingManager.recover``) and tells both participants. The call itself continues —
  media is peer to peer — and the record says where it was cut off.
* A call's end reaches every process through the hub; a recorder finalizes what it holds.

``Recorders`` is the app's side (on ``AssistRuntime.recorders``): when the target recorder
is the app's own, it is called directly, without a round trip through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.events import Event, Hub
from outlet.files import FileStore
from partners.errors import ActionRefused
from partners.models import Staff
from remote_assist.errors import AssistError, NotFound, RecordingUnavailable
from remote_assist.models import AssistRecording
from remote_assist.recordings import REC_CHANNEL, RecordingManager
from remote_assist.signaling import CALL_TOPIC, CallHub, _pump

log = logging.getLogger("servicepoint.assist.recorders")

RECORDERS = "assist.recorders"  # presence channel of live recorders
REQUEST_TOPIC = "assist.recorder.req."  # + the recorder's process id
REPLY_TOPIC = "assist.recorder.reply."  # + the asking app's process id
DEFAULT_CAPACITY = 8  # sessions per recorder (≈13 streams of 640×480@15 fps per core measured)
TIMEOUTS = {"offer": 30.0, "snapshot": 30.0, "finalize": 120.0}  # seconds before "unavailable"


class RecorderUnavailable(RecordingUnavailable):
    """No recorder with free capacity is alive, or the one holding the session did not answer."""

    status_code = 503
    message = "录像服务暂时不可用，请稍后重试"


class RemoteRefusal(ActionRefused):
    """A refusal decided (and audited) by the recorder process, passed on unchanged."""


class RecorderService:
    """The recording side, in whichever process runs it: a ``RecordingManager`` and the
    requests addressed to this process."""

    def __init__(self, engine: Engine, store: FileStore, hub: Hub, *, capacity: int = DEFAULT_CAPACITY,
                 server_ice: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self.engine = engine
        self.hub = hub
        self.capacity = max(1, capacity)
        self.manager = RecordingManager(engine, store, notify=CallHub(hub).broadcast, server_ice=server_ice)
        self.manager.presence = hub.presence
        self._token: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Announce this recorder and serve requests (call after ``hub.start()``)."""
        if self._task is not None:
            return
        sub = self.hub.subscribe(REQUEST_TOPIC + self.hub.process_id, CALL_TOPIC + "*")
        self._task = asyncio.create_task(_pump(sub, self._handle))
        self._token = await asyncio.to_thread(self.hub.presence.join, RECORDERS,
                                              f"{self.hub.process_id} {self.capacity}")

    async def _handle(self, ev: Event) -> None:
        if ev.topic.startswith(CALL_TOPIC):
            if ev.payload.get("kind") == "end":  # the call ended, wherever: close its record here
                sid = int(ev.topic.rsplit(".", 1)[1])
                if sid in self.manager.live:
                    await self.manager.finalize(sid)
            return
        task = asyncio.create_task(self._serve(ev.payload))  # an offer must not wait for a finalize
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, req: dict[str, Any]) -> None:
        try:
            out = {"ok": True, "result": await self.call(str(req.get("op")), dict(req.get("args") or {}))}
        except AssistError as exc:
            out = {"ok": False, "status": exc.status_code, "error": exc.message, "field": exc.field}
        except ActionRefused as exc:
            out = {"ok": False, "status": exc.status_code, "error": exc.message, "refused": exc.code}
        except Exception:
            log.exception("recorder request %s failed", req.get("op"))
            out = {"ok": False, "status": 500, "error": "录像服务内部错误"}
        with contextlib.suppress(Exception):
            await self.hub.apublish(REPLY_TOPIC + str(req.get("reply")), {"id": req.get("id"), **out})

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run one request here. ``op``: ``offer`` {user, session, sdp, type} → the answer;
        ``snapshot`` {user, session, point, note} → {snapshot_id}; ``finalize`` {session}."""
        sid = int(args["session"])
        if op == "finalize":
            await self.manager.finalize(sid)
            return {}
        user = await asyncio.to_thread(self._staff, int(args["user"]))
        if op == "offer":
            return await self.manager.offer(user, sid, str(args.get("sdp", "")), str(args.get("type", "")))
        if op == "snapshot":
            point = args.get("point")
            snap = await self.manager.snapshot(user, sid, point_index=None if point is None else int(point),
                                               note=str(args.get("note", "")))
            return {"snapshot_id": snap.id}
        raise AssistError("未知的录像服务请求")

    def _staff(self, user_id: int) -> Staff:
        with Session(self.engine, expire_on_commit=False) as s:
            user = s.get(Staff, user_id)
        if user is None or not user.active:
            raise NotFound()
        return user

    async def close(self) -> None:
        """Stop serving; every live record is closed and kept as ``partial``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._serving):
            task.cancel()
        await self.manager.close_all()
        if self._token is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.hub.presence.leave, self._token)
            self._token = None


class Recorders:
    """The app's way to its recorders (``local`` is this process' own, or None when only
    ``servicepoint recorder`` processes record)."""

    def __init__(self, hub: Hub, local: RecorderService | None = None) -> None:
        self.hub = hub
        self.local = local
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            sub = self.hub.subscribe(REPLY_TOPIC + self.hub.process_id)
            self._task = asyncio.create_task(_pump(sub, self._reply))
        if self.local is not None:
            await self.local.start()

    async def _reply(self, ev: Event) -> None:
        fut = self._waiting.pop(str(ev.payload.get("id")), None)
        if fut is not None and not fut.done():
            fut.set_result(ev.payload)

    # --- where ----------------------------------------------------------------------------

    def holder(self, session_id: int) -> str | None:
        """The live recorder process holding the session's lease, if any (blocking)."""
        members = self.hub.presence.members(f"{REC_CHANNEL}{session_id}")
        return next(iter(sorted(m for _c, m in members)), None)

    def available(self) -> list[tuple[str, int, int]]:
        """Live recorders as ``(process id, capacity, sessions held)`` (blocking)."""
        load: dict[str, int] = {}
        for _c, pid in self.hub.presence.members(prefix=REC_CHANNEL):
            load[pid] = load.get(pid, 0) + 1
        out = []
        for _c, member in self.hub.presence.members(RECORDERS):
            pid, _sep, cap = member.rpartition(" ")
            out.append((pid, int(cap or DEFAULT_CAPACITY), load.get(pid, 0)))
        return out

    def choose(self, session_id: int) -> str:
        """The recorder for ``session_id``: its lease holder, else the live recorder with the
        most free places (ties at random). Raises ``RecorderUnavailable`` (blocking)."""
        held = self.holder(session_id)
        if held is not None:
            return held
        free = [(cap - n, pid) for pid, cap, n in self.available() if n < cap]
        if not free:
            raise RecorderUnavailable("暂无空闲的录像服务，请稍后重试")
        most = max(f for f, _p in free)
        return random.choice([pid for f, pid in free if f == most])

    # --- what -----------------------------------------------------------------------------

    async def _call(self, target: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.local is not None and target == self.hub.process_id:
            return await self.local.call(op, args)
        rid = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await self.hub.apublish(REQUEST_TOPIC + target, {"op": op, "id": rid, "reply": self.hub.process_id,
                                                             "args": args})
            async with asyncio.timeout(TIMEOUTS[op]):
                reply = await fut
        except TimeoutError:
            raise RecorderUnavailable() from None
        finally:
            self._waiting.pop(rid, None)
        if not reply.get("ok"):
            if reply.get("refused"):
                exc: Exception = RemoteRefusal(str(reply.get("error")), code=str(reply["refused"]))
                exc.status_code = int(reply.get("status") or 409)  # type: ignore[attr-defined]
                raise exc
            err = AssistError(str(reply.get("error")), field=reply.get("field"))
            err.status_code = int(reply.get("status") or 500)
            raise err
        return dict(reply.get("result") or {})

    def _closed(self, session_id: int) -> bool:
        """The session's record exists and is no longer open (blocking)."""
        with Session(self.hub.engine) as s:
            status = s.exec(select(AssistRecording.status).where(AssistRecording.session_id == session_id)).first()
        return status is not None and status != "recording"

    async def offer(self, user: Staff, session_id: int, sdp: str, kind: str) -> dict[str, str]:
        """The outlet browser's offer → the recorder's answer (the first offer opens the record).
        A record already closed (finalized, or salvaged after its recorder died) is refused
        here, 409, even when no recorder is alive: the page stops retrying."""
        if await asyncio.to_thread(self._closed, session_id):
            raise RecordingUnavailable("本次通话的录像已经结束，不能继续录制")
        target = await asyncio.to_thread(self.choose, session_id)
        return {k: str(v) for k, v in (await self._call(target, "offer", {
            "user": user.id, "session": session_id, "sdp": sdp, "type": kind})).items()}

    async def snapshot(self, expert: Staff, session_id: int, *, point_index: int | None = None,
                       note: str = "") -> int:
        """取证截图 by the recorder of the session; returns the snapshot id."""
        target = await asyncio.to_thread(self.holder, session_id)
        if target is None:
            raise RecordingUnavailable("尚未收到网点的视频画面，暂时无法截图")
        got = await self._call(target, "snapshot", {"user": expert.id, "session": session_id,
                                                    "point": point_index, "note": note})
        return int(got["snapshot_id"])

    async def finalize(self, session_id: int) -> None:
        """Close the session's live record, wherever it is written, and wait for it."""
        target = await asyncio.to_thread(self.holder, session_id)
        if target is None and self.local is not None and session_id in self.local.manager.live:
            target = self.hub.process_id
        if target is not None:
            await self._call(target, "finalize", {"session": session_id})

    def is_recording(self, session_id: int) -> bool:
        """Whether the session's record is open: frames arriving here, or a live recorder
        elsewhere holds it (blocking)."""
        if self.local is not None and session_id in self.local.manager.live:
            return self.local.manager.is_recording(session_id)
        held = self.holder(session_id)
        return held is not None and held != self.hub.process_id

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for fut in self._waiting.values():
            fut.cancel()
        self._waiting.clear()
        if self.local is not None:
            await self.local.close()


async def run_recorder(engine: Engine, store: FileStore, *, capacity: int,
                       server_ice: Callable[[], dict[str, Any] | None], stop: asyncio.Event,
                       reader: Engine | None = None) -> None:
    """The body of ``servicepoint recorder``: a hub of kind ``recorder`` and one service,
    until ``stop`` is set (SIGTERM/SIGINT), then every live record is closed as partial."""
    hub = Hub(engine, kind="recorder", reader=reader)
    await hub.start()
    service = RecorderService(engine, store, hub, capacity=capacity, server_ice=server_ice)
    try:
        await service.start()
        log.info("recorder %s ready (capacity %d sessions)", hub.process_id, capacity)
        await stop.wait()
    finally:
        await service.close()
        await hub.close()
