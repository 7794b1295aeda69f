"""Inspection rules without media: consent first, every point with a result and evidence
(a still may document several points), the conclusion's rules, its audit entry with every
digest, and the completion gate of matters that require inspection."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from outlet.models import Case
from partners.models import utcnow
from remote_assist import inspections, queue, sessions
from remote_assist.errors import (
    ConsentRequired,
    InspectionIncomplete,
    InvalidInput,
    RecordingUnavailable,
)
from remote_assist.models import AssistRecording, AssistSnapshot
from tests.remote_assist.conftest import audit_entries, staff

TODAY = date(2026, 11, 21)


def fake_sha(n: int) -> str:
    return hashlib.sha256(f"evidence-{n}".encode()).hexdigest()


def open_inspection(engine: Engine, case: Case, consent: bool = True) -> int:
    req = queue.create_request(engine, staff(engine, "teller2"), kind="inspection", case_id=case.id)
    call = queue.accept(engine, staff(engine, "expert1"), req.id)
    assert call.id is not None
    if consent:
        sessions.record_consent(engine, staff(engine, "teller2"), call.id, name="张三", role="申请人",
                                purpose="远程视频勘验取证", retention_days=1095, confirmed=True)
    return call.id


def add_snapshot(engine: Engine, sid: int, n: int, point: int | None) -> int:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        snap = AssistSnapshot(session_id=sid, sha256=fake_sha(n), size=1, width=640, height=480,
                              taken_by=staff(engine, "expert1").id or 0, point_index=point)
        s.add(snap)
    assert snap.id is not None
    return snap.id


def add_recording(engine: Engine, sid: int) -> str:
    sha = fake_sha(999)
    with Session(engine) as s, s.begin():
        s.add(AssistRecording(session_id=sid, status="finalized", sha256=sha, size=1, finalized_at=utcnow()))
    return sha


def record_all(engine: Engine, sid: int, result: str = "符合") -> list[int]:
    expert = staff(engine, "expert1")
    first, second = add_snapshot(engine, sid, 1, 0), add_snapshot(engine, sid, 2, 1)
    for idx in range(7):
        inspections.record_point(engine, expert, sid, idx, result=result if idx == 6 else "符合",
                                 note="油烟机未清洁" if idx == 6 and result != "符合" else "",
                                 snapshot_ids=[] if idx < 2 else [first, second][idx % 2:idx % 2 + 1])
    return [first, second]


def test_inspection_point_needs_evidence(demo: Engine, food_case: Case) -> None:
    sid = open_inspection(demo, food_case)
    with pytest.raises(InvalidInput):
        inspections.record_point(demo, staff(demo, "expert1"), sid, 3, result="符合")


def test_inspection_one_still_may_document_several_points(demo: Engine, food_case: Case) -> None:
    sid = open_inspection(demo, food_case)
    first, second = record_all(demo, sid)
    with Session(demo) as s:
        insp = inspections.inspection_of(s, sid)
        assert insp is not None
        points = inspections.points_of(s, insp)
    assert [p.result for p in points] == ["符合"] * 7
    assert [p.snapshots[0].id for p in points] == [first, second, first, second, first, second, first]


def test_inspection_without_consent_is_refused(demo: Engine, food_case: Case) -> None:
    sid = open_inspection(demo, food_case, consent=False)
    add_snapshot(demo, sid, 1, 0)
    with pytest.raises(ConsentRequired):
        inspections.record_point(demo, staff(demo, "expert1"), sid, 0, result="符合")
    with pytest.raises(ConsentRequired):
        inspections.conclude(demo, staff(demo, "expert1"), sid, conclusion="通过")


def test_inspection_conclusion_is_audited_with_every_digest(demo: Engine, food_case: Case) -> None:
    sid = open_inspection(demo, food_case)
    with Session(demo) as s:
        assert inspections.inspection_gate_reason(s, food_case) is not None  # no conclusion yet
    record_all(demo, sid)
    with pytest.raises(RecordingUnavailable):
        inspections.conclude(demo, staff(demo, "expert1"), sid, conclusion="通过")
    rec_sha = add_recording(demo, sid)
    insp = inspections.conclude(demo, staff(demo, "expert1"), sid, conclusion="通过", note="符合要求")
    entry = audit_entries(demo, "assist.conclude")[-1]
    assert entry["digests"] == [{"kind": "snapshot", "sha256": fake_sha(1)}, {"kind": "snapshot", "sha256": fake_sha(2)},
                                {"kind": "recording", "sha256": rec_sha}]
    assert entry["state"] == {"from": "inspecting", "to": "passed"} and entry["case"] == food_case.number
    assert insp.digests == entry["digests"]
    with Session(demo) as s:
        assert inspections.passed_inspection(s, food_case.id)  # type: ignore[arg-type]
        assert inspections.inspection_gate_reason(s, food_case) is None
    with pytest.raises(InspectionIncomplete):
        inspections.conclude(demo, staff(demo, "expert1"), sid, conclusion="通过")


def test_inspection_pass_refused_when_a_point_needs_rectification(demo: Engine, food_case: Case) -> None:
    sid = open_inspection(demo, food_case)
    record_all(demo, sid, result="需整改")
    add_recording(demo, sid)
    expert = staff(demo, "expert1")
    with pytest.raises(InvalidInput):
        inspections.conclude(demo, expert, sid, conclusion="通过")
    with pytest.raises(InvalidInput):
        inspections.conclude(demo, expert, sid, conclusion="限期整改", today=TODAY)  # no deadline
    inspections.conclude(demo, expert, sid, conclusion="限期整改", rectify_by=TODAY + timedelta(days=15), today=TODAY)
    with Session(demo) as s:
        assert not inspections.passed_inspection(s, food_case.id)  # type: ignore[arg-type]
        reason = inspections.inspection_gate_reason(s, food_case)
    assert reason is not None and "限期整改" in reason


def test_inspection_gate_ignores_matters_without_inspection(demo: Engine, settings: object) -> None:
    from tests.remote_assist.conftest import PENSION_MATTER, new_case

    case = new_case(demo, settings, "teller1", PENSION_MATTER)  # type: ignore[arg-type]
    with Session(demo) as s:
        assert inspections.inspection_gate_reason(s, case) is None
