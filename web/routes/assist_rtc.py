"""The real-time side of remote help: the call's signaling WebSocket, the live event feed,
ICE configuration, the recorder's offer/answer, hang-up, the stats summary, evidence files.

WebSockets authenticate with the session cookie (SessionMiddleware covers the websocket
scope). A refused socket is accepted and closed at once with an application close code and
a Chinese reason, so the browser can show why (see ``remote_assist.signaling``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from outlet.models import Case, CaseFile
from partners.authorize import covered_outlets
from partners.errors import ActionRefused
from partners.models import MatterVersion, Staff, utcnow
from remote_assist import sessions
from remote_assist.errors import AssistError, NotFound
from remote_assist.models import AssistRequest, AssistSession, AssistSnapshot
from remote_assist.runtime import runtime_for
from remote_assist.signaling import (
    CLOSE_ENDED,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
    MAX_MESSAGE,
    RELAYED,
)
from remote_assist.turn import ice_config
from web import errors, live
from web.auth import current_user, requires_roles
from web.routes import assist_panel
from web.security import upload_headers

PARTICIPANTS = ("teller", "block_agent", "outlet_lead", "expert")


class WsPeer:
    """A Starlette WebSocket as a signaling peer (sends serialized by a lock)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))

    async def close(self, code: int, reason: str) -> None:
        async with self.lock:
            await self.ws.close(code=code, reason=reason)


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == ws.headers.get("host")


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.accept()
    await ws.close(code=code, reason=reason)


async def _messages(ws: WebSocket) -> Any:
    """Parsed JSON objects from the socket until it closes (oversized/invalid ones skipped)."""
    while True:
        text = await ws.receive_text()
        if len(text) > MAX_MESSAGE:
            continue
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, dict):
            yield message


async def call_socket(ws: WebSocket) -> None:
    """Signaling for one call: only its two participants get in."""
    user = current_user(ws)  # type: ignore[arg-type]
    sid = int(ws.path_params["sid"])
    if user is None:
        return await _refuse(ws, CLOSE_UNAUTHENTICATED, "请先登录")
    if not _same_origin(ws):
        return await _refuse(ws, CLOSE_FORBIDDEN, "来源无效")
    engine = ws.app.state.engine

    def load() -> tuple[AssistSession | None, str | None]:
        with Session(engine) as s:
            call = s.get(AssistSession, sid)
            return call, sessions.role_in(call, user.id) if call else None

    call, role = await run_in_threadpool(load)
    if call is None:
        return await _refuse(ws, CLOSE_NOT_FOUND, "未找到该视频通话")
    if role is None:
        return await _refuse(ws, CLOSE_FORBIDDEN, "您不是本次视频通话的参与人，不能加入")
    if call.state != "active":
        return await _refuse(ws, CLOSE_ENDED, "本次视频通话已结束")
    runtime = runtime_for(ws.app)
    await runtime.start()
    await ws.accept()
    peer = WsPeer(ws)
    live_rec = await run_in_threadpool(runtime.recorders.is_recording, sid)
    recording = {"type": "recording", "state": "on" if live_rec else "off"}
    if await runtime.calls.join(sid, role, peer, then=(recording,)):
        await run_in_threadpool(sessions.mark_connected, engine, sid)
    watch = live.login_watch(ws, slide=True)  # an active call counts as activity
    await live.guarded(ws, watch, _call_loop(ws, watch, runtime, peer, sid, role, user.id or 0),
                       on_end=lambda: runtime.end_call(sid, by=user.id, reason="session_ended"))


