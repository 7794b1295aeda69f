"""Call sessions: who may join, ending and time-outs, chat, stats, consent, material marks.

A session has exactly two participants, fixed when the expert accepts: the requesting
teller and that expert. Everyone else is refused (``NotParticipant``) — also other staff
of the same outlet and other experts.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.models import Case, CaseEvent, CaseFile, CaseMaterial
from outlet.states import MATERIAL_STATES, require_state
from partners.models import Staff, utcnow
from remote_assist.actions import assist_action
from remote_assist.config import AssistConfig
from remote_assist.errors import ChatTooFast, InvalidInput, NotFound, NotParticipant, SessionClosed
from remote_assist.models import (
    AssistConsent,
    AssistMark,
    AssistMessage,
    AssistRequest,
    AssistSession,
)

CONSENTER_ROLES = ("申请人", "代理人", "法定代表人")
MAX_CHAT = 1000
CHAT_BURST = 5  # lines per participant …
CHAT_WINDOW = 10  # … per this many seconds


def role_in(call: AssistSession, user_id: int | None) -> str | None:
    if user_id == call.teller_id:
        return "teller"
    if user_id == call.expert_id:
        return "expert"
    return None


def load_call(session: Session, user: Staff, session_id: int) -> tuple[AssistSession, str]:
    """The session and the user's role in it; ``NotParticipant`` for anyone else."""
    call = session.get(AssistSession, session_id)
    if call is None:
        raise NotFound("未找到该视频通话")
    role = role_in(call, user.id)
    if role is None:
        raise NotParticipant()
    return call, role


def require_active(call: AssistSession) -> None:
    if call.state != "active":
        raise SessionClosed()


def mark_connected(engine: Engine, session_id: int, now: datetime | None = None) -> None:
    """Both participants are present: remember the first time, refresh activity."""
    now = now or utcnow()
    with Session(engine) as s, s.begin():
        call = s.get(AssistSession, session_id)
        if call is not None and call.state == "active":
            call.connected_at = call.connected_at or now
            call.last_activity = now
            s.add(call)


def touch(engine: Engine, session_id: int, now: datetime | None = None) -> None:
    with Session(engine) as s, s.begin():
        call = s.get(AssistSession, session_id)
        if call is not None and call.state == "active":
            call.last_activity = now or utcnow()
            s.add(call)


def end_call(engine: Engine, session_id: int, *, by: int | None, reason: str,
             now: datetime | None = None) -> bool:
    """End the session (idempotent). Returns True if this call ended it."""
    now = now or utcnow()
    with Session(engine) as s, s.begin():
        call = s.exec(select(AssistSession).where(AssistSession.id == session_id).with_for_update()).first()
        if call is None or call.state != "active":
            return False
        call.state = "timed_out" if reason == "timeout" else "ended"
        call.ended_at, call.ended_by, call.end_reason = now, by, reason
        s.add(call)
        req = s.get(AssistRequest, call.request_id)
        if req is not None:
            req.status, req.ended_at = "done", now
            if req.accepted_at is not None:
                req.handle_seconds = int((now - req.accepted_at).total_seconds())
            s.add(req)
    return True


def abandoned(engine: Engine, now: datetime, cfg: AssistConfig, connected: set[int]) -> list[int]:
    """Active sessions nobody is connected to and idle for ``abandon_after_seconds``."""
    with Session(engine) as s:
        rows = s.exec(select(AssistSession).where(AssistSession.state == "active")).all()
        return [
            c.id for c in rows
            if c.id is not None and c.id not in connected
            and (now - c.last_activity).total_seconds() >= cfg.abandon_after_seconds
        ]


