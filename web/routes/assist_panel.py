"""The call page's side panel (``#assist-panel``): the case's materials with the expert's
marks, the applicant's consent, the inspection checklist with snapshots, the conclusion.

Every form posts here and gets the panel back (422 with the reason next to the field when
the input is refused); the other participant is told over the call's WebSocket to refresh.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from outlet.clock import local_day
from outlet.intake import MATERIAL_STATUS_LABELS
from outlet.ratings import views as rating_views
from outlet.states import MATERIAL_STATES, STATE_LABELS
from partners.errors import ActionRefused
from partners.models import MatterVersion, Outlet, Staff, utcnow
from remote_assist import inspections, sessions
from remote_assist.errors import AssistError
from remote_assist.models import (
    CONCLUSIONS,
    KIND_LABELS,
    POINT_RESULTS,
    SESSION_STATE_LABELS,
    AssistRecording,
    AssistRequest,
    AssistSnapshot,
)
from remote_assist.runtime import runtime_for
from web import errors
from web.auth import current_user, requires_roles
from web.params import int_param

PARTICIPANTS = ("teller", "block_agent", "outlet_lead", "expert")


def render(request: Request, name: str, ctx: dict[str, Any], *, status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, name, ctx, status_code=status_code, headers={"Vary": "HX-Request"})


def panel_context(request: Request, user: Staff, sid: int,
                  form_error: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the call page and its panel show (participants only)."""
    runtime = runtime_for(request.app)
    # before the session below: it may read the database too, and on SQLite a second
    # session in this thread would wait for the write lock the first one holds
    recording_live = runtime.recorders.is_recording(sid)
    with Session(request.app.state.engine) as s:
        call, role = sessions.load_call(s, user, sid)
        req = s.get(AssistRequest, call.request_id)
        assert req is not None
        other = s.get(Staff, call.expert_id if role == "teller" else call.teller_id)
        insp = inspections.inspection_of(s, sid)
        case = sessions.case_of_call(s, call)
        return {
            "call": call, "role": role, "req": req, "other": other,
            "outlet": s.get(Outlet, req.outlet_id),
            "version": s.get(MatterVersion, req.matter_version_id) if req.matter_version_id else None,
            "case": case,
            "can_mark": case is not None and case.state in MATERIAL_STATES,
            "case_state_label": STATE_LABELS.get(case.state, case.state) if case else "",
            "materials": sessions.materials_for(s, call),
            "consent": sessions.consent_of(s, sid),
            "inspection": insp,
            "points": inspections.points_of(s, insp) if insp else [],
            "snapshots": list(s.exec(select(AssistSnapshot).where(AssistSnapshot.session_id == sid)
                                     .order_by(col(AssistSnapshot.id))).all()),
            "recording": s.exec(select(AssistRecording).where(AssistRecording.session_id == sid)).first(),
            "chat": sessions.chat_of(s, sid),
            "names": {call.teller_id: "网点", call.expert_id: "专家"},
            "kind_labels": KIND_LABELS, "state_labels": SESSION_STATE_LABELS,
            "material_labels": MATERIAL_STATUS_LABELS, "point_results": POINT_RESULTS,
            "conclusions": CONCLUSIONS, "consenter_roles": sessions.CONSENTER_ROLES,
            "retention_default": runtime.cfg.consent_retention_days,
            "purpose_default": ("远程视频勘验取证" if req.kind == "inspection" else "视频帮办过程留痕"),
            "form_error": form_error or {},
            "recording_live": recording_live,
            # the ended call page: the teller turns the screen to the applicant to rate the expert
            "can_rate": role == "teller" and call.ended_at is not None
            and not rating_views.session_rated(s, sid),
            # newest render wins in the browser: an older answer never overwrites a newer one
            "rendered_us": time.monotonic_ns() // 1000,
        }


async def _panel(request: Request, user: Staff, sid: int, *, status_code: int = 200,
                 form_error: dict[str, Any] | None = None) -> Response:
    ctx = await run_in_threadpool(panel_context, request, user, sid, form_error)
    if request.headers.get("HX-Request") != "true" and status_code < 400:
        return RedirectResponse(f"/assist/sessions/{sid}", status_code=303)
    template = "assist/_panel.html" if request.headers.get("HX-Request") == "true" else "assist/call.html"
    return render(request, template, ctx, status_code=status_code)


