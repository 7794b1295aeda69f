"""The 差评 work order: every transition allowed and refused (audited), the real-name
call-back rule, AB角 backup, role scoping and overdue escalation."""

from __future__ import annotations

from datetime import datetime

import pytest

from outlet.ratings import workorders as wo
from outlet.ratings.rules import RatingError, RatingRefused
from outlet.workdays import WorkCalendar
from partners.errors import RoleLacksAction, WrongOutlet
from tests.outlet.conftest import audit_rows
from tests.outlet.ratings.conftest import EVE, RatingWorld

STEPS = {
    "callback": lambda rw, oid: wo.record_callback(rw.engine, rw.lead, oid, reached=True,
                                                   note="已电话联系申请人", at=EVE),
    "rectify": lambda rw, oid: wo.record_rectification(rw.engine, rw.lead, oid, kind="rectify",
                                                       note="增设引导岗", at=EVE),
    "feedback": lambda rw, oid: wo.record_feedback(rw.engine, rw.lead, oid, view="满意", at=EVE),
    "close": lambda rw, oid: wo.close(rw.engine, rw.lead, oid, at=EVE),
}
PATHS = {"open": [], "called_back": ["callback"], "rectified": ["callback", "rectify"],
         "feedback": ["callback", "rectify", "feedback"],
         "closed": ["callback", "rectify", "feedback", "close"]}
ALLOWED = {"open": {"callback", "rectify"}, "called_back": {"callback", "rectify"},
           "rectified": {"callback", "feedback", "close"}, "feedback": {"callback", "close"},
           "closed": set()}


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("step", list(STEPS))
def test_workorder_transition_table(rw: RatingWorld, state: str, step: str) -> None:
    order = rw.bad_order()
    for s in PATHS[state]:
        STEPS[s](rw, order.id)
    assert rw.order(order.id or 0).state == state
    if step in ALLOWED[state]:
        STEPS[step](rw, order.id)
        target = {"callback": "called_back", "rectify": "rectified", "feedback": "feedback",
                  "close": "closed"}[step]
        if step == "callback" and state in ("rectified", "feedback"):
            target = state  # a late call-back is recorded, the order stays where it is
        assert rw.order(order.id or 0).state == target
        assert audit_rows(rw.engine)[-1]["state"] == {"from": state, "to": target}
    else:
        with pytest.raises(RatingRefused, match="工单当前为") as exc:
            STEPS[step](rw, order.id)
        assert exc.value.status_code == 409 and rw.order(order.id or 0).state == state
        last = audit_rows(rw.engine)[-1]
        assert last["action"] == f"rating.{step}"
        assert last["outcome"] == {"result": "refused", "reason": "illegal_transition"}


def test_workorder_steps_point_at_the_rating_entry(rw: RatingWorld) -> None:
    order = rw.bad_order()
    for s in PATHS["closed"]:
        STEPS[s](rw, order.id)
    submitted = audit_rows(rw.engine, action="rating.submit")[0]
    steps = [e for e in audit_rows(rw.engine) if e["action"] in
             ("rating.callback", "rating.rectify", "rating.feedback", "rating.close")]
    index = next(i for i, e in enumerate(audit_rows(rw.engine)) if e == submitted)
    assert [e["rating"]["entry"] for e in steps] == [index] * 4
    # the rater's view rides on the feedback step (for 回访整改满意率 from the log)
    assert [set(e["rating"]) for e in steps] == [{"entry"}, {"entry"}, {"entry", "view"}, {"entry"}]
    assert all(e["case"] == submitted["case"] for e in steps)


def test_workorder_real_name_cannot_be_closed_without_a_callback(rw: RatingWorld) -> None:
    order = rw.bad_order()
    wo.record_rectification(rw.engine, rw.lead, order.id or 0, kind="explain",
                            note="申请人材料不全，非工作失误", at=EVE)
    with pytest.raises(RatingRefused, match="实名差评须先记录回访"):
        wo.close(rw.engine, rw.lead, order.id or 0, at=EVE)
    assert audit_rows(rw.engine)[-1]["outcome"]["reason"] == "callback_missing"
    wo.record_callback(rw.engine, rw.lead, order.id or 0, reached=False, note="无人接听", at=EVE)
    assert wo.close(rw.engine, rw.lead, order.id or 0, at=EVE).state == "closed"


def test_workorder_input_errors_store_nothing(rw: RatingWorld) -> None:
    order = rw.bad_order()
    before = len(audit_rows(rw.engine))
    with pytest.raises(RatingError, match="请填写回访情况"):
        wo.record_callback(rw.engine, rw.lead, order.id or 0, reached=True, note=" ", at=EVE)
    with pytest.raises(RatingError, match="请选择整改或解释说明"):
        wo.record_rectification(rw.engine, rw.lead, order.id or 0, kind="x", note="n", at=EVE)
    assert len(audit_rows(rw.engine)) == before and rw.order(order.id or 0).state == "open"


def test_workorder_backup_lead_may_act_tellers_and_other_outlets_may_not(rw: RatingWorld) -> None:
    order = rw.bad_order()
    with pytest.raises(RoleLacksAction):
        wo.record_callback(rw.engine, rw.w.teller_a, order.id or 0, reached=True, note="x", at=EVE)
    wo.record_callback(rw.engine, rw.backup, order.id or 0, reached=True, note="AB角回访", at=EVE)
    assert audit_rows(rw.engine)[-1]["actor"] == {"id": rw.backup.id, "role": "outlet_lead"}