def clean_chat(text: str) -> str:
    """One line of chat: control and format characters (NUL, escapes, bidi overrides,
    zero-width marks) removed, whitespace runs collapsed, at most :data:`MAX_CHAT` chars."""
    kept = "".join(" " if ch.isspace() else ch for ch in str(text)
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
    return " ".join(kept.split())[:MAX_CHAT]


def add_chat(engine: Engine, session_id: int, sender_id: int, text: str,
             now: datetime | None = None) -> AssistMessage | None:
    """Store one chat line (None when nothing is left after cleaning). Raises
    :class:`ChatTooFast` past :data:`CHAT_BURST` lines per :data:`CHAT_WINDOW` seconds from
    one participant (counted in the database, so it holds across app processes)."""
    text = clean_chat(text)
    if not text:
        return None
    now = now or utcnow()
    msg = AssistMessage(session_id=session_id, sender_id=sender_id, text=text, at=now)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        recent = s.exec(select(func.count()).select_from(AssistMessage).where(
            AssistMessage.session_id == session_id, AssistMessage.sender_id == sender_id,
            col(AssistMessage.at) > now - timedelta(seconds=CHAT_WINDOW))).one()
        if recent >= CHAT_BURST:
            raise ChatTooFast()
        s.add(msg)
    return msg


def chat_of(session: Session, session_id: int) -> list[AssistMessage]:
    return list(session.exec(select(AssistMessage).where(AssistMessage.session_id == session_id)
                             .order_by(col(AssistMessage.id))).all())


STAT_KEYS = {
    "duration_s", "rtt_ms_avg", "rtt_ms_max", "loss_pct", "bitrate_kbps_avg", "bitrate_kbps_min",
    "frames_decoded", "frames_dropped", "ice_restarts", "samples", "good", "warning", "bad",
}


def clean_stats(raw: Any) -> dict[str, float]:
    """Keep known numeric keys only (the summary comes from the browser)."""
    if not isinstance(raw, dict):
        raise InvalidInput("统计数据格式有误")
    out: dict[str, float] = {}
    for key, value in raw.items():
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if key in STAT_KEYS and numeric and math.isfinite(value):
            out[key] = round(float(value), 3)
    return out


def save_stats(engine: Engine, user: Staff, session_id: int, summary: Any) -> dict[str, float]:
    stats = clean_stats(summary)
    with Session(engine) as s, s.begin():
        call, role = load_call(s, user, session_id)
        merged = dict(call.stats or {})
        merged[role] = {**stats, "at": utcnow().isoformat(timespec="seconds") + "Z"}
        call.stats = merged  # reassign: JSON columns track assignment, not mutation
        s.add(call)
    return stats


# --- consent -----------------------------------------------------------------------------

def consent_statement(purpose: str, retention_days: int) -> str:
    return (f"本人同意在本次办理中进行全程录音录像并截取图片，用途：{purpose}；"
            f"保存期限：{retention_days} 天，期满后依规定销毁；仅用于本事项办理与监督。")


def consent_of(session: Session, session_id: int) -> AssistConsent | None:
    return session.exec(select(AssistConsent).where(AssistConsent.session_id == session_id)
                        .order_by(col(AssistConsent.id).desc())).first()


def record_consent(engine: Engine, actor: Staff, session_id: int, *, name: str, role: str,
                   purpose: str, retention_days: int, confirmed: bool,
                   now: datetime | None = None) -> AssistConsent:
    """The applicant's explicit consent, read out and confirmed (audited ``assist.consent``)."""
    name = " ".join(name.split())[:64]
    purpose = " ".join(purpose.split())[:255]
    errors = []
    if not confirmed:
        errors.append(("confirmed", "须申请人明确表示同意后勾选确认"))
    if not name:
        errors.append(("name", "请填写表示同意的人员姓名"))
    if role not in CONSENTER_ROLES:
        errors.append(("role", "请选择同意人身份"))
    if not purpose:
        errors.append(("purpose", "请填写录像用途"))
    if not 1 <= retention_days <= 36500:
        errors.append(("retention_days", "保存期限应为 1 至 36500 天"))
    if errors:
        raise InvalidInput(errors[0][1], field=errors[0][0])
    with Session(engine) as s:
        call, _ = load_call(s, actor, session_id)
        require_active(call)
    assert actor.id is not None
    with assist_action(engine, actor, "assist.consent", call.request_id, at=now) as (act, _ctx):
        consent = AssistConsent(
            session_id=session_id, consenter_name=name, consenter_role=role, purpose=purpose,
            retention_days=retention_days, statement=consent_statement(purpose, retention_days),
            given_at=act.at, recorded_by=actor.id,
        )
        act.session.add(consent)
        act.state = (None, "consented")
    return consent


# --- the case's materials beside the video --------------------------------------------------

@dataclass
class MaterialView:
    material: CaseMaterial
    files: list[CaseFile]


def case_of_call(session: Session, call: AssistSession) -> Case | None:
    req = session.get(AssistRequest, call.request_id)
    return session.get(Case, req.case_id) if req and req.case_id else None


def materials_for(session: Session, call: AssistSession) -> list[MaterialView]:
    case = case_of_call(session, call)
    if case is None:
        return []
    mats = session.exec(select(CaseMaterial).where(CaseMaterial.case_id == case.id)
                        .order_by(col(CaseMaterial.id))).all()
    files = session.exec(select(CaseFile).where(CaseFile.case_id == case.id)).all()
    return [MaterialView(m, [f for f in files if f.material_key == m.key]) for m in mats]


def case_file_for(session: Session, user: Staff, session_id: int, file_id: int) -> CaseFile:
    """A scan of the call's case, for either participant (nobody else)."""
    call, _ = load_call(session, user, session_id)
    case = case_of_call(session, call)
    cf = session.get(CaseFile, file_id)
    if case is None or cf is None or cf.case_id != case.id:
        raise NotFound("未找到该文件")
    return cf


def mark_material(engine: Engine, expert: Staff, session_id: int, material_id: int, *,
                  verdict: str, reason: str = "", now: datetime | None = None) -> CaseMaterial:
    """The expert's pre-review: OK (received) or needs correction (defective + reason).
    Defective materials become the items of the case's one-time / correction notice."""
    reason = " ".join(reason.split())[:255]
    if verdict not in ("ok", "defective"):
        raise InvalidInput("请选择「合格」或「需补正」", field="verdict")
    if verdict == "defective" and not reason:
        raise InvalidInput("请填写需要补正的原因", field="reason")
    with Session(engine) as s:
        call, role = load_call(s, expert, session_id)
        if role != "expert":
            raise NotParticipant("只有远程专家可以标注材料")
        case = case_of_call(s, call)
        if case is None:
            raise NotFound("本次通话没有关联办件")
    assert expert.id is not None
    with assist_action(engine, expert, "assist.mark", call.request_id, at=now) as (act, _ctx):
        s = act.session
        locked = s.exec(select(Case).where(Case.id == case.id).with_for_update()).one()
        require_state(locked, MATERIAL_STATES, "case.material")  # audited as a refusal
        m = s.get(CaseMaterial, material_id)
        if m is None or m.case_id != locked.id:
            raise NotFound("办件中没有这项材料")
        m.status = "received" if verdict == "ok" else "defective"
        m.reason = None if verdict == "ok" else reason
        m.updated_at = act.at
        s.add(m)
        assert locked.id is not None
        label = "远程预审合格" if verdict == "ok" else f"远程预审需补正（{reason}）"
        s.add(CaseEvent(case_id=locked.id, actor_id=expert.id, at=act.at, action="assist.mark",
                        note=f"{m.name}：{label}"))
        s.add(AssistMark(session_id=session_id, material_id=material_id, verdict=verdict,
                         reason=m.reason, marked_by=expert.id, marked_at=act.at))
        act.state = (locked.state, locked.state)
    return m
