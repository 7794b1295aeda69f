"""Live queue pushes over WebSocket, fed only by the event hub (topic ``queue.outlet.<id>``):
the counter panel (staff session: "something changed, refresh"), the hall display (device
token: the board and the call to announce) and a ticket's public page (its position).

Each socket sends one message on connect (so a reconnect catches up) and one per hub event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket

from outlet import devices
from outlet.devices import DeviceRefused
from outlet.events import Event, Hub, SubscriptionLost
from outlet.queue import board
from outlet.queue.tickets import topic
from web import live
from web.auth import current_user
from web.db import reader
from web.routes.assist_rtc import _refuse, _same_origin  # one origin check for every socket
from web.routes.devices import COOKIE

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_LAGGING = 4000  # the client reconnects and starts from a fresh snapshot
ANNOUNCED = ("call", "recall")

Message = Callable[[Event | None], Awaitable[dict[str, Any] | str]]


async def _send(ws: WebSocket, msg: dict[str, Any] | str) -> None:
    if isinstance(msg, str):  # already encoded (shared by several sockets)
        await ws.send_text(msg)
    else:
        await ws.send_json(msg)


async def stream(ws: WebSocket, outlet_id: int, message: Message, watch: live.Watch | None = None) -> None:
    """Accept ``ws`` and send ``message(None)``, then ``message(event)`` for every hub event
    of the outlet's queue, until the client goes away — or, with ``watch``, until the login
    or device behind the socket ends (closed with 4401, see :mod:`web.live`)."""
    hub: Hub = ws.app.state.hub
    sub = hub.subscribe(topic(outlet_id))
    await ws.accept()

    async def pump() -> None:
        await _send(ws, await message(None))
        try:
            async for ev in sub:
                await _send(ws, await message(ev))
        except SubscriptionLost:
            await ws.close(code=CLOSE_LAGGING)

    async def drain() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    async def both() -> None:
        tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    try:
        if watch is None:
            await both()
        else:
            await live.guarded(ws, watch, both())
    finally:
        sub.close()


async def panel_socket(ws: WebSocket) -> None:
    """Counter panels: a ``changed`` message whenever the outlet's queue moves."""
    user = current_user(ws)  # type: ignore[arg-type]
    if user is None:
        return await _refuse(ws, CLOSE_UNAUTHENTICATED, "请先登录")
    if not _same_origin(ws) or user.outlet_id is None:
        return await _refuse(ws, CLOSE_FORBIDDEN, "无权订阅")

    async def message(ev: Event | None) -> dict[str, Any]:
        return {"type": "changed", "step": ev.payload.get("step") if ev else None}

    await stream(ws, user.outlet_id, message, live.login_watch(ws))


def board_of(engine: Any, outlet_id: int) -> dict[str, Any]:
    with Session(engine) as s:
        return board.board(s, outlet_id)


class DisplayFeed:
    """The hall displays' message per outlet and hub event, built once and shared: with 20
    displays on one outlet an event costs one board query and one JSON encoding, not 20.
    Keeps only the newest event's message per outlet (``app.state.display_feed``)."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, asyncio.Future[str]]] = {}

    async def message(self, engine: Any, outlet_id: int, ev: Event | None) -> str:
        """The JSON text for ``ev`` (None: a fresh board for a newly connected display)."""
        if ev is None:
            return await self._build(engine, outlet_id, None)
        last = self._last.get(outlet_id)
        if last is None or last[0] != ev.seq:
            if last is not None and last[0] > ev.seq:  # a lagging socket: build its own
                return await self._build(engine, outlet_id, ev)
            last = (ev.seq, asyncio.ensure_future(self._build(engine, outlet_id, ev)))
            self._last[outlet_id] = last
        return await asyncio.shield(last[1])

    @staticmethod
    async def _build(engine: Any, outlet_id: int, ev: Event | None) -> str:
        state = await run_in_threadpool(board_of, engine, outlet_id)
        p = ev.payload if ev else {}
        announce = ({"ticket": p["ticket"], "counter": p["counter"], "counter_name": p["counter_name"]}
                    if p.get("step") in ANNOUNCED else None)
        return json.dumps({"type": "board", "seq": ev.seq if ev else None, "board": state, "announce": announce},
                          ensure_ascii=False, separators=(",", ":"))


def display_feed(app: Any) -> DisplayFeed:
    feed = getattr(app.state, "display_feed", None)
    if feed is None:
        feed = app.state.display_feed = DisplayFeed()
    return feed


async def display_socket(ws: WebSocket) -> None:
    """Hall displays: the board, and the call to chime and speak when the event is a call."""
    if not _same_origin(ws):
        return await _refuse(ws, CLOSE_FORBIDDEN, "无权订阅")
    engine = ws.app.state.engine
    token = ws.query_params.get("t") or ws.cookies.get(COOKIE)
    try:
        device = await run_in_threadpool(devices.resolve, engine, token, kind="hall_display")
    except DeviceRefused:
        return await _refuse(ws, CLOSE_FORBIDDEN, "该终端未配对或已停用")
    feed = display_feed(ws.app)

    async def message(ev: Event | None) -> str:
        return await feed.message(reader(ws.app.state), device.outlet_id, ev)

    def still_paired() -> bool:
        try:
            devices.resolve(engine, token, kind="hall_display", outlet_id=device.outlet_id)
        except DeviceRefused:
            return False
        return True

    assert device.id is not None
    await stream(ws, device.outlet_id, message, live.device_watch(ws, device.id, still_paired))


async def ticket_socket(ws: WebSocket) -> None:
    """A ticket's public page: its live position (no login; the QR code is the secret)."""
    engine = reader(ws.app.state)  # the position is a pure read
    code = ws.path_params["code"]

    def load() -> Any:
        with Session(engine) as s:
            return board.position(s, code)

    def outlet() -> int:
        with Session(engine) as s:
            return board.ticket_outlet(s, code)

    first = await run_in_threadpool(load)
    if first is None or not _same_origin(ws):
        return await _refuse(ws, CLOSE_FORBIDDEN, "未找到该号票")

    async def message(ev: Event | None) -> dict[str, Any]:
        pos = await run_in_threadpool(load)
        return {"type": "position", "state": pos.state, "state_label": pos.state_label, "ahead": pos.ahead,
                "counter": pos.counter}

    await stream(ws, await run_in_threadpool(outlet), message)
