"""The reviewer decides with the inspection record in view (issue 8 §4): that an inspection is
still required, then the conclusion, each checklist point's result with its snapshots and
the recording's SHA-256 — on the review page itself."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import decisions, intake, review
from outlet.models import Case, CaseMaterial
from remote_assist import inspections
from remote_assist.models import AssistSnapshot
from tests.conftest import login
from tests.outlet.samples import JPEG
from tests.remote_assist.conftest import staff
from tests.remote_assist.test_inspections import add_recording, open_inspection, record_all
from web.settings import Settings


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def forward(engine: Engine, case: Case) -> None:
    teller = staff(engine, "teller2")
    with Session(engine) as s:
        keys = s.exec(select(CaseMaterial.key).where(CaseMaterial.case_id == case.id)).all()
    for key in keys:
        intake.mark_material(engine, teller, case.number, key, "received")
    decisions.accept(engine, teller, case.number)
    decisions.forward(engine, teller, case.number)
    review.claim(engine, staff(engine, "reviewer3"), case.number)


def test_review_page_says_inspection_still_required(demo: Engine, food_case: Case, client: TestClient) -> None:
    forward(demo, food_case)
    login(client, "reviewer3")
    page = soup(client.get(f"/review/{food_case.number}").text)
    assert "远程勘验" in page.select_one("#inspection-required").get_text()
    assert "尚无勘验结论" in page.select_one("#approve-inspection-gate").get_text()
    assert "primary" not in page.select_one("#action-approve button")["class"]


def test_review_page_shows_the_inspection_record(
    demo: Engine, food_case: Case, client: TestClient, settings: Settings
) -> None:
    forward(demo, food_case)
    sid = open_inspection(demo, food_case)
    snaps = record_all(demo, sid)
    recording = add_recording(demo, sid)
    inspections.conclude(demo, staff(demo, "expert1"), sid, conclusion="通过", note="现场符合要求")
    login(client, "reviewer3")
    page = soup(client.get(f"/review/{food_case.number}").text)
    section = page.select_one("#review-inspection")
    assert page.select_one("#inspection-required") is None and page.select_one("#approve-inspection-gate") is None
    assert "通过" in section.select_one("#inspection-conclusion").get_text()
    assert recording in section.select_one("#inspection-recording").get_text()
    points = section.select("#inspection-points tbody tr")
    assert len(points) == 7 and {p["data-result"] for p in points} == {"符合"}
    shown = {int(a["href"].rsplit("/", 1)[1]) for a in section.select("#inspection-points a[href^='/assist/snapshots/']")}
    assert shown == set(snaps)
    assert "primary" in page.select_one("#action-approve button")["class"]
    with Session(demo) as s:
        sha = s.get(AssistSnapshot, min(snaps)).sha256  # type: ignore[union-attr]
    blob = settings.files_dir / sha[:2] / sha[2:]
    missing = client.get(f"/assist/snapshots/{min(snaps)}")  # a lost file: a clear page, not a 500
    assert missing.status_code == 410 and "缺失" in soup(missing.text).get_text()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(JPEG)
    image = client.get(f"/assist/snapshots/{min(snaps)}")  # evidence: never cached
    assert image.status_code == 200 and image.headers["cache-control"] == "private, no-store"
