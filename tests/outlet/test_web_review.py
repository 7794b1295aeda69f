"""The center side over HTTP: queue by domain, claim, correction, approve; files."""

from __future__ import annotations

from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from outlet import intake
from outlet.files import FileStore
from tests.conftest import login
from tests.outlet.conftest import AT, World, audit_rows, second_client
from tests.outlet.samples import PDF

HX = {"HX-Request": "true"}


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def test_queue_shows_forwarded_cases_of_the_domain(world: World, client: TestClient) -> None:
    forwarded = world.drive("forwarded")
    world.drive("accepted")
    login(client, "reviewer.sb")
    page = soup(client.get("/review/").text)
    assert [tr["data-case"] for tr in page.select("#queue-table tr[data-case]")] == [forwarded]
    with second_client(client) as other:
        login(other, "reviewer.yb")  # 医保 reviewer
        assert soup(other.get("/review/").text).select("#queue-table tr[data-case]") == []
        assert other.get(f"/review/{forwarded}").status_code == 404


def test_review_path_claim_correction_resubmit_approve(world: World, client: TestClient,
                                                       settings) -> None:
    number = world.drive("draft")
    store = FileStore(settings.files_dir)
    intake.upload_material(world.engine, world.teller_a, number, "m1", [PDF], claimed_name="身份证.pdf",
                           store=store, max_bytes=1 << 20, at=AT)
    world.receive(number, "m2", "m3")
    from outlet import decisions

    decisions.accept(world.engine, world.teller_a, number, at=AT)
    decisions.forward(world.engine, world.teller_a, number, at=AT)

    login(client, "reviewer.sb")
    page = soup(client.get(f"/review/{number}").text)
    assert [d["data-action"] for d in page.select("#case-actions [data-action]")] == ["case.review_claim"]
    href = page.select_one("#material-m1 a.file")["href"]
    f = client.get(href)
    assert f.status_code == 200 and f.headers["content-type"] == "application/pdf" and f.content == PDF

    r = client.post(f"/review/{number}/actions/claim", headers=HX)
    assert r.status_code == 200
    r = client.post(f"/review/{number}/actions/correction", data={"reason_m2": "缺少签名", "reason": ""},
                    headers=HX)
    body = soup(r.text)
    assert body.select_one("#case-number").find_next("span")["class"][-1] == "state-correction"
    assert body.select_one('#case-notices li[data-kind="correction"]') is not None

    with second_client(client) as teller:
        login(teller, "teller.a")
        page = soup(teller.get(f"/cases/{number}").text)
        assert "缺少签名" in page.select_one("#material-m2 .reason").text
        teller.post(f"/cases/{number}/materials/m2", data={"status": "received"}, headers=HX)
        r = teller.post(f"/cases/{number}/actions/resubmit", headers=HX)
        assert r.status_code == 200

    client.post(f"/review/{number}/actions/claim", headers=HX)
    r = client.post(f"/review/{number}/actions/approve", data={"comment": "材料齐全"}, headers=HX)
    assert r.status_code == 200 and "已审核通过" in soup(r.text).select_one("#case-flash").text
    assert world.case(number).state == "approved"
    entry = audit_rows(world.engine, "case.approve", number)[-1]
    assert entry["actor"] == {"id": world.reviewer.id, "role": "reviewer"}

    with second_client(client) as teller:
        login(teller, "teller.a")
        page = soup(teller.get("/cases/").text)
        row = page.select_one(f'#recent-table tr[data-case="{number}"]')
        assert "办结·准予" in row.text


def test_reject_needs_reason_and_keeps_input(world: World, client: TestClient) -> None:
    number = world.drive("under_review")
    login(client, "reviewer.sb")
    r = client.post(f"/review/{number}/actions/reject", data={"reason": ""}, headers=HX)
    assert r.status_code == 409 and "请填写理由" in soup(r.text).select_one("#err-reject").text


def test_teller_cannot_use_review_pages(world: World, client: TestClient) -> None:
    number = world.drive("forwarded")
    login(client, "teller.a")
    assert client.get("/review/").status_code == 403
    assert client.post(f"/review/{number}/actions/claim").status_code == 403
    assert world.case(number).state == "forwarded"
