"""The fresh tester's faults on 上门办 (issue 12, branch svc3): ids that are no row refused with
the form kept, refusals of the phone endpoint audited with the visit's number, 改派 while the
agent works offline, the outcome shown to everyone who may view the visit, decimals in ASCII."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup
from sqlmodel import Session, select

from outlet.errors import InvalidInput
from outlet.services.evidence import position
from outlet.services.models import HomeVisit, ServiceRecord
from partners.models import Outlet, Staff
from partners.numbers import ascii_decimal
from tests.conftest import login
from tests.outlet.conftest import _staff, audit_rows, second_client
from tests.outlet.services.conftest import png
from tests.outlet.services.test_web_visit_assign import REFERRAL, _id, _point, _refer


def _soup(r) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(r.text, "html.parser")


def _visits(demo) -> int:  # type: ignore[no-untyped-def]
    with Session(demo) as s:
        return len(s.exec(select(HomeVisit)).all())


@pytest.mark.parametrize("matter", ["0", "9999", "²", "2147483648"])
def test_a_matter_that_is_no_matter_is_refused_with_the_form_kept(client, demo, matter: str) -> None:  # type: ignore[no-untyped-def]
    login(client, "lead3")
    r = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": str(_point(demo)),
                                                  "matter_id": matter})
    assert r.status_code == 422, r.text[:300]
    page = _soup(r)
    assert page.select_one("#visit-error").text == "所选事项不存在"
    assert page.select_one("#new-visit-form input[name=contact_name]")["value"] == "周大娘"
    assert _visits(demo) == 0


@pytest.mark.parametrize("point", ["²", "８", "9" * 30])
def test_a_point_that_is_no_id_is_refused_not_replaced_by_the_users_own(client, demo, point: str) -> None:  # type: ignore[no-untyped-def]
    login(client, "lead3")  # the point's lead: falling back to the own outlet would "work"
    r = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": point})
    assert r.status_code == 422
    assert _soup(r).select_one("#visit-error").text == "请选择服务站"
    assert _soup(r).select_one("#new-visit-form input[name=address]")["value"] == REFERRAL["address"]
    assert _visits(demo) == 0


def test_a_consultation_with_a_matter_that_is_no_id_is_refused(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    for matter in ("²", "0"):
        r = client.post("/services/new", data={"kind": "咨询", "topic": "社保卡补办", "matter_id": matter})
        assert r.status_code == 422
        assert _soup(r).select_one("#new-service-form textarea[name=topic], #new-service-form input[name=topic]")
        assert "所选事项不存在" in r.text and "社保卡补办" in r.text
    with Session(demo) as s:
        assert s.exec(select(ServiceRecord)).all() == []


def test_a_refused_phone_submission_is_audited_with_the_visits_number(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _refer(client, demo)
    assert number.startswith("SM-")
    with second_client(client) as c:
        login(c, "teller4")  # staff of another outlet: the visit does not exist for them
        r = c.post(f"/services/visits/{number}/submit", data={
            "kind": "arrive", "client_id": "arrive-probe-1", "phone_time": datetime.now(UTC).isoformat(),
            "arrive_no_gps": "其他"})
        assert r.status_code == 404 and r.json()["ok"] is False
        assert c.get(f"/services/visits/{number}").status_code == 404
    refused = audit_rows(demo, "access.refused")
    assert [(e["state"]["from"], e.get("case")) for e in refused] == [
        ("POST:/services/visits/:number/submit", number), ("GET:/services/visits/:number", number)]
    assert all(e["outcome"]["reason"] == "not_found" for e in refused)


def test_reassigned_while_offline_the_arrival_is_refused_with_its_own_reason(client, demo) -> None:  # type: ignore[no-untyped-def]
    with Session(demo, expire_on_commit=False) as s, s.begin():
        agent2 = _staff(s, "agent2", "block_agent", s.get(Outlet, _point(demo)))
    number = _refer(client, demo)
    agent1 = _id(demo, Staff, username="agent1")
    with second_client(client) as lead:
        login(lead, "lead3")
        lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent1)})
        row = _soup(lead.get("/services/visits/")).select_one(f"#assign-{number}")
        warning = row.select_one(".reassign-warning").text  # a line to confirm, not a block
        assert "李秀兰" in warning and "离线" in warning
        assert lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent2.id)},
                         follow_redirects=False).status_code == 303
    with second_client(client) as phone:
        login(phone, "agent1")  # the arrival recorded at the door before 改派 syncs now
        r = phone.post(f"/services/visits/{number}/submit", data={
            "kind": "arrive", "client_id": "arrive-offline-1", "phone_time": datetime.now(UTC).isoformat(),
            "arrive_no_gps": "室内无信号"})
    assert r.status_code == 403
    assert r.json()["error"] == "已改派给其他网格员，请联系服务站负责人"
    assert r.json()["code"] == "not_assigned"  # the phone offers 放弃 / 保留, not 修改后重发


def test_everyone_who_may_view_a_visit_sees_how_it_ended_and_no_phone_outbox(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _refer(client, demo)  # teller1 refers it
    agent1 = _id(demo, Staff, username="agent1")
    with second_client(client) as lead:
        login(lead, "lead3")
        lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent1)})
    with second_client(client) as phone:
        login(phone, "agent1")
        url = f"/services/visits/{number}/submit"
        now = datetime.now(UTC).isoformat()
        assert phone.post(url, data={"kind": "arrive", "client_id": "arrive-end-1", "phone_time": now,
                                     "arrive_no_gps": "其他"}).status_code == 200
        done = phone.post(url, data={"kind": "complete", "client_id": "complete-end-1", "phone_time": now,
                                     "outcome": "handed_over", "outcome_note": "转至街道民政科",
                                     "leave_no_gps": "其他"},
                          files=[("signature", ("s.png", png(), "image/png"))])
        assert done.status_code == 200, done.text
        assert _soup(phone.get(f"/services/visits/{number}")).select_one("#outbox")  # the agent's phone
    for user, browser in (("teller1", client), ("lead1", None), ("lead3", None)):
        with second_client(client) as other:
            viewer = browser or other
            if browser is None:
                login(viewer, user)
            page = _soup(viewer.get(f"/services/visits/{number}"))
            assert page.select_one("#visit-done").text == "已办结：已转办（转至街道民政科）", user
    teller_page = _soup(client.get(f"/services/visits/{number}"))
    assert teller_page.select_one("#outbox") is None and "今日上门" not in teller_page.text


@pytest.mark.parametrize("raw", ["3５.9", "1_0", "1e1", "nan", "inf", "٣٥", "35.", ".5", "", "+1"])
def test_decimals_from_requests_are_ascii_digits_only(raw: str) -> None:
    assert ascii_decimal(raw) is None


def test_decimals_in_ascii_are_read() -> None:
    assert ascii_decimal(" 35.95 ") == 35.95 and ascii_decimal("-0.5") == -0.5 and ascii_decimal("120") == 120.0


def test_a_full_width_digit_in_a_position_is_refused_like_one_in_the_phone_time() -> None:
    with pytest.raises(InvalidInput) as bad:
        position({"leave_lat": "3５.9", "leave_lon": "120.18", "leave_accuracy": "15"}, "leave")
    assert bad.value.message == "定位数据格式有误"
    assert position({"leave_lat": "35.9", "leave_lon": "120.18", "leave_accuracy": "15"}, "leave")["lat"] == 35.9


def test_a_nul_in_a_visit_form_is_a_422_beside_the_form_kept(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "lead3")  # the tester's case: 王\x00大爷 gave a bare 400 page
    r = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": str(_point(demo)),
                                                  "contact_name": "王\x00大爷"})
    assert r.status_code == 422
    page = _soup(r)
    assert page.select_one("#visit-error").text.startswith("输入中含有不可见的控制字符")
    kept = page.select_one("#new-visit-form")
    assert kept.select_one("input[name=contact_name]")["value"] == "王大爷"  # the character removed
    assert kept.select_one("input[name=address]")["value"] == REFERRAL["address"]
    assert _visits(demo) == 0


def test_a_nul_in_a_service_record_action_is_a_422_beside_the_form_kept(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    r = client.post("/services/new", data={"kind": "咨询", "topic": "退休\x00提取公积金"})
    assert r.status_code == 422
    assert "不可见的控制字符" in _soup(r).select_one("#service-error, .error").text
    assert "退休提取公积金" in r.text
    created = client.post("/services/new", data={"kind": "咨询", "topic": "退休提取公积金"},
                          follow_redirects=False)
    number = created.headers["location"].rsplit("/", 1)[1]
    r = client.post(f"/services/{number}/actions/close", data={"outcome": "answered", "note": "已\x00说明"})
    assert r.status_code == 422 and "不可见的控制字符" in r.text and "已说明" in r.text
    with Session(demo) as s:
        assert s.exec(select(ServiceRecord)).one().state == "open"  # nothing closed
