"""The lead's and the center's work-order lists: counts are SQL counts of every matching
order (never the length of a cut list) and the lists are paged, due-soon orders first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from sqlmodel import Session
from starlette.testclient import TestClient

from outlet.clock import local_day
from outlet.ratings.models import RatingWorkOrder
from partners.models import utcnow
from tests.conftest import login
from tests.outlet.ratings.conftest import RatingWorld
from web.routes import ratings as rating_routes
from web.routes import ratings_center

PER_PAGE = 2  # the lists' page size, small so that 6 orders need 3 pages


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


@pytest.fixture
def many(rw: RatingWorld, monkeypatch: pytest.MonkeyPatch) -> tuple[RatingWorld, list[int], int]:
    """Five overdue orders (rated on Sep 30) and one whose 回访 is due tomorrow."""
    overdue = [rw.bad_order().id or 0 for _ in range(5)]
    soon = rw.bad_order()
    with Session(rw.engine) as s, s.begin():
        row = s.get(RatingWorkOrder, soon.id)
        assert row is not None
        row.callback_due = local_day(utcnow()) + timedelta(days=1)
        s.add(row)
    monkeypatch.setattr(rating_routes, "ORDERS_PER_PAGE", PER_PAGE)
    monkeypatch.setattr(ratings_center, "ORDERS_PER_PAGE", PER_PAGE)
    return rw, overdue, soon.id or 0


def _ids(page: BeautifulSoup, table: str) -> list[int]:
    return [int(tr["data-order"]) for tr in page.select(f"#{table} tbody tr")]


def _walk(client: TestClient, url: str, table: str, pager: str) -> list[int]:
    """Every order id of a paged list, following its 下一页 links."""
    seen: list[int] = []
    for _ in range(10):
        page = soup(client.get(url).text)
        seen += _ids(page, table)
        nxt = page.select_one(f"#{pager} a[rel=next]")
        if nxt is None:
            return seen
        url = nxt["href"]
    raise AssertionError("pager never ends")


def test_lead_counts_all_orders_and_pages_the_lists_due_soon_first(
        many: tuple[RatingWorld, list[int], int], client: TestClient) -> None:
    _rw, overdue, soon = many
    login(client, "lead.a")
    for url in ("/ratings/", "/ratings/due"):
        page = soup(client.get(url).text)
        assert page.select_one("#overdue-count").text == "5"  # not the 2 rows shown
        assert page.select_one("#due-soon-count").text == "1"
        rows = _ids(page, "due-orders-table")
        assert len(rows) == PER_PAGE and rows[0] == soon  # due tomorrow: first, not cut off
        assert "共 6 条" in page.select_one("#rating-orders-due-pager").text
    assert sorted(_walk(client, "/ratings/", "due-orders-table", "rating-orders-due-pager")) \
        == sorted([*overdue, soon])
    assert sorted(_walk(client, "/ratings/", "orders-table", "all-orders-pager")) \
        == sorted([*overdue, soon])
    # junk page numbers (also full-width digits) are page 1, never an error
    for junk in ("abc", "９", "-1", "0", "9" * 40):
        r = client.get(f"/ratings/?due_page={junk}")
        assert r.status_code == 200
        assert _ids(soup(r.text), "due-orders-table")[0] == soon


def test_center_escalated_count_is_every_escalated_order(
        many: tuple[RatingWorld, list[int], int], client: TestClient) -> None:
    _rw, overdue, _soon = many
    login(client, "admin.x")
    page = soup(client.get("/ratings/center/").text)  # escalates the overdue orders
    page = soup(client.get("/ratings/center/").text)
    assert page.select_one("#escalated-count").text == "5"
    assert len(_ids(page, "escalated-table")) == PER_PAGE
    assert sorted(_walk(client, "/ratings/center/", "escalated-table", "escalated-orders-pager")) \
        == sorted(overdue)
    # the filtered list keeps its filter on the next page
    url = "/ratings/center/?overdue=1"
    assert sorted(_walk(client, url, "center-orders-table", "center-orders-pager")) == sorted(overdue)


def test_a_page_past_the_last_shows_the_last(many: tuple[RatingWorld, list[int], int],
                                             client: TestClient) -> None:
    login(client, "lead.a")
    page = soup(client.get("/ratings/?page=99").text)
    assert len(_ids(page, "orders-table")) == 2  # 6 orders, 2 a page: page 3
    assert "第 3 / 3 页" in page.select_one("#all-orders-pager").text
