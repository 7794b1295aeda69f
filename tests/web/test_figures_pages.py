"""The 服务统计 dashboard, its drill-down lists and exports, for every role (issue 13 §2–3):
who sees which outlets, that a number links to the rows behind it, the CSV/xlsx files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from outlet.clock import local_day
from outlet.demo import seed_demo_cases
from outlet.figures import FIGURES, Period, Scope, headline, rows_behind
from outlet.models import Case
from outlet.queue.demo import seed_demo_queue
from outlet.ratings.demo import seed_demo_ratings
from partners.models import Outlet, Partner, Staff, utcnow
from tests.conftest import login
from web.figure_exports import display
from web.settings import Settings, secret_file


@pytest.fixture
def cases(demo: Engine, settings: Settings) -> Engine:
    seed_demo_cases(demo, settings.pseudonym_key())
    seed_demo_ratings(demo, pii_key=secret_file(settings.pii_key_file))  # the key a first start makes
    seed_demo_queue(demo, settings.pseudonym_key())
    return demo


@pytest.fixture
def client(app: Starlette, cases: Engine) -> Iterator[TestClient]:
    """The app starts after the demo data is in: its no-show job (run at start-up) would
    otherwise mark the seed's past bookings 未到 between their booking and cancellation."""
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def _outlet(engine: Engine, code: str) -> Outlet:
    with Session(engine) as s:
        return s.exec(select(Outlet).where(Outlet.code == code)).one()


def _soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


def _switch(client: TestClient, username: str) -> None:
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    login(client, username)


def _card(soup: BeautifulSoup, key: str):  # type: ignore[no-untyped-def]
    return soup.select_one(f'.figure-card[data-key="{key}"] a.figure-value')


def _number(soup: BeautifulSoup, key: str) -> str:
    """The number on a card, without its unit word."""
    card = _card(soup, key)
    return str(card.contents[0]).strip()


def test_center_admin_sees_every_outlet_and_the_headline_matches_the_definitions(
    client: TestClient, cases: Engine
) -> None:
    login(client, "admin")
    soup = _soup(client.get("/figures/"))
    with Session(cases) as s:
        outlets = s.exec(select(Outlet)).all()
        today = local_day(utcnow())
        expected = headline(s, Scope(), Period(today - timedelta(days=29), today))
    assert len(soup.select('select[name="outlet"] option')) == len(outlets) + 1
    for f in FIGURES:
        assert _number(soup, f.key) == display(f.unit, expected[f.key]), f.key
    assert _card(soup, "wait_avg").select_one(".unit").get_text().strip() == "秒"
    assert expected["received"] > 0 and expected["tickets"] > 0  # the test compares real numbers
    assert any(c["class"][0] != "heat-0" for c in soup.select("#chart-heat rect"))  # the demo's tickets
    for chart in ("#chart-trend svg", "#chart-bars svg", "#chart-heat svg"):
        assert soup.select_one(chart)["role"] == "img"
    assert soup.select("#chart-bars details table tbody tr")  # the chart's table twin
    assert soup.find("a", string="服务统计")["href"] == "/figures/"


def test_a_number_links_to_the_rows_behind_it(client: TestClient, cases: Engine) -> None:
    login(client, "admin")
    soup = _soup(client.get("/figures/"))
    link = _card(soup, "received")
    assert link["href"].startswith("/figures/rows/cases?figure=received&")
    rows = _soup(client.get(link["href"]))
    assert rows.select_one("#rows-title").get_text().startswith("收件数")
    listed = [tr.td.get_text() for tr in rows.select("#figure-rows tbody tr:not(.empty)")]
    today = local_day(utcnow())
    with Session(cases) as s:
        ids = rows_behind(s, Scope(), Period(today - timedelta(days=29), today), "received", limit=50)
        numbers = [s.get(Case, i).number for i in ids]  # type: ignore[union-attr]
    assert listed == numbers  # the figure's own rows, in its order
    assert not rows.select("#figure-rows a")  # the center admin has no case page to link to


def test_every_card_links_to_its_own_rows_ratings_tickets_and_video_too(client: TestClient, cases: Engine) -> None:
    """Each card's number opens the list behind it (was: only case figures had rows; the
    ratings, tickets and video lists were always empty). A count lists exactly that many
    rows (up to a page); a ratio or a mean lists its denominator's rows."""
    login(client, "admin")
    today = local_day(utcnow())
    period = Period(today - timedelta(days=365), today)
    soup = _soup(client.get(f"/figures/?period=custom&from={period.start}&to={today}"))
    checked = set()
    for f in FIGURES:
        link = _card(soup, f.key)
        assert link["href"].startswith(f"/figures/rows/{f.list_kind}?figure={f.key}&"), f.key
        page = _soup(client.get(link["href"]))
        listed = page.select("#figure-rows tbody tr:not(.empty)")
        with Session(cases) as s:
            ids = rows_behind(s, Scope(), period, f.key, limit=51)
            value = headline(s, Scope(), period)[f.key]
        assert len(listed) == min(len(ids), 50), f.key
        if f.unit == "count" and f.key != "overdue_open":
            assert len(ids) == min(int(value or 0), 51), f.key
        if listed:
            checked.add(f.list_kind)
    assert checked >= {"cases", "ratings", "tickets"}  # the demo has rows of each


