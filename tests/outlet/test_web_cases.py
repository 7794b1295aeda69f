"""The teller side over HTTP: intake, materials, notices, receipt, scoping, refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from tests.conftest import login
from tests.outlet.conftest import PERSON_ID, World, audit_rows, second_client
from tests.outlet.samples import EXE, PDF, PNG
from web.settings import Settings

HX = {"HX-Request": "true"}
LIMIT = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'servicepoint.db'}",
        secret_key_override="test-secret-key-not-for-production", max_upload_bytes=LIMIT,
    )


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def new_case(client: TestClient, world: World, **fields: str) -> str:
    data = {"matter_id": str(world.committed.id), "applicant_kind": "person",
            "applicant_name": "张三", "id_number": PERSON_ID, "phone": "13800138000",
            "service_mode": "收件受理", **fields}
    r = client.post("/cases/new", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def mark(client: TestClient, number: str, key: str, status: str, reason: str = ""):
    return client.post(f"/cases/{number}/materials/{key}", data={"status": status, "reason": reason},
                       headers=HX)


def test_new_case_form_searches_only_delegated_matters(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    page = soup(client.get("/cases/new", params={"q": "参保"}).text)
    codes = [tr["data-matter"] for tr in page.select("#matter-results tr[data-matter]")]
    assert codes == [world.committed.implementation_code]  # the expired one is not offered
    frag = client.get("/cases/new", params={"q": "社保卡"}, headers={**HX, "HX-Target": "matter-results"})
    assert frag.text.lstrip().startswith('<div id="matter-results">')
    assert "HX-Request" in frag.headers["vary"]


def test_new_case_invalid_id_keeps_input_and_shows_reason(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    r = client.post("/cases/new", data={"matter_id": str(world.committed.id), "applicant_kind": "person",
                                        "applicant_name": "张三", "id_number": "110105194912310021"})
    assert r.status_code == 422
    page = soup(r.text)
    assert "校验位" in page.select_one("#err-id_number").text
    assert page.select_one("#f-id_number")["aria-invalid"] == "true"
    assert page.select_one("#f-id_number")["value"] == "110105194912310021"
    assert page.select_one("#f-applicant_name")["value"] == "张三"


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("810000199003071237", "港澳居民居住证（香港）"),  # issue 8; 国办发〔2018〕81号: 810000
        ("830000199003071230", "台湾居民居住证"),
        ("911840199003071236", "外国人永久居留身份证"),  # 2023 版永居证: 9 + 11 + 840
        ("１１０１０５１９４９１２３１００２ｘ", "居民身份证"),  # full-width: normalised
    ],
)
def test_new_case_accepts_every_id_kind_and_names_it(world: World, client: TestClient, typed: str,
                                                      label: str) -> None:
    login(client, "teller.a")
    number = new_case(client, world, id_number=typed)
    page = soup(client.get(f"/cases/{number}").text)
    assert page.select_one("#applicant-id-kind").text == label


def test_new_case_superscript_digit_is_a_message_not_a_500(world: World, client: TestClient) -> None:
    # Issue 8: "110105199003071²39 answers HTTP 500".
    login(client, "teller.a")
    r = client.post("/cases/new", data={"matter_id": str(world.committed.id), "applicant_kind": "person",
                                        "applicant_name": "张三", "id_number": "110105199003071²39"})
    assert r.status_code == 422
    page = soup(r.text)
    assert "只能包含数字和字母" in page.select_one("#err-id_number").text
    assert page.select_one("#f-id_number")["value"] == "110105199003071²39"


def test_same_person_typed_two_ways_has_one_pseudonym(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    new_case(client, world, id_number=PERSON_ID)
    new_case(client, world, id_number="１１０１０５ １９４９１２３１ ００２ｘ")
    subjects = {e["subject"] for e in audit_rows(world.engine, "case.create")}
    assert len(subjects) == 1


def test_expired_grant_refused_with_message_and_audited(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    r = client.post("/cases/new", data={"matter_id": str(world.expired.id), "applicant_kind": "person",
                                        "applicant_name": "张三", "id_number": PERSON_ID})
    assert r.status_code == 403
    assert "已于 2021-01-01 到期" in soup(r.text).select_one("#form-error").text
    [entry] = audit_rows(world.engine, "case.create")
    assert entry["outcome"] == {"result": "refused", "reason": "grant_expired"}
    assert entry["actor"]["id"] == world.teller_a.id


def test_intake_path_notice_upload_accept_receipt_status(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = new_case(client, world)
    page = soup(client.get(f"/cases/{number}").text)
    assert page.select_one("#applicant-id .mono").text == "110***********002X"
    assert PERSON_ID not in str(page)
    for key in ("m1", "m3"):
        assert mark(client, number, key, "received").status_code == 200
    r = mark(client, number, "m2", "defective", "")
    assert r.status_code == 422 and "请填写材料存在的问题" in soup(r.text).select_one("#err-material-m2").text
    frag = soup(mark(client, number, "m2", "missing").text)
    assert frag.select_one("#material-m2")["data-status"] == "missing"

    # 一次性告知书 lists the missing 申请表, printable
    r = client.post(f"/cases/{number}/actions/notice", headers=HX)
    link = soup(r.text).select_one('#case-notices li[data-kind="one_time"] a')
    notice = soup(client.get(link["href"]).text)
    assert [td.text for td in notice.select("#notice-items tbody tr td:nth-of-type(2)")] == ["申请表"]
    assert notice.select_one("#notice-date").text.endswith("日")

    # accept is refused while 申请表 is missing: message in the page, audited
    r = client.post(f"/cases/{number}/actions/accept", headers=HX)
    assert r.status_code == 409 and "申请表" in soup(r.text).select_one("#case-error").text
    assert audit_rows(world.engine, "case.accept", number)[-1]["outcome"]["result"] == "refused"

    r = client.post(f"/cases/{number}/materials/m2/upload", files={"file": ("申请表.pdf", PDF, "application/pdf")},
                    headers=HX)
    assert r.status_code == 200
    pdf = client.get(soup(r.text).select_one("#material-m2 a.file")["href"])
    assert pdf.headers["content-disposition"].startswith("attachment")  # a PDF never opens inline
    assert pdf.headers["cache-control"] == "private, no-store"
    assert soup(r.text).select_one("#material-m2")["data-status"] == "received"
    r = client.post(f"/cases/{number}/actions/accept", follow_redirects=False)  # plain form: PRG
    assert r.status_code == 303
    page = soup(client.get(r.headers["location"]).text)
    assert "已受理" in page.select_one("#case-flash").text
    receipt_link = page.select_one('#case-notices li[data-kind="receipt"] a')
    receipt = soup(client.get(receipt_link["href"], headers={"Host": "evil.example"}).text)
    assert receipt.select_one("#receipt-qr svg") is not None
    # printed links come from SERVICEPOINT_PUBLIC_URL, never from a (forged) Host header
    assert f"http://127.0.0.1:8000/status/{number}" in receipt.get_text()
    assert "evil.example" not in str(receipt)
    code = receipt.select_one("#check-code").text
    assert re.fullmatch(r"\d{6}", code)

    # the public status page (another browser, not logged in)
    with second_client(client) as anon:
        form = soup(anon.get(f"/status/{number}").text)
        token = form.select_one('input[name="csrf_token"]')["value"]
        r = anon.post(f"/status/{number}", data={"check_code": code, "csrf_token": token})
        result = soup(r.text)
        assert result.select_one("#status-state").text == "已受理"
        assert "张三" not in r.text and "002X" not in r.text and "13800138000" not in r.text


def test_status_page_needs_the_check_code(world: World, client: TestClient) -> None:
    number = world.drive("accepted")
    right = world.case(number).check_code
    page = client.get(f"/status/{number}")
    token = soup(page.text).select_one('input[name="csrf_token"]')["value"]
    assert soup(page.text).select_one("#status-result") is None
    wrong = "000000" if right != "000000" else "111111"
    r = client.post(f"/status/{number}", data={"check_code": wrong, "csrf_token": token})
    assert r.status_code == 404 and "查询码不正确" in soup(r.text).select_one("#status-error").text
    assert soup(r.text).select_one("#status-result") is None


def test_other_outlet_gets_404_and_no_data(world: World, client: TestClient) -> None:
    number = world.drive("draft")
    login(client, "teller.b")
    for r in (client.get(f"/cases/{number}"), client.get(f"/cases/{number}", headers=HX),
              client.post(f"/cases/{number}/actions/withdraw", data={"reason": "x"}),
              mark(client, number, "m1", "received"),
              client.post(f"/cases/{number}/reveal"),
              client.get(f"/cases/{number}/notices/{number}-GZ01")):
        assert r.status_code == 404
        assert "张三" not in r.text and number not in soup(r.text).get_text()
    assert world.case(number).state == "draft"


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [("申请表.pdf", PNG, 422, "内容实际是PNG 图片"),
     ("setup.pdf", EXE, 415, "不是 PDF、JPEG 或 PNG"),
     ("setup.exe", EXE, 415, "不支持「.exe」"),
     ("big.pdf", b"%PDF-" + b"0" * (LIMIT + 1), 413, "大小上限")],
)
def test_upload_validation_over_http(world: World, client: TestClient, name: str, data: bytes,
                                     status: int, message: str) -> None:
    number = world.drive("draft")
    login(client, "teller.a")
    r = client.post(f"/cases/{number}/materials/m1/upload", files={"file": (name, data, "application/pdf")},
                    headers=HX)
    assert r.status_code == status
    assert message in soup(r.text).select_one("#err-material-m1").text
    assert world.materials(number)["m1"].status == "pending"


def test_files_served_typed_by_content_only_to_authorized_users(world: World, client: TestClient) -> None:
    number = world.drive("draft")
    login(client, "teller.a")
    r = client.post(f"/cases/{number}/materials/m1/upload", files={"file": ("照片.png", PNG, "image/jpeg")},
                    headers=HX)
    href = soup(r.text).select_one("#material-m1 a.file")["href"]
    f = client.get(href)
    assert f.status_code == 200 and f.content == PNG
    assert f.headers["content-type"] == "image/png"
    assert f.headers["x-content-type-options"] == "nosniff"
    assert f.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E7%85%A7%E7%89%87.png" in f.headers["content-disposition"]
    with second_client(client) as other:
        login(other, "teller.b")
        assert other.get(href).status_code == 404
        assert other.get(href.replace(f"/cases/{number}", "/cases/" + world.drive("draft", actor=world.teller_b))).status_code == 404


def test_illegal_action_is_refused_in_page_and_audited(world: World, client: TestClient) -> None:
    number = world.drive("delivered")
    login(client, "teller.a")
    r = client.post(f"/cases/{number}/actions/withdraw", data={"reason": "申请人要求"}, headers=HX)
    assert r.status_code == 409
    assert soup(r.text).select_one("#case-error").text == "办件当前状态为「已出件」，不能执行「撤回」"
    # the input is kept next to the form that failed
    assert soup(r.text).select_one("#err-withdraw") is None  # no withdraw form in this state
    entry = audit_rows(world.engine, "case.withdraw", number)[-1]
    assert entry["outcome"] == {"result": "refused", "reason": "illegal_transition"}


def test_failed_reason_form_keeps_input(world: World, client: TestClient) -> None:
    number = world.drive("draft")
    login(client, "teller.a")
    r = client.post(f"/cases/{number}/actions/refuse", data={"reason": "   "}, headers=HX)
    assert r.status_code == 409
    assert "请填写理由" in soup(r.text).select_one("#err-refuse").text


def test_case_page_fragment_for_htmx(world: World, client: TestClient) -> None:
    number = world.drive("accepted")
    login(client, "teller.a")
    r = client.get(f"/cases/{number}", headers=HX)
    assert "HX-Request" in r.headers["vary"]
    assert r.text.lstrip().startswith('<div id="case-body">') and "<html" not in r.text
    actions = [d["data-action"] for d in soup(r.text).select("#case-actions [data-action]")]
    assert actions == ["case.forward", "case.withdraw"]  # 承诺件: no on-site completion


def test_reveal_shows_full_number_and_audits(world: World, client: TestClient) -> None:
    number = world.drive("draft")
    login(client, "teller.a")
    r = client.post(f"/cases/{number}/reveal", headers=HX)
    assert soup(r.text).select_one("#applicant-id .mono").text == PERSON_ID
    assert audit_rows(world.engine, "case.reveal_pii", number)[-1]["outcome"] == {"result": "done"}


def test_home_lists_today_and_deadlines(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = new_case(client, world)  # created now (real clock) → "today"
    world.drive("accepted", actor=world.teller_b)  # other outlet: never listed
    page = soup(client.get("/cases/").text)
    assert [tr["data-case"] for tr in page.select("#today-table tr[data-case]")] == [number]
    assert page.select_one("#new-case form")["action"] == "/cases/new"


def test_case_page_marks_estimated_deadlines(world: World, client: TestClient) -> None:
    from datetime import datetime

    from outlet import decisions

    at = datetime(2026, 12, 28, 2, 0)
    number = world.new_case(at=at).number
    world.receive(number, "m1", "m2", "m3", at=at)
    decisions.accept(world.engine, world.teller_a, number, at=at)
    login(client, "teller.a")
    due = soup(client.get(f"/cases/{number}").text).select_one("#due-on")
    assert "2027-01-04" in due.text
    assert due.select_one(".estimated").text == "（该年度节假日安排尚未发布，按周末推算）"


def test_home_shows_overdue_cases_in_red(world: World, client: TestClient) -> None:
    number = world.drive("accepted", matter=world.instant)  # due 28 Sep 2026: long past
    login(client, "teller.a")
    page = soup(client.get("/cases/").text)
    row = page.select_one(f'#overdue-table tr[data-case="{number}"]')
    assert row is not None and "overdue" in row["class"]
    assert "已超期" in row.text


def test_rongque_form_and_two_copy_notice(world: World, client: TestClient) -> None:
    number = world.drive("draft")
    world.receive(number, "m1", "m2")
    login(client, "teller.a")
    page = soup(client.get(f"/cases/{number}").text)
    max_day = page.select_one('#action-rongque input[name="deadline"]')["max"]
    r = client.post(f"/cases/{number}/actions/rongque", data={"deadline": max_day}, headers=HX)
    assert r.status_code == 409  # commitment not signed
    body = soup(r.text)
    assert "书面承诺" in body.select_one("#err-rongque").text
    assert body.select_one('#action-rongque input[name="deadline"]')["value"] == max_day  # kept
    r = client.post(f"/cases/{number}/actions/rongque",
                    data={"deadline": max_day, "commitment_signed": "1"}, headers=HX)
    assert r.status_code == 200
    link = soup(r.text).select_one('#case-notices li[data-kind="rongque"] a')
    notice = soup(client.get(link["href"]).text)
    copies = notice.select("article.document")
    assert [a.select_one("h1 .copy").text for a in copies] == ["（申请人联）", "（存根联）"]
    assert [td.text for td in copies[0].select("#notice-items td:nth-of-type(2)")] == ["参保证明"]
