"""The service pages through the real app: teller1 records a consultation and hands it over,
lead1 closes it; agent1 requests, arrives and completes a home visit through the phone's
submit endpoint (idempotent by client id); bad inputs answer clear messages."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlmodel import Session, select

from outlet.services.models import HomeVisit, ServiceRecord, VisitSubmission
from partners.models import Staff
from tests.conftest import login
from tests.outlet.conftest import audit_rows, second_client
from tests.outlet.services.conftest import photo, png

NOW = "2026-11-30T02:00:00Z"


def _soup(r) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(r.text, "html.parser")


def _staff_id(engine, username: str) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.exec(select(Staff.id).where(Staff.username == username)).one())


def test_teller_records_a_consultation_hands_it_over_and_the_lead_closes(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    page = client.get("/services/")
    assert page.status_code == 200 and _soup(page).select_one("#new-service-form")
    bad = client.post("/services/new", data={"kind": "咨询", "topic": ""})
    assert bad.status_code == 422 and _soup(bad).select_one("#err-topic")
    no_id = client.post("/services/new", data={"kind": "咨询", "topic": "社保", "applicant_name": "张三"})
    assert no_id.status_code == 422 and _soup(no_id).select_one("#err-id_number").text == "请填写证件号码"
    r = client.post("/services/new", data={"kind": "咨询", "topic": "退休提取公积金要带什么"},
                    follow_redirects=False)
    assert r.status_code == 303
    number = r.headers["location"].rsplit("/", 1)[1]
    lead = _staff_id(demo, "lead1")
    empty = client.post(f"/services/{number}/actions/handover", data={"to_staff_id": str(lead), "note": ""})
    assert empty.status_code == 422 and _soup(empty).select_one("#err-note")
    r = client.post(f"/services/{number}/actions/handover",
                    data={"to_staff_id": str(lead), "note": "已说明材料，待确认离休证明"})
    soup = _soup(r)
    assert "刘建国" in soup.select_one("#service-owner").text
    refused = client.post(f"/services/{number}/actions/close", data={"outcome": "answered"})
    assert refused.status_code == 403 and "首问责任人" in _soup(refused).select_one("#service-error").text
    with second_client(client) as other:
        login(other, "lead1")
        r = other.post(f"/services/{number}/actions/close", data={"outcome": "answered"})
        assert "已解答" in _soup(r).select_one("#service-outcome").text
    actions = [(e["action"], e["outcome"]["result"]) for e in audit_rows(demo, case=number)]
    assert actions == [("service.open", "done"), ("service.handover", "done"),
                       ("service.close", "refused"), ("service.close", "done")]


def test_teller_without_daiban_scope_is_refused_and_it_is_recorded(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")  # 工商银行: grants carry 咨询/帮办 but no 代办
    page = _soup(client.get("/services/"))
    matter = page.select_one("#f-matter_id option[value!='']")["value"]
    r = client.post("/services/new", data={"kind": "代办", "matter_id": matter, "topic": "代办社保卡",
                                           "applicant_name": "张三", "id_number": "11010519491231002X"})
    assert r.status_code == 403 and "代办" in _soup(r).select_one("#service-error").text
    assert _soup(r).select_one("#f-applicant_name")["value"] == "张三"  # input kept
    last = audit_rows(demo, "service.open")[-1]
    assert last["outcome"] == {"result": "refused", "reason": "scope_not_granted"}


def _visit(client, demo) -> str:  # type: ignore[no-untyped-def]
    login(client, "agent1")
    agent = _staff_id(demo, "agent1")
    r = client.post("/services/visits/new", data={
        "kind": "帮办", "contact_name": "王大爷", "address": "海韵路 12 号 3 单元 101", "reason": "年老",
        "channel": "网格员", "assignee_id": str(agent), "preferred": "周三上午"}, follow_redirects=False)
    assert r.status_code == 303
    with Session(demo) as s:
        return s.exec(select(HomeVisit.number)).one()


def test_agent_completes_a_visit_and_a_resent_submission_changes_nothing(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _visit(client, demo)
    today = _soup(client.get("/services/visits/today"))
    assert today.select_one(f'a[data-visit="{number}"]')
    page = client.get(f"/services/visits/{number}")
    assert "geolocation=(self)" in page.headers["permissions-policy"]
    assert "geolocation=()" in client.get("/services/visits/today").headers["permissions-policy"]
    url = f"/services/visits/{number}/submit"
    from datetime import UTC, datetime
    now = datetime.now(UTC).isoformat()
    arrive = {"kind": "arrive", "client_id": "arrive-0001", "phone_time": now,
              "arrive_lat": "35.8901", "arrive_lon": "120.0903", "arrive_accuracy": "15"}
    a1 = client.post(url, data=arrive)
    assert a1.status_code == 200 and a1.json()["state"] == "arrived"
    a2 = client.post(url, data=arrive)
    assert a2.status_code == 200 and a2.json()["replayed"] is True
    done = {"kind": "complete", "client_id": "complete-0001", "phone_time": now, "outcome": "done",
            "leave_no_gps": "室内无信号"}
    files = [("photos", ("p.png", photo(), "image/png")), ("signature", ("s.png", png(), "image/png"))]
    c1 = client.post(url, data=done, files=files)
    assert c1.status_code == 200, c1.text
    c2 = client.post(url, data=done, files=files)
    assert c2.status_code == 200 and c2.json()["record"] == c1.json()["record"]
    again = client.post(url, data={**done, "client_id": "complete-0002"}, files=files)
    assert again.status_code == 409 and "已办结" in again.json()["error"]
    record = _soup(client.get(f"/services/{c1.json()['record']}"))
    applicant = record.select_one("#service-applicant").text
    assert "王**" in applicant and "王大爷" not in applicant and number in applicant  # masked, from the request
    with Session(demo) as s:
        assert len(s.exec(select(ServiceRecord).where(ServiceRecord.home)).all()) == 1
        assert len(s.exec(select(VisitSubmission)).all()) == 2
    [entry] = [e for e in audit_rows(demo, "visit.complete") if e["outcome"]["result"] == "done"]
    import hashlib
    assert {"kind": "photo", "sha256": hashlib.sha256(photo()).hexdigest()} in entry["digests"]
    assert {"kind": "signature", "sha256": hashlib.sha256(png()).hexdigest()} in entry["digests"]


def test_bad_visit_inputs_get_clear_messages_and_nothing_is_recorded(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _visit(client, demo)
    url = f"/services/visits/{number}/submit"
    from datetime import UTC, datetime
    now = datetime.now(UTC).isoformat()
    base = {"kind": "arrive", "client_id": "arrive-bad-1", "phone_time": now}
    out = client.post(url, data={**base, "arrive_lat": "48.85", "arrive_lon": "2.35", "arrive_accuracy": "10"})
    assert out.status_code == 422 and "不在中国境内" in out.json()["error"]
    acc = client.post(url, data={**base, "arrive_lat": "35.89", "arrive_lon": "120.09", "arrive_accuracy": "90000"})
    assert acc.status_code == 422 and "定位精度" in acc.json()["error"]
    none = client.post(url, data=base)
    assert none.status_code == 422 and "原因" in none.json()["error"]
    ok = client.post(url, data={**base, "arrive_no_gps": "未授权定位"})
    assert ok.status_code == 200
    done = {"kind": "complete", "client_id": "complete-bad-1", "phone_time": now, "outcome": "done",
            "leave_no_gps": "其他"}
    pdf = client.post(url, data=done, files=[("photos", ("p.jpg", b"%PDF-1.4 not a photo", "image/jpeg")),
                                             ("signature", ("s.png", png(), "image/png"))])
    assert pdf.status_code == 415 and "不是图片" in pdf.json()["error"]
    blank = client.post(url, data=done, files=[("signature", ("s.png", png(ink=False), "image/png"))])
    assert blank.status_code == 422 and "签名为空" in blank.json()["error"]
    with Session(demo) as s:
        assert s.exec(select(HomeVisit)).one().state == "arrived"
        assert s.exec(select(ServiceRecord).where(ServiceRecord.home)).all() == []


def test_the_center_queues_a_visit_from_a_residents_call(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "admin")
    page = _soup(client.get("/services/visits/"))
    option = [o for o in page.select("#new-visit-form select[name=assignee_id] option") if "李秀兰" in o.text][0]
    assert "海韵社区" in option.text
    r = client.post("/services/visits/new", data={
        "kind": "帮办", "contact_name": "来电居民", "address": "海韵路 30 号", "reason": "重病",
        "channel": "中心来电", "assignee_id": option["value"]}, follow_redirects=False)
    assert r.status_code == 303
    with Session(demo) as s:
        visit = s.exec(select(HomeVisit)).one()
        agent = s.exec(select(Staff).where(Staff.username == "agent1")).one()
        assert visit.outlet_id == agent.outlet_id and visit.channel == "中心来电"
    [entry] = audit_rows(demo, "visit.request")
    assert entry["actor"]["role"] == "admin" and entry["outcome"] == {"result": "done"}


def test_visit_contact_phone_is_sealed_at_rest_full_for_the_agent_masked_for_others(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "agent1")
    agent = _staff_id(demo, "agent1")
    r = client.post("/services/visits/new", data={
        "kind": "帮办", "contact_name": "王大爷", "contact_phone": "１３９１２３４５６７８",  # full-width
        "address": "海韵路 12 号", "reason": "年老", "channel": "网格员", "assignee_id": str(agent)},
        follow_redirects=False)
    assert r.status_code == 303
    with Session(demo) as s:
        visit = s.exec(select(HomeVisit)).one()
    assert "12345678" not in visit.contact_phone and visit.contact_phone.startswith("pii1:")
    page = _soup(client.get(f"/services/visits/{visit.number}"))
    assert page.select_one("a#contact-phone")["href"] == "tel:13912345678"
    assert all("12345678" not in str(e) for e in audit_rows(demo, "visit.request"))
    with second_client(client) as admin:
        login(admin, "admin")
        other = _soup(admin.get(f"/services/visits/{visit.number}"))
        assert other.select_one("#contact-phone").text == "139****5678"
        assert "13912345678" not in str(other)


def test_poa_term_says_an_impossible_date_is_invalid_and_keeps_the_input(client, demo) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import col

    from partners.models import Matter, MatterVersion

    with Session(demo) as s:
        mid = s.exec(select(Matter.id).join(MatterVersion, col(MatterVersion.matter_id) == Matter.id)
                     .where(MatterVersion.name == "门诊慢特病病种待遇认定")).first()
    login(client, "agent1")  # 海韵社区: grants carry 代办
    r = client.post("/services/new", data={"kind": "代办", "matter_id": str(mid), "topic": "代为申请慢病认定",
                                           "applicant_name": "张三", "id_number": "11010519491231002X"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    number = r.headers["location"].rsplit("/", 1)[1]
    r = client.post(f"/services/{number}/actions/entrust",
                    data={"matters": "继续代为提交慢病认定申请", "valid_until": "2026-13-45"})
    assert r.status_code == 422
    assert "2026-13-45" in _soup(r).select_one("#err-valid_until").text and "无效" in r.text
    assert _soup(r).select_one("#action-entrust textarea[name=matters]").text == "继续代为提交慢病认定申请"
    far = client.post(f"/services/{number}/actions/entrust",
                      data={"matters": "继续代为提交", "valid_until": "9999-12-31"})
    assert far.status_code == 422 and "最长一年" in _soup(far).select_one("#err-valid_until").text


def test_daiban_creates_its_case_through_the_pages(client, demo) -> None:  # type: ignore[no-untyped-def]
    """agent1's street point holds the 代办 scope: 服务记录 → 代办 with the applicant → 委托书 →
    新建代办办件 → the case page of a 代办 case with its own case.create entry and the link."""
    from datetime import date, timedelta

    from outlet.models import Case

    login(client, "agent1")
    home = _soup(client.get("/services/"))
    matter = home.select_one("#f-matter_id option[value!='']")["value"]
    r = client.post("/services/new", data={"kind": "代办", "matter_id": matter, "topic": "代为申领养老金",
                                           "applicant_name": "张三", "id_number": "11010519491231002X",
                                           "phone": "13800138000"}, follow_redirects=False)
    assert r.status_code == 303
    record_url = r.headers["location"]
    number = record_url.rsplit("/", 1)[1]
    page = _soup(client.get(record_url))
    assert page.select_one("#action-case") is None  # not before the 委托书
    entrust = page.select_one("#action-entrust")["action"]
    until = (date.today() + timedelta(days=30)).isoformat()
    r = client.post(entrust, data={"matters": "代为申请城乡居民养老保险待遇", "valid_until": until},
                    follow_redirects=False)
    assert r.status_code == 303
    form = _soup(client.get(record_url)).select_one("#action-case")
    assert form is not None and "新建代办办件" in form.get_text()
    r = client.post(form["action"], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/cases/")
    case_number = r.headers["location"].rsplit("/", 1)[1]
    case_page = client.get(r.headers["location"])
    assert case_page.status_code == 200 and case_number in case_page.text
    assert "已新建代办办件" in case_page.text
    with Session(demo) as s:
        case = s.exec(select(Case).where(Case.number == case_number)).one()
        record = s.exec(select(ServiceRecord).where(ServiceRecord.number == number)).one()
    assert case.service_mode == "代办" and case.state == "draft" and record.case_id == case.id
    created = [e for e in audit_rows(demo, "case.create") if e["case"] == case_number]
    assert [e["outcome"] for e in created] == [{"result": "done"}] and created[0]["grant"] is not None
    linked = [e for e in audit_rows(demo, "service.case") if e["case"] == number]
    assert [e["outcome"] for e in linked] == [{"result": "done"}]
    again = _soup(client.get(record_url))
    assert again.select_one("#action-case") is None  # one case per 代办
    warning = again.select_one("#action-terminate #terminate-case-warning").text  # 终止 leaves the case
    assert case_number in warning and "待受理" in warning
