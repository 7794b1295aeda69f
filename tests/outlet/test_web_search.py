"""A teller finds things on the first day (issue 8 §4): matters this outlet may not take in
are shown with the reason and an attempt is refused and audited; the outlet's cases are
found by case number, applicant name, ID number or phone — only the outlet's own."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from outlet.clock import local_day
from partners.models import utcnow
from tests.conftest import login
from tests.outlet.conftest import PERSON_ID, USCC, World, audit_rows

HX = {"HX-Request": "true"}


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


# --- matters the outlet may not take in ---------------------------------------------------
def test_expired_matter_is_shown_with_its_reason_not_as_not_found(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    page = soup(client.get("/cases/new", params={"q": "灵活就业"}).text)
    assert page.select_one("#no-matters") is None  # it used to say 没有找到
    [row] = page.select("#refused-matters tr[data-refused]")
    assert row["data-refused"] == world.expired.implementation_code
    assert row["data-reason"] == "grant_expired"
    assert row.select_one(".refusal-reason").get_text(strip=True) == "授权已于 2021-01-01 到期"


def test_matter_not_delegated_to_this_outlet_says_so(world: World, client: TestClient) -> None:
    login(client, "teller.b")  # the expired grant was only ever for outlet A
    page = soup(client.get("/cases/new", params={"q": "灵活就业"}, headers={**HX, "HX-Target": "matter-results"}).text)
    [row] = page.select("#refused-matters tr[data-refused]")
    assert row["data-reason"] == "not_delegated"
    assert row.select_one(".refusal-reason").get_text(strip=True) == "未委托本网点"


def test_matters_whose_grant_lapsed_are_listed_without_a_query(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    page = soup(client.get("/cases/new").text)
    offered = {tr["data-matter"] for tr in page.select("#matter-results tr[data-matter]")}
    refused = {tr["data-refused"] for tr in page.select("#refused-matters tr[data-refused]")}
    assert offered == {world.committed.implementation_code, world.instant.implementation_code}
    assert refused == {world.expired.implementation_code}


def test_choosing_a_refused_matter_is_refused_and_audited_as_today(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    page = soup(client.get("/cases/new", params={"q": "灵活就业"}).text)
    form = page.select_one("#refused-matters form")
    data = {i["name"]: i.get("value", "") for i in form.select("input")}
    r = client.post(form["action"], data=data)
    assert r.status_code == 403
    error = soup(r.text).select_one("#form-error").get_text()
    assert "已于 2021-01-01 到期" in error and "审计" in error
    [entry] = audit_rows(world.engine, "case.create")
    assert entry["outcome"] == {"result": "refused", "reason": "grant_expired"}
    assert entry["matter"]["code"] == world.expired.implementation_code
    when = datetime.fromisoformat(entry["time"].removesuffix("Z"))
    assert local_day(when) == local_day(utcnow())  # recorded as today, not at the grant's date


def test_choosing_an_allowed_matter_opens_the_form_without_audit(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    r = client.post("/cases/new/attempt", data={"matter_id": str(world.committed.id)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/new?matter_id={world.committed.id}"
    assert audit_rows(world.engine, "case.create") == []


@pytest.mark.parametrize("raw", ["", "abc", "99999999999999999999"])
def test_attempt_with_a_bad_matter_id_is_a_clear_error(world: World, client: TestClient, raw: str) -> None:
    login(client, "teller.a")
    r = client.post("/cases/new/attempt", data={"matter_id": raw})
    assert r.status_code in (404, 422) and soup(r.text).select_one("#form-error") is not None


# --- searching the outlet's cases ---------------------------------------------------------
def search(client: TestClient, q: str, page: int | None = None) -> BeautifulSoup:
    data = {"q": q, **({"page": str(page)} if page else {})}
    r = client.post("/cases/search", data=data, headers=HX)
    assert r.status_code in (200, 422), r.text
    return soup(r.text)


def found(page: BeautifulSoup) -> list[str]:
    return [tr["data-case"] for tr in page.select("#case-search-table tr[data-case]")]


def test_case_search_by_number_name_id_and_phone(world: World, client: TestClient) -> None:
    mine = world.new_case(applicant_name="李秀兰", phone="0532-8888 6666").number
    other = world.new_case(applicant_name="王建国", id_number=USCC, applicant_kind="enterprise",
                           legal_representative="王建国", phone="13900001111").number
    login(client, "teller.a")
    assert found(search(client, mine)) == [mine]
    assert found(search(client, mine[-12:])) == [mine]  # the date and serial part
    assert found(search(client, "秀兰")) == [mine]
    for typed in (PERSON_ID, PERSON_ID.lower(), " ".join([PERSON_ID[:6], PERSON_ID[6:14], PERSON_ID[14:]]),
                  PERSON_ID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))):
        page = search(client, typed)
        assert found(page) == [mine], typed
        assert "证件号码" in page.select_one("#case-search-summary").get_text()
    assert found(search(client, USCC)) == [other]
    assert found(search(client, "053288886666")) == [mine]
    assert found(search(client, "+86 139-0000-1111")) == [other]


def test_case_search_sees_only_the_outlet_cases(world: World, client: TestClient) -> None:
    number = world.new_case(applicant_name="李秀兰").number
    login(client, "teller.b")
    for q in (number, "李秀兰", PERSON_ID, "13800138000"):
        assert found(search(client, q)) == [], q


def test_case_search_is_paginated(world: World, client: TestClient) -> None:
    numbers = [world.new_case(applicant_name="赵丽").number for _ in range(23)]
    login(client, "teller.a")
    first = search(client, "赵丽")
    assert len(found(first)) == 20 and "23" in first.select_one("#case-search-summary").get_text()
    second = search(client, "赵丽", page=2)
    assert len(found(second)) == 3
    assert set(found(first)) | set(found(second)) == set(numbers)


def test_case_search_too_short_is_a_field_error(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    r = client.post("/cases/search", data={"q": "李"}, headers=HX)
    assert r.status_code == 422
    page = soup(r.text)
    assert page.select_one("#err-case-q") is not None and page.select_one("#case-q")["value"] == "李"


def test_case_search_keeps_id_and_phone_out_of_urls_and_logs(world: World, client: TestClient,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    world.new_case()
    login(client, "teller.a")
    home = soup(client.get("/cases/").text)
    form = home.select_one("#case-search form")
    assert form["method"] == "post"  # never in a URL, a browser history or an access log
    with caplog.at_level(logging.DEBUG):
        assert len(found(search(client, PERSON_ID))) == 1
        assert len(found(search(client, "13800138000"))) == 1
    assert PERSON_ID not in caplog.text and "13800138000" not in caplog.text