async def _call_loop(ws: WebSocket, watch: live.Watch, runtime: Any, peer: WsPeer, sid: int, role: str,
                     user_id: int) -> None:
    engine = ws.app.state.engine
    try:
        async for message in _messages(ws):
            await watch.check()  # each message re-checks the login (LiveEnded ends the call)
            kind = message.get("type")
            if kind == "hangup":
                await runtime.end_call(sid, by=user_id, reason="hangup")
                # The hub delivers the end to the room after this socket has left it: tell
                # the sender here and close its socket (the other side hears it through the hub).
                await peer.send({"type": "hangup", "reason": "hangup"})
                await peer.close(CLOSE_ENDED, "本次视频通话已结束")
                break
            if kind == "chat":
                text = str(message.get("text", ""))
                try:
                    saved = await run_in_threadpool(sessions.add_chat, engine, sid, user_id, text)
                except AssistError as exc:  # ChatTooFast: tell the sender only
                    await peer.send({"type": "error", "message": exc.message})
                    continue
                if saved is not None:
                    await runtime.calls.relay(sid, role, {"type": "chat", "text": saved.text,
                                                          "at": saved.at.isoformat() + "Z"})
            elif kind == "ping":
                await peer.send({"type": "pong"})
            elif kind in RELAYED:
                await runtime.calls.relay(sid, role, message)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await runtime.calls.leave(sid, role, peer)
        await run_in_threadpool(sessions.touch, engine, sid)


async def event_socket(ws: WebSocket) -> None:
    """Pushes queue changes to experts and request updates to outlet staff."""
    user = current_user(ws)  # type: ignore[arg-type]
    if user is None:
        return await _refuse(ws, CLOSE_UNAUTHENTICATED, "请先登录")
    if not _same_origin(ws) or not (user.role_set & set(PARTICIPANTS)):
        return await _refuse(ws, CLOSE_FORBIDDEN, "无权订阅")
    runtime = runtime_for(ws.app)
    await runtime.start()
    await ws.accept()
    peer = WsPeer(ws)
    assert user.id is not None
    await runtime.events.add(peer, user.id, user.outlet_id, user.domain, "expert" in user.role_set)
    watch = live.login_watch(ws)

    async def loop() -> None:
        try:
            async for message in _messages(ws):
                await watch.check()
                if message.get("type") == "ping":
                    await peer.send({"type": "pong"})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await runtime.events.remove(peer)

    await live.guarded(ws, watch, loop())


def _participant(request: Request, sid: int) -> tuple[Staff, AssistSession, str]:
    user = current_user(request)
    assert user is not None
    with Session(request.app.state.engine) as s:
        call, role = sessions.load_call(s, user, sid)
    return user, call, role


@requires_roles(*PARTICIPANTS)
async def ice(request: Request) -> Response:
    """The RTCConfiguration for this participant, with fresh TURN credentials."""
    sid = int(request.path_params["sid"])
    try:
        user, _call, _role = await run_in_threadpool(_participant, request, sid)
    except AssistError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    runtime = runtime_for(request.app)
    cfg = ice_config(request.app.state.settings, user.id or 0, relay_only=runtime.cfg.ice_relay_only)
    return JSONResponse(cfg, headers={"Cache-Control": "no-store"})


@requires_roles(*PARTICIPANTS)
async def recorder_offer(request: Request) -> Response:
    """The outlet browser's offer to the server's recording peer → the answer (JSON)."""
    sid = int(request.path_params["sid"])
    user = current_user(request)
    assert user is not None
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "无效的请求"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "无效的请求"}, status_code=400)
    runtime = runtime_for(request.app)
    await runtime.start()
    try:
        # a participant first: a stranger learns nothing of the record's state (403/404, not 409)
        await run_in_threadpool(_participant, request, sid)
        answer = await runtime.recorders.offer(user, sid, str(body.get("sdp", "")), str(body.get("type", "")))
    except (AssistError, ActionRefused) as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    return JSONResponse(answer)


@requires_roles(*PARTICIPANTS)
async def hangup(request: Request) -> Response:
    """Hang up without JavaScript (the page's button uses the WebSocket)."""
    sid = int(request.path_params["sid"])
    try:
        user, _call, _role = await run_in_threadpool(_participant, request, sid)
    except AssistError as exc:
        return errors.render_error(request, exc.status_code, exc.message)
    await runtime_for(request.app).end_call(sid, by=user.id, reason="hangup")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": f"/assist/sessions/{sid}"})
    return RedirectResponse(f"/assist/sessions/{sid}", status_code=303)


