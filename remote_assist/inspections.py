"""Remote site inspection (远程勘验): the matter's checklist, a result per point with a note
and at least one snapshot, and one audited conclusion carrying every evidence digest.

``passed_inspection`` / ``inspection_gate_reason`` are what the case lifecycle asks before
a matter that requires inspection may be completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.models import Case, CaseEvent
from partners.models import MatterVersion, Staff, utcnow
from remote_assist.actions import assist_action
from remote_assist.errors import (
    ConsentRequired,
    InspectionIncomplete,
    InvalidInput,
    NotFound,
    NotParticipant,
    RecordingUnavailable,
)
from remote_assist.models import (
    CONCLUSIONS,
    POINT_RESULTS,
    AssistInspection,
    AssistInspectionPoint,
    AssistRecording,
    AssistRequest,
    AssistSession,
    AssistSnapshot,
)
from remote_assist.sessions import consent_of, load_call

CONCLUSION_CODES = {"通过": "passed", "不通过": "failed", "限期整改": "rectify"}


def inspection_of(session: Session, session_id: int) -> AssistInspection | None:
    return session.exec(select(AssistInspection).where(AssistInspection.session_id == session_id)).first()


@dataclass
class PointView:
    idx: int
    text: str
    result: str | None
    note: str
    snapshots: list[AssistSnapshot]


def points_of(session: Session, insp: AssistInspection) -> list[PointView]:
    """Every checklist point with its result and its evidence: the snapshots attached when
    the result was recorded, else those taken for that point so far."""
    rows = {p.idx: p for p in session.exec(select(AssistInspectionPoint).where(
        AssistInspectionPoint.inspection_id == insp.id)).all()}
    snaps = session.exec(select(AssistSnapshot).where(AssistSnapshot.session_id == insp.session_id)
                         .order_by(col(AssistSnapshot.id))).all()
    out = []
    for idx, text in enumerate(insp.checklist):
        row = rows.get(idx)
        if row is not None and row.snapshot_ids:
            evidence = [s for s in snaps if s.id in row.snapshot_ids]
        else:
            evidence = [s for s in snaps if s.point_index == idx]
        out.append(PointView(idx, text, row.result if row else None, row.note if row else "", evidence))
    return out


def _expert_inspection(s: Session, expert: Staff, session_id: int) -> tuple[AssistSession, AssistInspection]:
    call, role = load_call(s, expert, session_id)
    if role != "expert":
        raise NotParticipant("只有远程专家可以记录勘验结果")
    insp = inspection_of(s, session_id)
    if insp is None:
        raise NotFound("本次通话不是远程勘验")
    if insp.conclusion is not None:
        raise InspectionIncomplete("本次勘验已出具结论，不能修改")
    return call, insp


def record_point(engine: Engine, expert: Staff, session_id: int, idx: int, *, result: str,
                 note: str = "", snapshot_ids: list[int] | None = None,
                 now: datetime | None = None) -> AssistInspectionPoint:
    """符合 / 不符合 / 需整改 for one point with at least one snapshot as evidence: those taken
    for the point, plus any of the session's snapshots chosen in ``snapshot_ids`` (one still
    may show several points, e.g. a kitchen with its hand-washing sink)."""
    note = " ".join(note.split())[:500]
    if result not in POINT_RESULTS:
        raise InvalidInput("请选择符合、不符合或需整改", field="result")
    if result != "符合" and not note:
        raise InvalidInput("不符合或需整改时请填写说明", field="note")
    with Session(engine, expire_on_commit=False) as s, s.begin():
        _call, insp = _expert_inspection(s, expert, session_id)
        if consent_of(s, session_id) is None:
            raise ConsentRequired()
        if not 0 <= idx < len(insp.checklist):
            raise NotFound("勘验要点不存在")
        session_snaps = s.exec(select(AssistSnapshot).where(AssistSnapshot.session_id == session_id)).all()
        chosen = set(snapshot_ids or [])
        snaps = sorted(x.id for x in session_snaps if x.id is not None and (x.point_index == idx or x.id in chosen))
        if not snaps:
            raise InvalidInput("请先为该要点取证截图，或勾选能说明该要点的截图（至少一张）", field="result")
        row = s.exec(select(AssistInspectionPoint).where(
            AssistInspectionPoint.inspection_id == insp.id, AssistInspectionPoint.idx == idx)).first()
        assert insp.id is not None
        if row is None:
            row = AssistInspectionPoint(inspection_id=insp.id, idx=idx, text=insp.checklist[idx][:255])
        row.result, row.note, row.snapshot_ids = result, note, snaps
        row.recorded_at, row.recorded_by = now or utcnow(), expert.id
        s.add(row)
    return row


def _check_conclusion(s: Session, expert: Staff, session_id: int, conclusion: str, note: str,
                      rectify_by: date | None, today: date | None) -> tuple[AssistSession, AssistInspection]:
    if conclusion not in CONCLUSIONS:
        raise InvalidInput("请选择勘验结论", field="conclusion")
    call, insp = _expert_inspection(s, expert, session_id)
    if consent_of(s, session_id) is None:
        raise ConsentRequired()
    points = points_of(s, insp)
    open_points = [p.text for p in points if p.result is None or not p.snapshots]
    if open_points:
        raise InspectionIncomplete("以下勘验要点尚未记录结果或截图：" + "、".join(open_points))
    if conclusion == "通过" and any(p.result != "符合" for p in points):
        raise InvalidInput("存在不符合或需整改的要点，不能出具「通过」结论", field="conclusion")
    if conclusion == "限期整改" and (rectify_by is None or (today and rectify_by < today)):
        raise InvalidInput("限期整改须填写不早于今天的整改期限", field="rectify_by")
    if conclusion == "不通过" and not note:
        raise InvalidInput("不通过时请填写理由", field="note")
    return call, insp


def check_conclusion(engine: Engine, expert: Staff, session_id: int, *, conclusion: str,
                     note: str = "", rectify_by: date | None = None, today: date | None = None) -> None:
    """Everything ``conclude`` checks except the stored recording: run it before the live
    recording is closed, so a rejected form never ends the evidence early."""
    with Session(engine) as s:
        _check_conclusion(s, expert, session_id, conclusion, " ".join(note.split()), rectify_by, today)


def conclude(engine: Engine, expert: Staff, session_id: int, *, conclusion: str, note: str = "",
             rectify_by: date | None = None, today: date | None = None,
             now: datetime | None = None) -> AssistInspection:
    """The conclusion, with the digest of every snapshot and of the recording, as one
    audited action (``assist.conclude``); it is also written into the case's history."""
    note = " ".join(note.split())[:1000]
    with Session(engine, expire_on_commit=False) as s:
        call, insp = _check_conclusion(s, expert, session_id, conclusion, note, rectify_by, today)
        rec = s.exec(select(AssistRecording).where(AssistRecording.session_id == session_id)).first()
        if rec is None or rec.sha256 is None:
            raise RecordingUnavailable("录像尚未保存，不能出具结论")
        snapshots = s.exec(select(AssistSnapshot).where(AssistSnapshot.session_id == session_id)
                           .order_by(col(AssistSnapshot.id))).all()
        request_id = call.request_id
    assert expert.id is not None
    with assist_action(engine, expert, "assist.conclude", request_id, at=now) as (act, ctx):
        locked = act.session.exec(select(AssistInspection).where(
            AssistInspection.id == insp.id).with_for_update()).one()
        if locked.conclusion is not None:
            raise InspectionIncomplete("本次勘验已出具结论")
        for snap in snapshots:
            act.add_digest("snapshot", snap.sha256)
        act.add_digest("recording", rec.sha256)
        locked.conclusion, locked.conclusion_note, locked.rectify_by = conclusion, note or None, rectify_by
        locked.concluded_at, locked.concluded_by = act.at, expert.id
        locked.digests = list(act.digests)
        act.session.add(locked)
        if ctx.case is not None:
            assert ctx.case.id is not None
            extra = f"，整改期限 {rectify_by.isoformat()}" if rectify_by else ""
            act.session.add(CaseEvent(case_id=ctx.case.id, actor_id=expert.id, at=act.at,
                                      action="assist.conclude",
                                      note=f"远程勘验结论：{conclusion}{extra}" + (f"（{note}）" if note else "")))
        act.state = ("inspecting", CONCLUSION_CODES[conclusion])
    return locked


