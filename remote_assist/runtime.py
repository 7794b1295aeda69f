"""Everything remote help keeps alive while the app runs: the signaling hubs, the recorder
manager and the periodic sweep. One ``AssistRuntime`` per app, on ``app.state.assist``,
started and closed by the app's lifespan (``lifespan_hooks``) or lazily on first use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import Engine

from partners.models import utcnow
from remote_assist import queue as assist_queue
from remote_assist import sessions
from remote_assist.config import AssistConfig
from remote_assist.evidence import EvidenceStore
from remote_assist.recordings import RecordingManager
from remote_assist.rtc import restrict_host_addresses
from remote_assist.signaling import CallHub, EventHub, periodic
from remote_assist.turn import ice_config

log = logging.getLogger("servicepoint.assist")


class AssistRuntime:
    def __init__(self, settings: Any, engine: Engine, cfg: AssistConfig | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.cfg = cfg or AssistConfig.from_settings(settings)
        self.calls = CallHub()
        self.events = EventHub()
        self.store = EvidenceStore(settings.files_dir)
        self.recordings = RecordingManager(engine, self.store, notify=self.calls.broadcast,
                                           server_ice=self.server_ice)
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
            restrict_host_addresses(self.cfg.rtc_host_addresses)
        handled = await asyncio.to_thread(self.recordings.recover)
        if handled:
            log.warning("recovered %d recordings left open by an earlier run", len(handled))
        self._sweeper = asyncio.create_task(periodic(self.cfg.tick_seconds, self.sweep))

    async def sweep(self) -> None:
        """Escalate / expire waiting requests; end calls nobody came back to."""
        now = utcnow()
        self.recordings.prune()
        domains = await asyncio.to_thread(assist_queue.sweep_requests, self.engine, now, self.cfg)
        if domains:
            await self.events.queue_changed(domains)
        for sid in await asyncio.to_thread(sessions.abandoned, self.engine, now, self.cfg,
                                           self.calls.connected_sessions()):
            await self.end_call(sid, by=None, reason="timeout")

    async def end_call(self, session_id: int, *, by: int | None, reason: str) -> bool:
        """End a call for both sides: state, recording, sockets, queue views."""
        ended = await asyncio.to_thread(sessions.end_call, self.engine, session_id, by=by, reason=reason)
        await self.recordings.finalize(session_id)
        await self.calls.end(session_id, {"type": "hangup", "reason": reason})
        if ended:
            await self.events.queue_changed(None)
        return ended

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.recordings.close_all()
        await self.calls.close_all()
        await self.events.close_all()
        self.started = False


def runtime_for(app: Any) -> AssistRuntime:
    """The app's runtime, created on first use when the lifespan did not create it."""
    runtime = getattr(app.state, "assist", None)
    if runtime is None:
        runtime = AssistRuntime(app.state.settings, app.state.engine)
        app.state.assist = runtime
    return runtime


@contextlib.asynccontextmanager
async def lifespan_hooks(app: Any):  # type: ignore[no-untyped-def]
    """Wire into the app's lifespan after ``app.state.engine`` is set:

        async with remote_assist.runtime.lifespan_hooks(app):
            yield
    """
    runtime = runtime_for(app)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.close()