@requires_roles(*PARTICIPANTS)
async def stats(request: Request) -> Response:
    """Per-call getStats summary, posted by each side at the end (fetch keepalive or a
    urlencoded beacon carrying ``csrf_token`` and ``summary``)."""
    sid = int(request.path_params["sid"])
    user = current_user(request)
    assert user is not None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            summary = await request.json()
        except ValueError:
            summary = None
    else:
        form = await request.form()
        try:
            summary = json.loads(str(form.get("summary", "")))
        except ValueError:
            summary = None
    try:
        saved = await run_in_threadpool(sessions.save_stats, request.app.state.engine, user, sid, summary)
    except AssistError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    return JSONResponse({"saved": saved})


def may_see_case(session: Session, user: Staff, case: Case) -> bool:
    """The same rules as the case pages: outlet staff of the case's outlet (or its AB角
    backup); reviewers only once the case was forwarded to the center; experts only cases
    that asked for remote help; auditors all (read-only). Domain-bound staff only in
    their domain."""
    if user.outlet_id is not None:
        return case.outlet_id == user.outlet_id or case.outlet_id in covered_outlets(session, user, utcnow())
    roles = user.role_set
    if "auditor" in roles:
        return True
    if user.domain:
        version = session.get(MatterVersion, case.matter_version_id)
        if version is None or version.domain != user.domain:
            return False
    if "reviewer" in roles and case.forwarded_at is not None:
        return True
    if "expert" in roles:
        asked = session.exec(select(AssistRequest.id).where(AssistRequest.case_id == case.id)).first()
        return asked is not None
    return False


@requires_roles(*PARTICIPANTS, "reviewer", "auditor")
async def snapshot_image(request: Request) -> Response:
    user = current_user(request)
    assert user is not None
    snap_id = int(request.path_params["snap_id"])
    runtime = runtime_for(request.app)

    def load() -> AssistSnapshot:
        with Session(request.app.state.engine) as s:
            snap = s.get(AssistSnapshot, snap_id)
            call = s.get(AssistSession, snap.session_id) if snap else None
            req = s.get(AssistRequest, call.request_id) if call else None
            if snap is None or call is None or req is None:
                raise NotFound("未找到该截图")
            if sessions.role_in(call, user.id) is None:
                case = s.get(Case, req.case_id) if req.case_id else None
                if case is None or not may_see_case(s, user, case):
                    raise NotFound("未找到该截图")
            return snap

    try:
        snap = await run_in_threadpool(load)
    except AssistError as exc:
        return errors.render_error(request, exc.status_code, exc.message)
    # evidence of a person's home or documents: never kept by a shared counter PC's browser
    return errors.stored_file(request, runtime.store.path_for(snap.sha256), "image/jpeg",
                              upload_headers("image/jpeg", f"snapshot-{snap.id}.jpg"))


@requires_roles(*PARTICIPANTS)
async def case_file(request: Request) -> Response:
    """A scan of the call's case, shown to the expert beside the video."""
    user = current_user(request)
    assert user is not None
    sid, fid = int(request.path_params["sid"]), int(request.path_params["fid"])

    def load() -> CaseFile:
        with Session(request.app.state.engine) as s:
            return sessions.case_file_for(s, user, sid, fid)

    try:
        cf = await run_in_threadpool(load)
    except AssistError as exc:
        return errors.render_error(request, exc.status_code, exc.message)
    return errors.stored_file(request, runtime_for(request.app).store.path_for(cf.sha256), cf.content_type,
                              upload_headers(cf.content_type, f"material-{cf.id}", cf.original_name))


routes: list[BaseRoute] = [
    WebSocketRoute("/sessions/{sid:id}/ws", call_socket, name="call_ws"),
    WebSocketRoute("/events", event_socket, name="events_ws"),
    Route("/sessions/{sid:id}/ice", ice, name="ice"),
    Route("/sessions/{sid:id}/recorder", recorder_offer, methods=["POST"], name="recorder"),
    Route("/sessions/{sid:id}/hangup", hangup, methods=["POST"], name="hangup"),
    Route("/sessions/{sid:id}/stats", stats, methods=["POST"], name="stats"),
    Route("/sessions/{sid:id}/files/{fid:id}", case_file, name="case_file"),
    Route("/snapshots/{snap_id:id}", snapshot_image, name="snapshot_image"),
    *assist_panel.routes,
]