def test_partner_manager_sees_only_its_partners_outlets(client: TestClient, cases: Engine) -> None:
    login(client, "partner1")
    response = client.get("/", follow_redirects=False)
    assert response.headers["location"] == "/figures/"
    soup = _soup(client.get("/figures/"))
    with Session(cases) as s:
        icbc = s.exec(select(Partner).where(Partner.code == "ICBC-HC")).one()
        own = {o.id: o.name for o in s.exec(select(Outlet).where(Outlet.partner_id == icbc.id)).all()}
        other = s.exec(select(Outlet).where(Outlet.partner_id != icbc.id)).first()
    options = {int(o["value"]) for o in soup.select('select[name="outlet"] option') if o["value"]}
    assert options == set(own)
    assert {r.td.get_text() for r in soup.select("#chart-bars tbody tr")} <= set(own.values())
    assert other is not None
    assert client.get(f"/figures/?outlet={other.id}").status_code == 404  # guessed URL
    assert client.get("/figures/?outlet=99999999999").status_code == 404
    for kind, key in (("cases", "received"), ("ratings", "ratings"), ("tickets", "tickets"), ("assist", "assist_requests")):
        assert client.get(f"/figures/rows/{kind}?figure={key}&from=2026-01-01&to=2026-01-02&outlet={other.id}").status_code == 404
    with Session(cases) as s:  # a rating and a ticket of another partner's outlet are never listed
        from outlet.queue.models import Ticket
        from outlet.ratings.models import Rating

        foreign = {r.id for r in s.exec(select(Rating).where(Rating.outlet_id.not_in(set(own)))).all()}  # type: ignore[attr-defined]
        foreign_t = {t.number for t in s.exec(select(Ticket).where(Ticket.outlet_id.not_in(set(own)))).all()}  # type: ignore[attr-defined]
    today = local_day(utcnow())
    q = f"from={(today - timedelta(days=60)).isoformat()}&to={today.isoformat()}"
    listed = _soup(client.get(f"/figures/rows/ratings?figure=ratings&{q}")).select("#figure-rows tbody tr:not(.empty)")
    assert listed and not {int(tr.td.get_text()) for tr in listed} & foreign
    listed = _soup(client.get(f"/figures/rows/tickets?figure=tickets&{q}")).select("#figure-rows tbody tr:not(.empty)")
    assert not {tr.td.get_text() for tr in listed} & foreign_t
    assert client.get(f"/figures/export.csv?outlet={other.id}").status_code == 404
    assert client.get("/reports/summary.csv?from=2026-01-01&to=2026-01-31").status_code == 403
    data = client.get("/figures/export.csv").content.decode("utf-8-sig")
    assert {row[1] for row in list(csv.reader(io.StringIO(data)))[1:]} == set(own.values())
    for page in ("/cases/", "/admin/", "/audit/", "/ratings/center/"):
        assert client.get(page).status_code == 403


def test_outlet_lead_teller_and_expert_scopes(client: TestClient, cases: Engine) -> None:
    lead_outlet = _outlet(cases, "HC-ICBC-01")
    other = _outlet(cases, "HC-ICBC-02")
    login(client, "lead1")
    soup = _soup(client.get("/figures/"))
    assert soup.select_one('select[name="outlet"]') is None  # one outlet: nothing to pick
    assert soup.h1.get_text() == f"服务统计 · {lead_outlet.name}"
    assert client.get(f"/figures/?outlet={other.id}").status_code == 404  # same partner, not hers
    assert client.get(f"/figures/?outlet={lead_outlet.id}").status_code == 200
    link = _card(soup, "received")["href"]
    rows = _soup(client.get(link))
    numbers = [a.get_text() for a in rows.select("#figure-rows td a")]
    assert all(client.get(f"/cases/{n}").status_code == 200 for n in numbers[:3])
    with Session(cases) as s:
        teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
        today = local_day(utcnow())
        own = headline(s, Scope(frozenset({lead_outlet.id}), teller.id), Period(today - timedelta(days=29), today))
    _switch(client, "teller1")
    soup = _soup(client.get("/figures/"))
    assert soup.h1.get_text() == "服务统计 · 张晓燕（本人）"
    narrowed = _soup(client.get(f"/figures/?outlet={lead_outlet.id}"))  # still her own figures, not the outlet's
    assert narrowed.h1.get_text() == f"服务统计 · 张晓燕（本人） · {lead_outlet.name}"
    assert _number(narrowed, "received") == display("count", own["received"])
    assert _number(soup, "received") == display("count", own["received"])
    for username in ("reviewer1", "secadmin", "auditor"):
        _switch(client, username)
        assert client.get("/figures/").status_code == 403
    _switch(client, "expert1")
    assert _soup(client.get("/figures/")).h1.get_text() == "服务统计 · 赵磊（本人）"


