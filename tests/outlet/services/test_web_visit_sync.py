"""What the phone's outbox relies on from the submit endpoint (issue 12, a new user's faults):
a definite JSON answer for every item — 401 when the session is gone (the phone keeps the
item and asks for a login), 413 JSON for too many photos (never a login message); the
no-GPS reason is one of the listed codes; an offline visit carries the phone's times, which
must fit the visit (end ≥ start, not before the request, not in the future), and the record
keeps them while the sync time stays in the visit (server times) and the step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from outlet.services.models import HomeVisit, ServiceRecord, ServiceStep
from partners import logins
from partners.models import Staff
from tests.outlet.services.conftest import photo, png
from tests.outlet.services.test_web_services import _visit


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_submit_without_a_session_is_a_json_401_and_too_many_photos_a_json_413(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _visit(client, demo)
    url = f"/services/visits/{number}/submit"
    now = _iso(datetime.now(UTC))
    many = [("photos", (f"p{i}.png", photo(), "image/png")) for i in range(12)]
    r = client.post(url, data={"kind": "complete", "client_id": "complete-many", "phone_time": now,
                               "outcome": "done", "leave_no_gps": "其他"},
                    files=[*many, ("signature", ("s.png", png(), "image/png"))])
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/json")
    assert "最多 6 张照片" in r.json()["error"] and "登录" not in r.json()["error"]
    with Session(demo) as s, s.begin():  # the login ends on the server (expired, revoked)
        agent = s.exec(select(Staff).where(Staff.username == "agent1")).one()
        assert agent.id is not None and logins.end_all(s, agent.id, "test") >= 1
    r = client.post(url, data={"kind": "arrive", "client_id": "arrive-nosess", "phone_time": now,
                               "arrive_no_gps": "其他"})
    assert r.status_code == 401 and r.json()["login"] is True and "重新登录" in r.json()["error"]
    with Session(demo) as s:
        assert s.exec(select(HomeVisit).where(HomeVisit.number == number)).one().state == "assigned"


def test_no_gps_reason_must_be_one_of_the_listed_codes(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _visit(client, demo)
    url = f"/services/visits/{number}/submit"
    base = {"kind": "arrive", "client_id": "arrive-code-1", "phone_time": _iso(datetime.now(UTC))}
    r = client.post(url, data={**base, "arrive_no_gps": "我不想开定位" * 3})
    assert r.status_code == 422 and "无定位原因无效" in r.json()["error"]
    assert r.json()["field"] == "arrive_no_gps"
    assert client.post(url, data={**base, "arrive_no_gps": "室内无信号"}).status_code == 200


def test_offline_visit_keeps_the_phones_times_checked_against_the_visit(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _visit(client, demo)
    url = f"/services/visits/{number}/submit"
    now = datetime.now(UTC)
    arrived, left = now - timedelta(minutes=50), now - timedelta(minutes=20)
    before_request = client.post(url, data={"kind": "arrive", "client_id": "arrive-early",
                                            "phone_time": _iso(now - timedelta(days=2)),
                                            "arrive_no_gps": "其他"})
    assert before_request.status_code == 422 and "早于上门需求登记时间" in before_request.json()["error"]
    future = client.post(url, data={"kind": "arrive", "client_id": "arrive-future",
                                    "phone_time": _iso(now + timedelta(hours=2)), "arrive_no_gps": "其他"})
    assert future.status_code == 422 and "相差过大" in future.json()["error"]
    # the visit was requested "now": move the request back so the phone's arrival fits
    with Session(demo) as s:
        v = s.exec(select(HomeVisit).where(HomeVisit.number == number)).one()
        v.requested_at = (now - timedelta(hours=3)).replace(tzinfo=None)
        s.add(v)
        s.commit()
    ok = client.post(url, data={"kind": "arrive", "client_id": "arrive-ok", "phone_time": _iso(arrived),
                                "arrive_no_gps": "室内无信号"})
    assert ok.status_code == 200, ok.text
    files = [("signature", ("s.png", png(), "image/png"))]
    done = {"kind": "complete", "client_id": "complete-back", "outcome": "done", "leave_no_gps": "其他"}
    back = client.post(url, data={**done, "phone_time": _iso(arrived - timedelta(minutes=5))}, files=files)
    assert back.status_code == 422 and "离开时间早于到达时间" in back.json()["error"]
    long_note = client.post(url, data={**done, "client_id": "complete-long", "phone_time": _iso(left),
                                       "outcome_note": "说" * 501}, files=files)
    assert long_note.status_code == 422 and "500" in long_note.json()["error"]
    c = client.post(url, data={**done, "client_id": "complete-ok", "phone_time": _iso(left)}, files=files)
    assert c.status_code == 200, c.text
    with Session(demo) as s:
        v = s.exec(select(HomeVisit).where(HomeVisit.number == number)).one()
        rec = s.exec(select(ServiceRecord).where(ServiceRecord.visit_id == v.id)).one()
        step = s.exec(select(ServiceStep).where(ServiceStep.record_id == rec.id)).one()
    naive = lambda t: t.astimezone(UTC).replace(tzinfo=None, microsecond=t.microsecond)  # noqa: E731
    assert rec.started_at == naive(arrived) and rec.ended_at == naive(left)  # the visit's own times
    assert v.left_at is not None and v.left_at > rec.ended_at  # the sync time stays beside them
    assert step.at == v.left_at
