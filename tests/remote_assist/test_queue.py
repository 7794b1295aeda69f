"""Requests and the expert queue: routing by domain and level, escalation, position and
wait estimate, accept, cancel, call-back slots, stored waiting and handling times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.models import Case
from partners.errors import ActionRefused
from partners.models import utcnow
from remote_assist import queue, sessions
from remote_assist.config import AssistConfig
from remote_assist.errors import AlreadyTaken, InvalidInput, NotFound
from remote_assist.models import AssistCallback, AssistInspection, AssistRequest, AssistSession
from tests.remote_assist.conftest import (
    PENSION_MATTER,
    audit_entries,
    matter_named,
    new_case,
    staff,
)
from web.settings import Settings

CFG = AssistConfig(escalate_after_seconds=60, expire_after_seconds=3600)


def test_request_from_case_is_audited_with_case_and_matter(demo: Engine, food_case: Case) -> None:
    req = queue.create_request(demo, staff(demo, "teller2"), kind="inspection", case_id=food_case.id)
    assert (req.status, req.domain, req.level, req.recording_required) == ("waiting", "商事登记", "town", True)
    entry = audit_entries(demo, "assist.request")[-1]
    assert entry["case"] == food_case.number
    assert entry["outcome"] == {"result": "done"}
    assert entry["state"] == {"from": None, "to": "waiting"}


def test_request_for_another_outlets_case_is_not_found(demo: Engine, food_case: Case) -> None:
    with pytest.raises(NotFound):
        queue.create_request(demo, staff(demo, "teller1"), kind="help", case_id=food_case.id)


def test_walk_in_help_needs_a_granted_matter(demo: Engine) -> None:
    teller = staff(demo, "teller1")  # ICBC: 社保 granted with 视频办
    pension = matter_named(demo, PENSION_MATTER)
    req = queue.create_request(demo, teller, kind="help", matter_id=pension.id, topic="咨询参保")
    assert (req.case_id, req.domain, req.recording_required) == (None, "社保", False)
    food = matter_named(demo, "食品经营许可（新办）")  # not delegated to ICBC
    with pytest.raises(ActionRefused):
        queue.create_request(demo, teller, kind="help", matter_id=food.id)
    refused = audit_entries(demo, "assist.request")[-1]
    assert refused["outcome"]["result"] == "refused"


def test_inspection_needs_a_case(demo: Engine) -> None:
    food = matter_named(demo, "食品经营许可（新办）")
    with pytest.raises(InvalidInput):
        queue.create_request(demo, staff(demo, "teller2"), kind="inspection", matter_id=food.id)


def test_second_open_request_for_a_case_is_refused(demo: Engine, food_case: Case) -> None:
    queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id)
    with pytest.raises(AlreadyTaken):
        queue.create_request(demo, staff(demo, "teller2"), kind="inspection", case_id=food_case.id)


def test_queue_escalates_town_district_city(demo: Engine, food_case: Case) -> None:
    t0 = utcnow()
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id, now=t0)
    town, city, other = staff(demo, "expert1"), staff(demo, "expert2"), staff(demo, "expert3")
    with Session(demo) as s:
        assert [i.request.id for i in queue.expert_queue(s, town, t0, CFG)] == [req.id]
        assert queue.expert_queue(s, city, t0, CFG) == []  # city level waits for escalation
        assert queue.expert_queue(s, other, t0 + timedelta(hours=1), CFG) == []  # 社保 expert
        later = t0 + timedelta(seconds=125)
        assert [i.level for i in queue.expert_queue(s, city, later, CFG)] == ["city"]
    assert queue.sweep_requests(demo, t0 + timedelta(seconds=65), CFG) == {"商事登记"}
    with Session(demo) as s:
        stored = s.get(AssistRequest, req.id)
        assert stored is not None and stored.level == "district" and stored.escalated_at is not None


def test_sweep_expires_requests_nobody_took(demo: Engine, food_case: Case) -> None:
    t0 = utcnow()
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id, now=t0)
    queue.sweep_requests(demo, t0 + timedelta(seconds=3601), CFG)
    with Session(demo) as s:
        assert s.get(AssistRequest, req.id).status == "expired"  # type: ignore[union-attr]


def test_position_and_estimated_wait(demo: Engine, settings: Settings) -> None:
    teller = staff(demo, "teller2")
    first = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
    second = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
    with Session(demo) as s:
        assert queue.position_of(s, first) == 1
        assert queue.position_of(s, second) == 2
        mean = int(CFG.default_handle_seconds)
        assert queue.estimated_wait(s, first, experts_online=1, cfg=CFG) == 0  # next, and someone is free
        assert queue.estimated_wait(s, second, experts_online=1, cfg=CFG) == mean
        assert queue.estimated_wait(s, second, experts_online=2, cfg=CFG) == mean // 2
        assert queue.estimated_wait(s, second, experts_online=0, cfg=CFG) == 2 * mean  # nobody online


def test_accept_creates_a_two_party_session_and_stores_times(demo: Engine, food_case: Case) -> None:
    t0 = utcnow()
    teller, expert = staff(demo, "teller2"), staff(demo, "expert1")
    req = queue.create_request(demo, teller, kind="inspection", case_id=food_case.id, now=t0)
    call = queue.accept(demo, expert, req.id, now=t0 + timedelta(seconds=42))
    assert (call.teller_id, call.expert_id, call.state) == (teller.id, expert.id, "active")
    with pytest.raises(AlreadyTaken):
        queue.accept(demo, staff(demo, "expert2"), req.id)
    sessions.end_call(demo, call.id, by=teller.id, reason="hangup", now=t0 + timedelta(seconds=342))
    with Session(demo) as s:
        stored = s.get(AssistRequest, req.id)
        assert stored is not None
        assert (stored.status, stored.wait_seconds, stored.handle_seconds) == ("done", 42, 300)
        insp = s.exec(select(AssistInspection).where(AssistInspection.session_id == call.id)).one()
        assert len(insp.checklist) == 7
    assert audit_entries(demo, "assist.accept")[-1]["state"] == {"from": "waiting", "to": "accepted"}


def test_expert_of_other_domain_cannot_accept(demo: Engine, food_case: Case) -> None:
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id)
    with pytest.raises(ActionRefused):
        queue.accept(demo, staff(demo, "expert3"), req.id)  # 社保 expert


def test_expert_with_an_open_call_cannot_take_another(demo: Engine, settings: Settings) -> None:
    teller, expert = staff(demo, "teller2"), staff(demo, "expert1")
    a = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
    b = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
    queue.accept(demo, expert, a.id)
    with pytest.raises(AlreadyTaken):
        queue.accept(demo, expert, b.id)


def test_cancel_only_while_waiting(demo: Engine, food_case: Case) -> None:
    teller = staff(demo, "teller2")
    req = queue.create_request(demo, teller, kind="help", case_id=food_case.id)
    assert queue.cancel(demo, teller, req.id).status == "cancelled"
    with pytest.raises(AlreadyTaken):
        queue.cancel(demo, teller, req.id)
    with pytest.raises(NotFound):
        queue.cancel(demo, staff(demo, "teller1"), req.id)


def test_callback_slot_booking_fills_capacity(demo: Engine, settings: Settings) -> None:
    teller = staff(demo, "teller2")
    now = utcnow()
    with Session(demo) as s:
        slots = queue.callback_slots(s, "商事登记", now, CFG)
    assert len(slots) == 8 and all(room for _t, room in slots)
    assert all(t > now for t, _room in slots)
    slot = slots[0][0]
    booked = []
    for _ in range(2):  # expert1 (商事登记) and expert2 (all domains): capacity 2
        req = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
        booked.append(queue.book_callback(demo, teller, req.id, slot, now=now))
    third = queue.create_request(demo, teller, kind="help", case_id=new_case(demo, settings).id)
    with pytest.raises(InvalidInput):
        queue.book_callback(demo, teller, third.id, slot, now=now)
    any_domain = staff(demo, "expert2")
    with Session(demo) as s:
        assert dict(queue.callback_slots(s, "商事登记", now, CFG))[slot] is False
        assert s.get(AssistRequest, booked[0].request_id).status == "callback"  # type: ignore[union-attr]
        # a booked call-back is visible to every expert of the domain, whatever the level
        assert queue.expert_queue(s, any_domain, now, CFG)[0].callback_at == slot
    call = queue.accept(demo, staff(demo, "expert1"), booked[0].request_id)
    with Session(demo) as s:
        assert s.get(AssistCallback, booked[0].id).status == "done"  # type: ignore[union-attr]
        assert s.get(AssistSession, call.id) is not None


def test_walk_in_without_outlet_grant_refused_for_center_staff(demo: Engine) -> None:
    pension = matter_named(demo, PENSION_MATTER)
    with pytest.raises(NotFound):
        queue.create_request(demo, staff(demo, "expert1"), kind="help", matter_id=pension.id)


def test_sweep_times_out_abandoned_calls(demo: Engine, food_case: Case, settings: Settings) -> None:
    import asyncio

    from remote_assist.runtime import AssistRuntime

    t0 = utcnow()
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id, now=t0)
    call = queue.accept(demo, staff(demo, "expert1"), req.id, now=t0)
    cfg = AssistConfig(abandon_after_seconds=90)
    assert sessions.abandoned(demo, t0 + timedelta(seconds=60), cfg, set()) == []
    assert sessions.abandoned(demo, t0 + timedelta(seconds=91), cfg, {call.id}) == []  # someone is there
    assert sessions.abandoned(demo, t0 + timedelta(seconds=91), cfg, set()) == [call.id]
    runtime = AssistRuntime(settings, demo, AssistConfig(abandon_after_seconds=0))
    asyncio.run(runtime.sweep())
    with Session(demo) as s:
        stored = s.get(AssistSession, call.id)
        assert stored is not None and (stored.state, stored.end_reason) == ("timed_out", "timeout")


def test_city_expert_cannot_accept_before_escalation_and_the_refusal_is_audited(
    demo: Engine, food_case: Case
) -> None:
    t0 = utcnow()
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id, now=t0)
    city = staff(demo, "expert2")  # city level: offered only after two escalation steps
    with pytest.raises(ActionRefused) as refused:
        queue.accept(demo, city, req.id, now=t0 + timedelta(seconds=5), cfg=CFG)
    assert refused.value.code == "not_offered"
    assert audit_entries(demo, "assist.accept")[-1]["outcome"] == {"result": "refused", "reason": "not_offered"}
    call = queue.accept(demo, city, req.id, now=t0 + timedelta(seconds=121), cfg=CFG)
    assert call.expert_id == city.id


def test_chat_strips_control_characters_and_limits_each_participant(demo: Engine, food_case: Case) -> None:
    from remote_assist.errors import ChatTooFast

    t0 = utcnow()
    req = queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id, now=t0)
    expert, teller = staff(demo, "expert1"), staff(demo, "teller2")
    call = queue.accept(demo, expert, req.id, now=t0)
    msg = sessions.add_chat(demo, call.id, expert.id, "请\x00出示\x1b[31m身份证\u202e\u200b 正面\n谢谢", now=t0)
    assert msg is not None and msg.text == "请出示[31m身份证 正面 谢谢"
    for n in range(1, sessions.CHAT_BURST):
        sessions.add_chat(demo, call.id, expert.id, f"第{n}条", now=t0 + timedelta(seconds=n))
    with pytest.raises(ChatTooFast):
        sessions.add_chat(demo, call.id, expert.id, "太快了", now=t0 + timedelta(seconds=5))
    assert sessions.add_chat(demo, call.id, teller.id, "另一方不受影响", now=t0 + timedelta(seconds=5))
    assert sessions.add_chat(demo, call.id, expert.id, "稍后可以", now=t0 + timedelta(seconds=12))