def test_workorder_lead_of_another_outlet_without_backup_is_refused(rw: RatingWorld) -> None:
    from sqlmodel import Session

    from tests.outlet.conftest import _staff

    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        stranger = _staff(s, "lead.c", "outlet_lead", rw.w.outlet_b)
    order = rw.bad_order()
    with pytest.raises(WrongOutlet):
        wo.close(rw.engine, stranger, order.id or 0, at=EVE)
    assert audit_rows(rw.engine)[-1]["outcome"] == {"result": "refused", "reason": "wrong_outlet"}


def test_workorder_overdue_escalates_once(rw: RatingWorld) -> None:
    order = rw.bad_order()  # 回访 due Oct 8
    cal = WorkCalendar()
    assert wo.deadline_status(cal, cal.add_workdays(EVE.date(), 0).day, rw.order(order.id or 0)) \
        == "due_soon"
    assert wo.escalate_overdue(rw.engine, at=datetime(2026, 10, 8, 9, 0)) == 0  # due today
    assert wo.escalate_overdue(rw.engine, at=datetime(2026, 10, 9, 1, 0)) == 1
    assert wo.escalate_overdue(rw.engine, at=datetime(2026, 10, 9, 2, 0)) == 0
    [entry] = audit_rows(rw.engine, action="rating.escalate")
    assert entry["actor"] == {"id": 0, "role": "system"} and entry["rating"]["entry"] >= 0
    assert rw.order(order.id or 0).escalated_at is not None


def _expert_bad_order(rw: RatingWorld, domain: str = "社保") -> tuple[int, object]:
    """A 1-star rating of a 社保 expert after a video session → its work order id."""
    import secrets

    from sqlmodel import Session, select

    from outlet.ratings import submit
    from outlet.ratings.models import RatingWorkOrder
    from outlet.ratings.rules import RatingInput
    from remote_assist.models import AssistRequest, AssistSession
    from tests.outlet.conftest import _staff

    case_id = rw.w.case(rw.w.drive("accepted")).id
    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        expert = _staff(s, f"expert.{domain}", "expert", None, domain)
        req = AssistRequest(kind="help", case_id=case_id, outlet_id=rw.w.outlet_a.id or 0,
                            domain=domain, requested_by=rw.w.teller_a.id or 0, status="ended")
        s.add(req)
        s.flush()
        sess = AssistSession(request_id=req.id or 0, teller_id=rw.w.teller_a.id or 0,
                             expert_id=expert.id or 0, ended_at=EVE)
        s.add(sess)
        s.flush()
    rating = submit.submit_call(rw.engine, rw.w.teller_a, sess.id or 0,
                                RatingInput(level=1, nonce=secrets.token_urlsafe(16)),
                                reasons_version=1, at=EVE)
    with Session(rw.engine) as s:
        order = s.exec(select(RatingWorkOrder).where(RatingWorkOrder.rating_id == rating.id)).one()
    return order.id or 0, expert


def test_workorder_of_an_expert_goes_to_the_center_unit_of_the_experts_domain(rw: RatingWorld) -> None:
    order_id, expert = _expert_bad_order(rw)
    order = rw.order(order_id)
    assert (order.unit, order.owner_id) == ("center", rw.w.reviewer.id)  # the 社保 reviewer
    # the outlet lead does not handle it, nor does a reviewer of another domain: refused, audited
    with pytest.raises(RatingRefused, match="中心负责"):
        wo.record_callback(rw.engine, rw.lead, order_id, reached=True, note="x", at=EVE)
    assert audit_rows(rw.engine)[-1]["outcome"] == {"result": "refused", "reason": "not_responsible"}
    with pytest.raises(RatingRefused, match="不属于您负责的业务领域"):  # not "网点不能处理"
        wo.record_callback(rw.engine, rw.w.reviewer_other, order_id, reached=True, note="x", at=EVE)
    wo.record_callback(rw.engine, rw.w.reviewer, order_id, reached=True, note="已回访申请人", at=EVE)
    wo.record_rectification(rw.engine, rw.w.reviewer, order_id, kind="rectify",
                            note="专家补充讲解话术培训", at=EVE)
    wo.close(rw.engine, rw.w.reviewer, order_id, at=EVE)
    assert rw.order(order_id).state == "closed"
    assert audit_rows(rw.engine)[-1]["actor"] == {"id": rw.w.reviewer.id, "role": "reviewer"}
    # and a reviewer may not work an outlet's own order
    outlet_order = rw.bad_order()
    assert outlet_order.unit == "outlet"
    with pytest.raises(RatingRefused, match="网点负责人"):
        wo.record_callback(rw.engine, rw.w.reviewer, outlet_order.id or 0, reached=True, note="x", at=EVE)


def test_workorder_the_rated_expert_may_appeal(rw: RatingWorld) -> None:
    from datetime import timedelta

    from sqlmodel import Session, select

    from outlet.ratings import appeals
    from outlet.ratings.models import Rating

    order_id, expert = _expert_bad_order(rw)
    with Session(rw.engine) as s:
        rating = s.exec(select(Rating).where(Rating.id == rw.order(order_id).rating_id)).one()
    appeal = appeals.file_appeal(rw.engine, expert, rating.id or 0, reason="网络中断所致",  # type: ignore[arg-type]
                                 at=EVE + timedelta(hours=1))
    assert appeal.state == "pending"
