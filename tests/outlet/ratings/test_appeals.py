"""申诉复核: only the rated staff member, only a 差评, within 3 working days; the center
decides; upheld excludes the rating (kept on record), rejected changes nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session, select

from outlet.ratings import appeals
from outlet.ratings import workorders as wo
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import RatingError, RatingRefused
from partners.errors import WrongOutlet
from tests.outlet.conftest import _staff, audit_rows
from tests.outlet.ratings.conftest import EVE, RatingWorld


def _rating(rw: RatingWorld, rating_id: int) -> Rating:
    with Session(rw.engine) as s:
        row = s.get(Rating, rating_id)
        assert row is not None
        return row


def test_appeal_only_by_the_rated_staff_and_only_for_a_bad_rating(rw: RatingWorld) -> None:
    bad = rw.qr(rw.w.drive("accepted"), 2)
    good = rw.qr(rw.w.drive("accepted"), 4)
    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        colleague = _staff(s, "teller.a2", "teller", rw.w.outlet_a)
    with pytest.raises(WrongOutlet):
        appeals.file_appeal(rw.engine, rw.w.teller_b, bad.id or 0, reason="不是我", at=EVE)
    with pytest.raises(RatingRefused, match="只有被评价的工作人员本人"):
        appeals.file_appeal(rw.engine, colleague, bad.id or 0, reason="不是我", at=EVE)
    with pytest.raises(RatingRefused, match="只能对差评"):
        appeals.file_appeal(rw.engine, rw.w.teller_a, good.id or 0, reason="x", at=EVE)
    assert [e["outcome"]["reason"] for e in audit_rows(rw.engine, action="rating.appeal")] == [
        "wrong_outlet", "not_rated_staff", "not_bad_rating"]


def test_appeal_window_is_three_working_days(rw: RatingWorld) -> None:
    bad = rw.qr(rw.w.drive("accepted"), 1)  # Sep 30; 3 working days: Oct 8, 9, 10
    with pytest.raises(RatingRefused, match="3个工作日内"):
        appeals.file_appeal(rw.engine, rw.w.teller_a, bad.id or 0, reason="误点",
                            at=datetime(2026, 10, 12, 1, 0))
    appeal = appeals.file_appeal(rw.engine, rw.w.teller_a, bad.id or 0, reason="误点",
                                 evidence=b"%PDF-1.4 screenshot", at=datetime(2026, 10, 10, 1, 0))
    assert appeal.state == "pending" and str(appeal.decide_due) == "2026-10-16"
    assert audit_rows(rw.engine, action="rating.appeal")[-1]["digests"][0]["kind"] == "evidence"


def test_appeal_upheld_excludes_the_rating_rejected_changes_nothing(rw: RatingWorld) -> None:
    one, two = rw.qr(rw.w.drive("accepted"), 1), rw.qr(rw.w.drive("accepted"), 2)
    a1 = appeals.file_appeal(rw.engine, rw.w.teller_a, one.id or 0, reason="申请人误点", at=EVE)
    a2 = appeals.file_appeal(rw.engine, rw.w.teller_a, two.id or 0, reason="不认可", at=EVE)
    with pytest.raises(RatingError, match="认定类别"):
        appeals.decide_appeal(rw.engine, rw.w.reviewer, a1.id or 0, upheld=True, note="核实")
    with pytest.raises(Exception, match="无权"):
        appeals.decide_appeal(rw.engine, rw.w.teller_a, a1.id or 0, upheld=True,
                              category="误评", note="自己复核")
    appeals.decide_appeal(rw.engine, rw.w.reviewer, a1.id or 0, upheld=True, category="误评",
                          note="监控显示申请人误触", at=EVE)
    appeals.decide_appeal(rw.engine, rw.w.reviewer, a2.id or 0, upheld=False, note="评价属实",
                          at=EVE)
    assert (_rating(rw, one.id or 0).excluded, _rating(rw, one.id or 0).excluded_reason) == (
        True, "误评")
    assert _rating(rw, two.id or 0).excluded is False
    with Session(rw.engine) as s:
        states = {o.rating_id: o.state for o in s.exec(select(RatingWorkOrder)).all()}
    assert states == {one.id: "void", two.id: "open"}  # upheld: no deadline runs any more
    assert wo.escalate_overdue(rw.engine, at=datetime(2026, 11, 2, 1, 0)) == 1  # only ``two``
    with pytest.raises(RatingRefused, match="已复核"):
        appeals.decide_appeal(rw.engine, rw.w.reviewer, a1.id or 0, upheld=False, note="再议")
    states = [e["state"] for e in audit_rows(rw.engine, action="rating.appeal_decide")
              if e["outcome"]["result"] == "done"]
    assert states == [{"from": "pending", "to": "upheld"}, {"from": "pending", "to": "rejected"}]
