"""The working-day calendar page (工作日历): the admin enters next year's schedule and
deadlines crossing it become exact; bad pastes change nothing; only admins; all audited."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from audit import search_entries
from outlet.errors import InvalidInput
from outlet.models import HolidayOverride
from outlet.workdays import WorkCalendar, parse_schedule
from tests.conftest import login

# Thu 2026-12-31 + 3 working days. Without a 2027 schedule (Mon–Fri): Fri 1 Jan, Mon 4,
# Tue 5 Jan, estimated.
START = date(2026, 12, 31)
BULK = """2027-01-01 休 元旦
# 春节（示例）
2027-01-04 休息 元旦补休

2027-01-09 上班 调休
2027-02-07 workday 春节调休
2027-02-08 holiday 春节
"""


@pytest.fixture
def admin(fast_hashes: None, client: TestClient, demo: Engine) -> TestClient:
    return login(client, "admin")


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def calendar(engine: Engine) -> WorkCalendar:
    with Session(engine) as s:
        return WorkCalendar.load(s)


def overrides(engine: Engine) -> dict[date, tuple[bool, str]]:
    with Session(engine) as s:
        return {r.day: (r.is_workday, r.name) for r in s.exec(select(HolidayOverride)).all()}


def calendar_entries(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as s:
        page = search_entries(s, action="admin.calendar.edit", limit=100, newest_first=False)
        return [view.entry for view in page.entries]


def test_calendar_page_shows_2027_as_not_published(admin: TestClient) -> None:
    response = admin.get("/admin/calendar?year=2027")
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one("nav.subnav a[aria-current=page]").get_text() == "工作日历"
    status = page.select_one("#calendar-status")
    assert status["data-bundled"] == "no" and status["data-published"] == "no"
    assert "尚未维护" in status.get_text()
    assert page.select("#calendar-overrides tr[data-day]") == []
    assert len(response.content) < 100_000
    covered = soup(admin.get("/admin/calendar?year=2026")).select_one("#calendar-status")
    assert covered["data-bundled"] == "yes"


def test_calendar_add_holiday_and_make_up_day_changes_deadlines(
    admin: TestClient, demo: Engine
) -> None:
    before = calendar(demo).add_workdays(START, 3)
    assert before.day == date(2027, 1, 5) and before.estimated
    assert not calendar(demo).year_published(2027)

    response = admin.post(
        "/admin/calendar/add",
        data={"year": "2027", "day": "2027-01-01", "kind": "休", "name": "元旦"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/calendar?year=2027"
    page = soup(admin.get(response.headers["location"]))
    assert "已保存" in page.select_one("#admin-flash").get_text()
    assert page.select_one("#calendar-status")["data-published"] == "yes"
    row = page.select_one("#calendar-overrides tr[data-day='2027-01-01']")
    assert row["data-kind"] == "休" and "元旦" in row.get_text()

    # Fri 1 Jan is now off: Mon 4, Tue 5, Wed 6 — and no longer estimated.
    cal = calendar(demo)
    assert cal.year_published(2027)
    assert cal.add_workdays(START, 3).day == date(2027, 1, 6)
    assert not cal.add_workdays(START, 3).estimated

    # Sat 2 Jan becomes a make-up working day (调休上班) — via htmx this time.
    response = admin.post(
        "/admin/calendar/add",
        data={"year": "2027", "day": "2027-01-02", "kind": "班", "name": "元旦调休"},
        headers={"HX-Request": "true", "HX-Target": "calendar-body"},
    )
    assert response.status_code == 200 and "<html" not in response.text
    fragment = soup(response)
    assert fragment.select_one("#calendar-body #calendar-flash") is not None
    days = [tr["data-day"] for tr in fragment.select("#calendar-overrides tr[data-day]")]
    assert days == ["2027-01-01", "2027-01-02"]
    assert calendar(demo).add_workdays(START, 3).day == date(2027, 1, 5)

    states = [e["state"] for e in calendar_entries(demo)]
    assert states == [
        {"from": None, "to": "calendar:2027-01-01:holiday"},
        {"from": None, "to": "calendar:2027-01-02:workday"},
    ]


def test_calendar_add_invalid_keeps_input_with_422(admin: TestClient, demo: Engine) -> None:
    response = admin.post(
        "/admin/calendar/add",
        data={"year": "2027", "day": "2027-02-30", "kind": "班", "name": "春节调休"},
    )
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#f-day")["aria-invalid"] == "true"
    assert "日期无效" in page.select_one("#err-day").get_text()
    assert page.select_one("#f-name")["value"] == "春节调休"
    assert page.select_one("#f-kind option[selected]")["value"] == "班"
    assert overrides(demo) == {}
    assert calendar_entries(demo) == []


def test_calendar_bulk_import_applies_all_lines_in_one_audited_change(
    admin: TestClient, demo: Engine
) -> None:
    response = admin.post(
        "/admin/calendar/bulk", data={"year": "2027", "schedule": BULK}, follow_redirects=False
    )
    assert response.status_code == 303
    page = soup(admin.get(response.headers["location"]))
    assert "5 条" in page.select_one("#admin-flash").get_text()
    kinds = {tr["data-day"]: tr["data-kind"] for tr in page.select("tr[data-day]")}
    assert kinds == {
        "2027-01-01": "休",
        "2027-01-04": "休",
        "2027-01-09": "班",
        "2027-02-07": "班",
        "2027-02-08": "休",
    }
    assert overrides(demo)[date(2027, 2, 7)] == (True, "春节调休")
    cal = calendar(demo)
    assert cal.year_published(2027)
    assert cal.add_workdays(START, 3).day == date(2027, 1, 7)  # 1 and 4 Jan off
    (entry,) = calendar_entries(demo)
    assert entry["state"] == {"from": None, "to": "calendar:2027:set-5"}
    assert entry["actor"]["role"] == "admin" and entry["outcome"] == {"result": "done"}


def test_calendar_bulk_bad_line_is_422_naming_it_and_saves_nothing(
    admin: TestClient, demo: Engine
) -> None:
    text = "2027-01-01 休 元旦\n2027-01-09 上班 调休\n2027-02-07 加班 春节\n"
    response = admin.post(
        "/admin/calendar/bulk",
        data={"year": "2027", "schedule": text},
        headers={"HX-Request": "true", "HX-Target": "calendar-body"},
    )
    assert response.status_code == 422
    page = soup(response)
    errors = [li.get_text() for li in page.select("#err-schedule li")]
    assert len(errors) == 1 and errors[0].startswith("第 3 行")
    assert "2027-02-07 加班" in errors[0]
    assert page.select_one("#f-schedule")["aria-invalid"] == "true"
    assert page.select_one("#f-schedule").get_text().strip() == text.strip()
    assert overrides(demo) == {}
    assert calendar_entries(demo) == []
    assert not calendar(demo).year_published(2027)


def test_calendar_delete_removes_the_day(admin: TestClient, demo: Engine) -> None:
    admin.post("/admin/calendar/bulk", data={"year": "2027", "schedule": BULK})
    page = soup(admin.get("/admin/calendar?year=2027"))
    form = page.select_one("tr[data-day='2027-01-09'] form")
    assert form["action"] == "/admin/calendar/delete"
    response = admin.post(
        form["action"],
        data={"day": form.select_one("input[name=day]")["value"], "year": "2027"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert date(2027, 1, 9) not in overrides(demo)
    assert len(overrides(demo)) == 4
    assert not calendar(demo).is_workday(date(2027, 1, 9))  # a Saturday again
    assert calendar_entries(demo)[-1]["state"] == {
        "from": "calendar:2027-01-09:workday",
        "to": None,
    }
    missing = admin.post("/admin/calendar/delete", data={"day": "2027-01-09"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/admin/calendar?year=2027", None),
        ("post", "/admin/calendar/add", {"day": "2027-01-01", "kind": "休", "name": "元旦"}),
        ("post", "/admin/calendar/bulk", {"schedule": "2027-01-01 休 元旦"}),
        ("post", "/admin/calendar/delete", {"day": "2027-01-01"}),
    ],
)
def test_calendar_refuses_teller(
    fast_hashes: None, client: TestClient, demo: Engine, method: str, url: str, data: Any
) -> None:
    login(client, "teller1")
    response = client.get(url) if method == "get" else client.post(url, data=data)
    assert response.status_code == 403
    assert overrides(demo) == {}


def test_parse_schedule_accepts_the_documented_words() -> None:
    entries = parse_schedule(BULK)
    assert [(e.day.isoformat(), e.is_workday) for e in entries] == [
        ("2027-01-01", False),
        ("2027-01-04", False),
        ("2027-01-09", True),
        ("2027-02-07", True),
        ("2027-02-08", False),
    ]
    assert parse_schedule("2027/1/1 休")[0].name == ""


def test_parse_schedule_names_every_bad_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_schedule("2027-01-01 休\n2027-13-01 休\n\n2027-01-01 班\n2027-01-05")
    lines = caught.value.errors["schedule"].split("\n")
    assert [line.split("：")[0].split("「")[0] for line in lines] == [
        "第 2 行",
        "第 4 行",
        "第 5 行",
    ]
    assert "重复" in lines[1]


def test_calendar_add_replaces_a_day_and_audits_the_change(admin: TestClient, demo: Engine) -> None:
    admin.post("/admin/calendar/add", data={"day": "2027-01-02", "kind": "班", "name": "调休"})
    response = admin.post(
        "/admin/calendar/add",
        data={"year": "2027", "day": "2027-01-02", "kind": "休息", "name": "元旦"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert overrides(demo) == {date(2027, 1, 2): (False, "元旦")}
    assert calendar_entries(demo)[-1]["state"] == {
        "from": "calendar:2027-01-02:workday",
        "to": "calendar:2027-01-02:holiday",
    }


def test_calendar_year_links_swap_the_fragment(admin: TestClient) -> None:
    page = soup(admin.get("/admin/calendar?year=2027"))
    nxt = page.select_one("#calendar-years a[rel=next]")
    assert nxt["href"] == "/admin/calendar?year=2028" and nxt["hx-target"] == "#calendar-body"
    fragment = admin.get(nxt["href"], headers={"HX-Request": "true", "HX-Target": "calendar-body"})
    assert "HX-Request" in fragment.headers["vary"] and "<html" not in fragment.text
    assert soup(fragment).select_one("#calendar-year").get_text() == "2028 年"
    # A nonsense year falls back to a sensible default instead of failing.
    assert admin.get("/admin/calendar?year=abc").status_code == 200
