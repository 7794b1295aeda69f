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


def test_qr_form_offers_the_same_stages_for_every_number_and_refuses_an_unoffered_one(
        rw: RatingWorld, client: TestClient) -> None:
    open_case, done_case = rw.w.drive("accepted"), rw.w.drive("approved")
    # The same two stages for an open, a completed and an unknown case: before the check code
    # the page tells nobody whether a case exists or is completed (case numbers are sequential).
    for number in (open_case, done_case, "NO-SUCH-CASE"):
        assert _offered(client, number) == ["during", "after"]
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


def test_ended_call_page_links_the_teller_to_the_expert_rating_until_rated(
        rw: RatingWorld, client: TestClient) -> None:
    from partners.models import utcnow
    from remote_assist.models import AssistRequest, AssistSession
    from tests.conftest import login

    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        req = AssistRequest(kind="help", outlet_id=rw.w.outlet_a.id or 0, domain="社保",
                            requested_by=rw.w.teller_a.id or 0, status="ended")
        s.add(req)
        s.flush()
        call = AssistSession(request_id=req.id or 0, teller_id=rw.w.teller_a.id or 0,
                             expert_id=rw.w.reviewer.id or 0, state="ended", ended_at=utcnow())
        s.add(call)
    login(client, "teller.a")
    page = soup(client.get(f"/assist/sessions/{call.id}").text)
    assert page.select_one("#call-ended") is not None
    link = page.select_one("#rate-expert-now")
    assert link["href"] == f"/ratings/assist/{call.id}"
    form = soup(client.get(link["href"]).text).select_one("#assist-rate-form")
    data = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    r = client.post(link["href"], data={**data, "level": "5"})
    assert r.status_code in (200, 303), r.text
    with Session(rw.engine) as s:
        assert s.exec(select(Rating.assist_session_id)).all() == [call.id]
    page = soup(client.get(f"/assist/sessions/{call.id}").text)
    assert page.select_one("#call-ended") is not None and page.select_one("#rate-expert-now") is None


def test_order_lists_mark_an_estimated_deadline_as_the_order_page_does(
        rw: RatingWorld, client: TestClient) -> None:
    from datetime import datetime

    from outlet.ratings import workorders as wo
    from tests.conftest import login

    late = rw.bad_order(at=datetime(2026, 12, 28, 2, 0))  # 整改 due in January 2027
    wo.record_callback(rw.engine, rw.lead, late.id or 0, reached=True, note="已联系",
                       at=datetime(2026, 12, 28, 3, 0))  # the 整改 deadline now runs
    known = rw.bad_order()  # Sep 30: its deadlines lie in 2026, a published year
    login(client, "lead.a")
    page = soup(client.get("/ratings/").text)
    row = page.select_one(f'#orders-table tr[data-order="{late.id}"]')
    assert "2027" in row.text and "尚未发布" in row.select_one(".estimated").text
    assert page.select_one(f'#orders-table tr[data-order="{known.id}"] .estimated') is None


def test_teller_sees_no_appeal_link_past_the_appeal_window(rw: RatingWorld,
                                                          client: TestClient) -> None:
    from partners.models import utcnow
    from tests.conftest import login

    old = rw.qr(rw.w.drive("accepted"), 1)  # Sep 30: 3 working days long past
    new = rw.qr(rw.w.drive("accepted"), 2, at=utcnow())
    login(client, "teller.a")
    page = soup(client.get("/ratings/").text)
    assert page.select_one(f"#appeal-link-{new.id}") is not None
    assert page.select_one(f"#appeal-link-{old.id}") is None
    assert "已过申诉期" in page.select_one(f'#my-bad-ratings tr[data-rating="{old.id}"]').text
