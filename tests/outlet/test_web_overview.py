"""The outlet lead's overview (issue 8 §4: lead1 used to see exactly the teller's view): who
is on duty (AB角 cover), all the outlet's cases by state, overdue and due-soon counts."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet.clock import local_day
from outlet.demo import seed_demo_cases
from partners.models import BackupAssignment, Staff, utcnow
from tests.conftest import login


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def staff_id(engine: Engine, username: str) -> int:
    with Session(engine) as s:
        sid = s.exec(select(Staff.id).where(Staff.username == username)).one()
    assert sid is not None
    return sid


def test_lead_lands_on_the_outlet_overview(demo: Engine, settings, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    login(client, "lead1")
    landing = client.get("/", follow_redirects=False)
    assert landing.headers["location"] == "/cases/outlet"
    page = soup(client.get("/cases/outlet").text)
    assert "网点概况" in page.select_one("h1").get_text()
    assert page.select_one("#fig-total .figure-n").get_text() == "5"
    assert page.select_one("#fig-overdue .figure-n").get_text() == "1"
    assert page.select_one("#fig-due-soon .figure-n").get_text() == "1"
    listed = [tr["data-case"] for tr in page.select("#outlet-table tr[data-case]")]
    assert len(listed) == 5
    states = {a["data-state"]: a.select_one(".badge").get_text() for a in page.select("#outlet-cases a[data-state]")}
    assert states["accepted"] == "2"
    draft = soup(client.get("/cases/outlet", params={"state": "draft"}).text)
    assert len(draft.select("#outlet-table tr[data-case]")) == 1
    nav = [a["href"] for a in soup(client.get("/cases/").text).select(".mainnav a")]
    assert "/cases/outlet" in nav


def test_overview_shows_who_is_on_duty_with_ab_cover(demo: Engine, client: TestClient) -> None:
    today = local_day(utcnow())
    with Session(demo) as s, s.begin():  # teller1 is away today; teller2 (another outlet) covers
        s.add(BackupAssignment(holder_id=staff_id(demo, "teller1"), backup_id=staff_id(demo, "teller2"),
                               valid_from=today, valid_to=today, note="年假"))
    login(client, "lead1")
    page = soup(client.get("/cases/outlet").text)
    rows = {tr["data-staff"]: tr for tr in page.select("#outlet-staff tbody tr")}
    assert rows["teller1"]["data-on-duty"] == "no" and "顶岗" in rows["teller1"].get_text()
    assert rows["lead1"]["data-on-duty"] == "yes"
    assert rows["teller2"]["data-on-duty"] == "yes" and "covering" in rows["teller2"]["class"]


def test_overview_is_for_the_outlet_lead_only(demo: Engine, client: TestClient) -> None:
    login(client, "teller1")
    assert client.get("/cases/outlet").status_code == 403
    nav = [a["href"] for a in soup(client.get("/cases/").text).select(".mainnav a")]
    assert "/cases/outlet" not in nav
