"""Everything remote help keeps alive while the app runs: its side of the event hub (call
signaling, the live feed), the way to the recorders (its own, in-process by default, or
``servicepoint recorder`` processes: ``remote_assist.recorders``) and the periodic sweep. One
``AssistRuntime`` per app, on ``app.state.assist``, started and closed by the app's lifespan
(``lifespan_hooks``) or lazily on first use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import Engine

from outlet.events import Hub, singleton
from partners.models import utcnow
from remote_assist import queue as assist_queue
from remote_assist import sessions
from remote_assist.config import AssistConfig
from remote_assist.errors import AssistError
from remote_assist.recorders import DEFAULT_CAPACITY, Recorders, RecorderService
from remote_assist.recordings import RecordingManager
from remote_assist.signaling import CallHub, EventHub
from remote_assist.turn import ice_config

log = logging.getLogger("servicepoint.assist")


class AssistRuntime:
    def __init__(self, settings: Any, engine: Engine, cfg: AssistConfig | None = None,
                 hub: Hub | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.cfg = cfg or AssistConfig.from_settings(settings)
        self.hub = hub or Hub(engine)
        self._own_hub = hub is None
        self.calls = CallHub(self.hub, on_end=self._call_ended)
        self.events = EventHub(self.hub)
        self.store = settings.file_store()
        local = None
        if getattr(settings, "assist_recorders", "in-process") != "external":
            local = RecorderService(engine, self.store, self.hub, server_ice=self.server_ice,
                                    capacity=getattr(settings, "assist_recorder_capacity", DEFAULT_CAPACITY))
        self.recorders = Recorders(self.hub, local)
        self._sweeper: asyncio.Task[None] | None = None
        self.started = False

    def server_ice(self) -> dict[str, Any]:
        """ICE config of the server's own (recorder) peer."""
        return ice_config(self.settings, "recorder", relay_only=self.cfg.ice_relay_only)

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        if self.cfg.rtc_host_addresses:
            from remote_assist.rtc import restrict_host_addresses  # aiortc only when configured

            restrict_host_addresses(self.cfg.rtc_host_addresses)
        if self._own_hub:
            await self.hub.start()
        await self.calls.start()
        await self.events.start()
        await self.recorders.start()
        self._sweeper = asyncio.create_task(singleton(
            self.engine, self.hub.process_id, "assist.sweep", self.cfg.tick_seconds, self.sweep))

    async def sweep(self) -> None:
        """Escalate / expire waiting requests; end calls nobody came back to; salvage the
        recordings of recorder processes that died. One process at a time runs it."""
        now = utcnow()
        if self.recorders.local is not None:
            self.recorders.local.manager.prune()
        salvage = RecordingManager(self.engine, self.store)
        salvage.presence = self.hub.presence
        handled = await asyncio.to_thread(salvage.recover)
        if handled:
            log.warning("recovered %d recordings left open by a recorder that stopped", len(handled))
        for sid in handled:  # the call goes on; both sides see the record was cut off
            await self.calls.broadcast(sid, {"type": "recording", "state": "lost"})
        domains = await asyncio.to_thread(assist_queue.sweep_requests, self.engine, now, self.cfg)
        if domains:
            await self.events.queue_changed(domains)
        connected = await asyncio.to_thread(self.calls.connected_sessions)
        for sid in await asyncio.to_thread(sessions.abandoned, self.engine, now, self.cfg, connected):
            await self.end_call(sid, by=None, reason="timeout")

    async def _call_ended(self, session_id: int) -> None:
        """In every process, when a call ends: close a recording of it held here first
        (a ``servicepoint recorder`` hears the same end event)."""
        if self.recorders.local is not None and session_id in self.recorders.local.manager.live:
            await self.recorders.local.manager.finalize(session_id)

    async def end_call(self, session_id: int, *, by: int | None, reason: str) -> bool:
        """End a call for both sides: state, recording, sockets (on every process), queue views."""
        ended = await asyncio.to_thread(sessions.end_call, self.engine, session_id, by=by, reason=reason)
        try:
            await self.recorders.finalize(session_id)  # wherever it is recorded, before the sides hear
        except AssistError as exc:  # a recorder that does not answer: it hears the end below,
            log.warning("finalizing the recording of call %s: %s", session_id, exc.message)  # or is salvaged
        await self.calls.end(session_id, {"type": "hangup", "reason": reason})
        if ended:
            await self.events.queue_changed(None)
        return ended

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.recorders.close()
        await self.calls.close()
        await self.events.close()
        if self._own_hub:
            await self.hub.close()
        self.started = False


def runtime_for(app: Any) -> AssistRuntime:
    """The app's runtime, created on first use when the lifespan did not create it."""
    runtime = getattr(app.state, "assist", None)
    if runtime is None:
        runtime = AssistRuntime(app.state.settings, app.state.engine, hub=getattr(app.state, "hub", None))
        app.state.assist = runtime
    return runtime


@contextlib.asynccontextmanager
async def lifespan_hooks(app: Any):  # type: ignore[no-untyped-def]
    """Wire into the app's lifespan after ``app.state.engine`` (and ``app.state.hub``) are set:

        async with remote_assist.runtime.lifespan_hooks(app):
            yield
    """
    runtime = runtime_for(app)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.close()