async def _act(request: Request, form_key: str, job: Any, *, notify: dict[str, Any] | None = None) -> Response:
    """Run ``job(user, form)``; answer with the panel (or the refused form, 422)."""
    user = current_user(request)
    assert user is not None
    sid = int(request.path_params["sid"])
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    values["snapshot_ids"] = ",".join(str(v) for v in form.getlist("snapshot_ids"))
    try:
        await job(user, sid, values)
    except AssistError as exc:
        if exc.status_code in (403, 404):
            return errors.render_error(request, exc.status_code, exc.message)
        err = {"form": form_key, "field": exc.field, "message": exc.message, "values": values}
        return await _panel(request, user, sid, status_code=422 if exc.status_code == 422 else exc.status_code,
                            form_error=err)
    except ActionRefused as exc:
        err = {"form": form_key, "field": None, "message": exc.message, "values": values}
        return await _panel(request, user, sid, status_code=exc.status_code, form_error=err)
    await runtime_for(request.app).calls.broadcast(sid, notify or {"type": "panel"})
    return await _panel(request, user, sid)


@requires_roles(*PARTICIPANTS)
async def consent(request: Request) -> Response:
    engine = request.app.state.engine

    async def job(user: Staff, sid: int, v: dict[str, str]) -> None:
        days = int_param(v.get("retention_days")) or 0
        await run_in_threadpool(lambda: sessions.record_consent(
            engine, user, sid, name=v.get("name", ""), role=v.get("role", ""),
            purpose=v.get("purpose", ""), retention_days=days, confirmed=v.get("confirmed") == "1"))

    return await _act(request, "consent", job, notify={"type": "consent"})


@requires_roles("expert")
async def mark_material(request: Request) -> Response:
    engine = request.app.state.engine
    mid = int(request.path_params["mid"])

    async def job(user: Staff, sid: int, v: dict[str, str]) -> None:
        await run_in_threadpool(lambda: sessions.mark_material(
            engine, user, sid, mid, verdict=v.get("verdict", ""), reason=v.get("reason", "")))

    return await _act(request, f"mark-{mid}", job)


@requires_roles("expert")
async def snapshot(request: Request) -> Response:
    runtime = runtime_for(request.app)

    async def job(user: Staff, sid: int, v: dict[str, str]) -> None:
        await runtime.recorders.snapshot(user, sid, point_index=int_param(v.get("point")),
                                          note=v.get("note", ""))

    return await _act(request, "snapshot", job, notify={"type": "panel"})


@requires_roles("expert")
async def record_point(request: Request) -> Response:
    engine = request.app.state.engine
    idx = int(request.path_params["idx"])

    async def job(user: Staff, sid: int, v: dict[str, str]) -> None:
        chosen = [n for x in v.get("snapshot_ids", "").split(",") if (n := int_param(x)) is not None]
        await run_in_threadpool(lambda: inspections.record_point(
            engine, user, sid, idx, result=v.get("result", ""), note=v.get("note", ""), snapshot_ids=chosen))

    return await _act(request, f"point-{idx}", job)


@requires_roles("expert")
async def conclude(request: Request) -> Response:
    engine = request.app.state.engine
    runtime = runtime_for(request.app)

    async def job(user: Staff, sid: int, v: dict[str, str]) -> None:
        try:
            rectify = date.fromisoformat(v["rectify_by"]) if v.get("rectify_by") else None
        except ValueError:
            rectify = None
        today = local_day(utcnow())
        kwargs = {"conclusion": v.get("conclusion", ""), "note": v.get("note", ""),
                  "rectify_by": rectify, "today": today}
        await run_in_threadpool(lambda: inspections.check_conclusion(engine, user, sid, **kwargs))  # type: ignore[arg-type]
        await runtime.recorders.finalize(sid)  # close the evidence before it is signed off
        await run_in_threadpool(lambda: inspections.conclude(engine, user, sid, **kwargs))  # type: ignore[arg-type]

    return await _act(request, "conclude", job, notify={"type": "concluded"})


routes: list[BaseRoute] = [
    Route("/sessions/{sid:id}/consent", consent, methods=["POST"], name="consent"),
    Route("/sessions/{sid:id}/materials/{mid:id}", mark_material, methods=["POST"], name="mark"),
    Route("/sessions/{sid:id}/snapshots", snapshot, methods=["POST"], name="snapshot"),
    Route("/sessions/{sid:id}/points/{idx:id}", record_point, methods=["POST"], name="point"),
    Route("/sessions/{sid:id}/conclude", conclude, methods=["POST"], name="conclude"),
]