def latest_conclusion(session: Session, case_id: int) -> AssistInspection | None:
    return session.exec(select(AssistInspection).where(
        AssistInspection.case_id == case_id, col(AssistInspection.conclusion).is_not(None))
        .order_by(col(AssistInspection.concluded_at).desc())).first()


def passed_inspection(session: Session, case_id: int) -> bool:
    """True when the case's latest concluded inspection passed (通过)."""
    insp = latest_conclusion(session, case_id)
    return insp is not None and insp.conclusion == "通过"


def inspection_gate_reason(session: Session, case: Case) -> str | None:
    """For ``outlet.states.inspection_gate``: why the case cannot be completed yet, or None."""
    version = session.get(MatterVersion, case.matter_version_id)
    if version is None or not version.inspection_required or case.id is None:
        return None
    insp = latest_conclusion(session, case.id)
    if insp is None:
        return "该事项须经远程勘验且结论为「通过」后方可办结，目前尚无勘验结论"
    if insp.conclusion != "通过":
        return f"该事项须经远程勘验合格后方可办结，最近一次勘验结论为「{insp.conclusion}」"
    return None


@dataclass
class CaseAssistSummary:
    requests: list[AssistRequest]
    inspection: AssistInspection | None
    snapshots: list[AssistSnapshot]
    recording: AssistRecording | None


