"""Submitting ratings: the leaf shape, one rating per case per stage, the 办结后 window,
replayed forms, wrong check codes — refused with a clear message, nothing half-stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pytest
from sqlmodel import Session, func, select

from outlet import devices, pii
from outlet.errors import WrongCheckCode
from outlet.ratings import submit
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import RatingInput, RatingRefused
from tests.outlet.conftest import AT, audit_rows
from tests.outlet.ratings.conftest import EVE, RatingWorld


def _count(rw: RatingWorld, model: type) -> int:
    with Session(rw.engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_submit_qr_leaf_has_exactly_the_documented_rating_shape(rw: RatingWorld) -> None:
    number = rw.w.drive("accepted")
    rating = rw.qr(number, 4, reasons=["g_fast"], dimensions={"attitude": 5}, text="讲解很耐心")
    [entry] = audit_rows(rw.engine, action="rating.submit")
    assert entry["rating"] == {
        "level": 4, "stage": "during", "channel": "qr", "dimensions": {"overall": 4, "attitude": 5},
        "reasons": ["g_fast"], "real_name": True, "object": "case",
    }
    assert entry["actor"] == {"id": 0, "role": "applicant"} and entry["case"] == number
    assert entry["subject"].startswith("hmac-sha256:")
    assert entry["digests"] == [{"kind": "text",
                                 "sha256": hashlib.sha256("讲解很耐心".encode()).hexdigest()}]
    assert "讲解很耐心" not in str(entry)
    assert rating.audit_index is not None and _count(rw, RatingWorkOrder) == 0


def test_submit_bad_rating_opens_a_work_order_with_working_day_deadlines(rw: RatingWorld) -> None:
    order = rw.bad_order(at=EVE)  # Wednesday before the National Day holiday
    assert order.state == "open" and order.owner_id == rw.lead.id and order.backup_id == rw.backup.id
    # 1 working day → Thursday Oct 8 (Oct 1–7 off); 5 → Oct 13 (Oct 10 is a make-up workday)
    assert (str(order.callback_due), str(order.rectify_due)) == ("2026-10-08", "2026-10-13")
    [entry] = audit_rows(rw.engine, action="rating.submit")
    assert entry["state"] == {"from": None, "to": "open"}


def test_submit_one_rating_per_case_per_stage_second_is_refused_and_audited(rw: RatingWorld) -> None:
    number = rw.w.drive("accepted")
    first = rw.qr(number, 5)
    with pytest.raises(RatingRefused, match="每个阶段只能评价一次") as exc:
        rw.qr(number, 1)
    assert exc.value.status_code == 409
    with Session(rw.engine) as s:
        assert [r.level for r in s.exec(select(Rating)).all()] == [first.level]
    assert _count(rw, RatingWorkOrder) == 0  # the refused 差评 opened nothing
    refused = audit_rows(rw.engine, action="rating.submit")[-1]
    assert refused["outcome"] == {"result": "refused", "reason": "already_rated"}
    assert "rating" not in refused


def test_submit_after_stage_of_an_uncompleted_case_is_refused(rw: RatingWorld) -> None:
    number = rw.w.drive("forwarded")
    with pytest.raises(RatingRefused, match="尚未办结"):
        rw.qr(number, 2, stage="after")
    assert _count(rw, Rating) == 0 and _count(rw, RatingWorkOrder) == 0


@pytest.mark.parametrize("stage", ["before", "during"])
def test_submit_before_or_during_stage_of_a_completed_case_is_refused_and_audited(
    rw: RatingWorld, stage: str
) -> None:
    """办事前 / 办理中 rate a service that is still going on (GB/T 39734-2020 stages): once the
    case is completed only 办结后 is left."""
    number = rw.w.drive("approved")
    with pytest.raises(RatingRefused, match="已办结"):
        rw.qr(number, 2, stage=stage)
    assert _count(rw, Rating) == 0 and _count(rw, RatingWorkOrder) == 0
    refused = audit_rows(rw.engine, action="rating.submit")[-1]
    assert refused["outcome"] == {"result": "refused", "reason": "stage_passed"}


def test_submit_after_stage_window_is_five_working_days_across_the_holiday(rw: RatingWorld) -> None:
    # completed Monday Sep 28; 5 working days: Sep 29, 30, Oct 8, 9, 10 (make-up Saturday)
    late, in_time = rw.w.drive("approved"), rw.w.drive("approved")
    assert rw.w.case(in_time).completed_at == AT
    rw.qr(in_time, 5, stage="after", at=datetime(2026, 10, 10, 8, 0))
    with pytest.raises(RatingRefused, match="5个工作日内") as exc:
        rw.qr(late, 5, stage="after", at=datetime(2026, 10, 12, 1, 0))
    assert exc.value.code == "window_closed" and _count(rw, Rating) == 1


def test_submit_replayed_form_is_refused(rw: RatingWorld) -> None:
    number, other = rw.w.drive("accepted"), rw.w.drive("accepted")
    data = RatingInput(level=3, nonce=secrets.token_urlsafe(16))
    submit.submit_qr(rw.engine, number, rw.w.case(number).check_code, "during", data,
                     reasons_version=1, at=EVE)
    with pytest.raises(RatingRefused, match="请勿重复提交"):
        submit.submit_qr(rw.engine, other, rw.w.case(other).check_code, "during", data,
                         reasons_version=1, at=EVE)
    assert _count(rw, Rating) == 1


def test_submit_wrong_check_code_is_refused(rw: RatingWorld) -> None:
    number = rw.w.drive("accepted")
    data = RatingInput(level=1, nonce=secrets.token_urlsafe(16))
    wrong = "000000" if rw.w.case(number).check_code != "000000" else "111111"
    with pytest.raises(WrongCheckCode):
        submit.submit_qr(rw.engine, number, wrong, "during", data, reasons_version=1, at=EVE)
    assert _count(rw, Rating) == 0


def test_submit_device_rating_is_anonymous_of_the_paired_staff(rw: RatingWorld) -> None:
    device, token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="1号窗口",
                                 staff_id=rw.w.teller_a.id)
    found = devices.resolve(rw.engine, token, kind="rating_pad")
    key = b"k" * 32
    with pytest.raises(ValueError):  # a call-back number is never stored in clear
        submit.submit_device(rw.engine, found, "during",
                             RatingInput(level=2, contact_phone="13900001111",
                                         nonce=secrets.token_urlsafe(16)), reasons_version=1, at=EVE)
    rating = submit.submit_device(rw.engine, found, "during",
                                  RatingInput(level=2, contact_phone="13900001111",
                                              nonce=secrets.token_urlsafe(16)),
                                  reasons_version=1, pii_key=key, at=EVE)
    assert (rating.staff_id, rating.real_name) == (rw.w.teller_a.id, False)
    assert "13900001111" not in (rating.contact_phone or "")  # sealed at rest
    assert pii.unseal(key, rating.contact_phone, column=submit.PHONE_COLUMN) == "13900001111"
    entry = audit_rows(rw.engine, action="rating.submit")[-1]
    assert entry["actor"] == {"id": device.id, "role": "device"} and entry["case"] is None
    assert entry["rating"]["object"] == "staff" and "13900001111" not in str(entry)
    second = submit.submit_device(rw.engine, found, "before",  # anonymous: no per-stage limit
                                  RatingInput(level=5, nonce=secrets.token_urlsafe(16)),
                                  reasons_version=1, at=EVE)
    assert second.id != rating.id
    assert (second.object, second.staff_id) == ("outlet", None)  # 办事前: the waiting, not the teller
    devices.revoke(rw.engine, rw.lead, device.id or 0)
    with pytest.raises(devices.DeviceRefused):
        devices.resolve(rw.engine, token, kind="rating_pad")


def _session(rw: RatingWorld, *, ended: bool, expert_id: int) -> int:
    from remote_assist.models import AssistRequest, AssistSession

    number = rw.w.drive("accepted")
    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        req = AssistRequest(kind="help", case_id=rw.w.case(number).id, outlet_id=rw.w.outlet_a.id or 0,
                            domain="社保", requested_by=rw.w.teller_a.id or 0, status="ended")
        s.add(req)
        s.flush()
        sess = AssistSession(request_id=req.id or 0, teller_id=rw.w.teller_a.id or 0,
                             expert_id=expert_id, ended_at=EVE if ended else None)
        s.add(sess)
        s.flush()
        return sess.id or 0


def test_submit_call_rates_the_expert_once_after_the_session(rw: RatingWorld) -> None:
    expert = rw.w.reviewer  # any staff row serves as the session's expert here
    live, ended = (_session(rw, ended=False, expert_id=expert.id or 0),
                   _session(rw, ended=True, expert_id=expert.id or 0))

    def rate(actor, sid: int) -> Rating:  # type: ignore[no-untyped-def]
        return submit.submit_call(rw.engine, actor, sid,
                                  RatingInput(level=4, nonce=secrets.token_urlsafe(16)),
                                  reasons_version=1, at=EVE)

    with pytest.raises(RatingRefused, match="已结束的视频帮办"):
        rate(rw.w.teller_a, live)
    rating = rate(rw.w.teller_a, ended)
    assert (rating.object, rating.channel, rating.staff_id, rating.real_name) == (
        "assist", "call", expert.id, True)
    with pytest.raises(RatingRefused, match="本次视频帮办的评价已提交") as again:
        rate(rw.w.teller_a, ended)
    assert "办件" not in again.value.message  # a video session is not a case
    entry = [e for e in audit_rows(rw.engine, action="rating.submit")
             if e["outcome"]["result"] == "done"][-1]
    assert entry["actor"]["role"] == "teller" and entry["rating"]["channel"] == "call"
