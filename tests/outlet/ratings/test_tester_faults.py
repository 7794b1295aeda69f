"""Faults a fresh tester found (issue 11): the QR form's stages, the ended call's rating
link, full-width digits in phone and settings numbers, 预计 deadlines in lists, appeal links
past the window and the device revoke answer out of scope."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet.ratings.models import Rating
from tests.outlet.ratings.conftest import RatingWorld


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _offered(client: TestClient, number: str) -> list[str]:
    page = soup(client.get(f"/rate/{number}").text)
    return [i["value"] for i in page.select("#stage-field input[name=stage]")]


def test_qr_form_offers_only_the_stage_valid_now_and_refuses_an_unoffered_one(
        rw: RatingWorld, client: TestClient) -> None:
    open_case, done_case = rw.w.drive("accepted"), rw.w.drive("approved")
    assert _offered(client, open_case) == ["during"]  # 办结后 would be refused: not offered
    assert _offered(client, done_case) == ["after"]  # 办理中 would be refused: not offered
    assert _offered(client, "NO-SUCH-CASE") == ["during"]  # says nothing about existence
    page = soup(client.get(f"/rate/{open_case}").text)
    form = {"csrf_token": page.select_one("input[name=csrf_token]")["value"],
            "nonce": page.select_one("input[name=nonce]")["value"],
            "check_code": rw.w.case(open_case).check_code, "level": "4", "text": "很好"}
    for stage in ("before", "", "sometime"):
        r = client.post(f"/rate/{open_case}", data={**form, "stage": stage})
        page = soup(r.text)
        assert r.status_code == 422
        assert "请选择页面上提供的评价阶段" in page.select_one("#stage-field").text
        assert page.select_one("#rating-text").text == "很好"  # the input is kept
    with Session(rw.engine) as s:
        assert s.exec(select(Rating)).all() == []
    r = client.post(f"/rate/{open_case}", data={**form, "stage": "during"})
    assert r.status_code == 200 and soup(r.text).select_one("#rating-done") is not None