@dataclass
class InspectionRecord:
    """One inspection as a reviewer reads it: conclusion, checklist results with their
    snapshots, and the recording (its SHA-256 is the digest in the audit log)."""

    inspection: AssistInspection
    points: list[PointView]
    recording: AssistRecording | None
    expert_name: str


def inspection_record(session: Session, case_id: int) -> InspectionRecord | None:
    """The case's latest concluded inspection, else the latest one still open, or None.
    A fixed number of queries (no per-point or per-snapshot query)."""
    insp = latest_conclusion(session, case_id) or session.exec(
        select(AssistInspection).where(AssistInspection.case_id == case_id)
        .order_by(col(AssistInspection.id).desc())).first()
    if insp is None:
        return None
    rec = session.exec(select(AssistRecording).where(AssistRecording.session_id == insp.session_id)).first()
    call = session.get(AssistSession, insp.session_id)
    expert = session.get(Staff, call.expert_id) if call is not None else None
    return InspectionRecord(insp, points_of(session, insp), rec, expert.display_name if expert else "")


def case_summary(session: Session, case_id: int) -> CaseAssistSummary:
    """What the case page shows about remote help: requests and the latest inspection."""
    reqs = list(session.exec(select(AssistRequest).where(AssistRequest.case_id == case_id)
                             .order_by(col(AssistRequest.id).desc())).all())
    insp = latest_conclusion(session, case_id)
    snaps: list[AssistSnapshot] = []
    rec = None
    if insp is not None:
        snaps = list(session.exec(select(AssistSnapshot).where(
            AssistSnapshot.session_id == insp.session_id).order_by(col(AssistSnapshot.id))).all())
        rec = session.exec(select(AssistRecording).where(
            AssistRecording.session_id == insp.session_id)).first()
    return CaseAssistSummary(reqs, insp, snaps, rec)