def test_custom_period_errors_are_chinese_and_keep_the_input(client: TestClient, cases: Engine) -> None:
    login(client, "admin")
    response = client.get("/figures/?period=custom&from=2026-02-30&to=2026-03-01")
    assert response.status_code == 422
    soup = BeautifulSoup(response.text, "html.parser")
    assert "不是有效日期" in soup.select_one("#period-error").get_text()
    assert soup.select_one('input[name="from"]')["value"] == "2026-02-30"
    assert client.get("/figures/?period=custom&from=2026-03-05&to=2026-03-01").status_code == 422
    ok = _soup(client.get("/figures/?period=custom&from=2026-01-01&to=2026-01-31"))
    assert "2026-01-01 至 2026-01-31" in ok.select_one("#figures-body .toolbar").get_text()
    assert "2025-12-01 至 2025-12-31" in ok.select_one("#figures-body .toolbar").get_text()  # previous


def test_summary_csv_for_the_center_admin(client: TestClient, cases: Engine) -> None:
    login(client, "admin")
    today = local_day(utcnow())
    start = today - timedelta(days=29)
    response = client.get(f"/reports/summary.csv?from={start}&to={today}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["网点编码", "网点名称", "合作机构", "收件数"]
    assert rows[0][3:] == [f.label if "（" in f.label else f.label + {"days": "（工作日）", "seconds": "（秒）",
                           "minutes": "（分钟）", "per_case": "（次/件）"}.get(f.unit, "") for f in FIGURES]
    with Session(cases) as s:
        outlets = s.exec(select(Outlet).order_by(Outlet.code)).all()
        assert [r[0] for r in rows[1:]] == [o.code for o in outlets]
        period = Period(start, today)
        for row, outlet in zip(rows[1:], outlets, strict=True):
            figures = headline(s, Scope(frozenset({outlet.id})), period)
            for f, cell in zip(FIGURES, row[3:], strict=True):
                want = figures[f.key]
                assert cell == ("" if want is None else display(f.unit, want)), (outlet.code, f.key)
    for bad, needle in (("", "请填写开始日期"), ("from=2026-13-01&to=2026-12-01", "不是有效日期"),
                        (f"from={today}&to={start}", "不能早于"), ("from=2020-01-01&to=2026-01-01", "不能超过"),
                        ("from=0001-01-01&to=0001-01-01", "不能早于 2000-01-01")):  # was a 500 (overflow)
        response = client.get(f"/reports/summary.csv?{bad}")
        assert response.status_code == 400 and needle in response.text, bad


def test_xlsx_export_reads_back_with_chinese_headers(client: TestClient, cases: Engine) -> None:
    login(client, "admin")
    response = client.get("/figures/export.xlsx")
    assert response.status_code == 200 and response.content[:2] == b"PK"
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["指标汇总", "按网点", "按事项", "按日", "号票时段"]
    summary = book["指标汇总"]
    assert [c.value for c in summary[1]] == ["类别", "指标", "单位", "本期", "上期"]
    received = next(r for r in summary.iter_rows(min_row=2, values_only=True) if r[1] == "收件数")
    today = local_day(utcnow())
    with Session(cases) as s:
        want = headline(s, Scope(), Period(today - timedelta(days=29), today))["received"]
    assert received[3] == want
    by_outlet = book["按网点"]
    assert [c.value for c in by_outlet[1]][:4] == ["网点编码", "网点名称", "合作机构", "收件数"]
    assert sum(r[3] or 0 for r in by_outlet.iter_rows(min_row=2, values_only=True)) == want
    days = list(book["按日"].iter_rows(min_row=2, values_only=True))
    # every day of the 30, a quiet one too (was: only days with activity)
    assert [r[0] for r in days] == [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    assert sum(r[1] or 0 for r in days) == want
    assert client.get("/figures/export.xlsx?period=custom&from=x&to=y").status_code == 422
    response = client.get(f"/figures/export.xlsx?period=custom&from={today - timedelta(days=400)}"
                          f"&to={today - timedelta(days=380)}")  # nothing happened then
    quiet = list(load_workbook(io.BytesIO(response.content))["按日"].iter_rows(min_row=2, values_only=True))
    assert len(quiet) == 21 and all(r[1] == 0 for r in quiet)


def test_monthly_report_has_one_page_per_outlet(client: TestClient, cases: Engine) -> None:
    login(client, "partner1")
    soup = _soup(client.get("/figures/report"))
    pages = soup.select("section.report-page")
    assert pages[0]["id"] == "report-summary"
    assert [p["data-outlet"] for p in pages[1:]] == ["HC-ICBC-01", "HC-ICBC-02"]
    assert client.get("/figures/report?month=2026-13").status_code == 422
    assert client.get("/figures/report?month=0001-01").status_code == 422  # was a 500 (overflow)
    assert client.get("/figures/?period=custom&from=0001-01-01&to=0001-01-01").status_code < 500
