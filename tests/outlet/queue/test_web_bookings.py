"""The public booking page, the kiosk's 预约签到 and 办件查询, and the lead's block list,
through the real app."""

from __future__ import annotations

from datetime import datetime

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import devices
from outlet.queue import bookings, counters
from outlet.queue.bookings import day_start
from outlet.queue.models import Booking, QueueLine
from partners.models import Outlet, Staff
from tests.conftest import login

PHONE = "13912345678"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _setup(demo: Engine) -> tuple[Staff, int]:
    with Session(demo) as s:
        lead = s.exec(select(Staff).where(Staff.username == "lead1")).one()
        admin = s.exec(select(Staff).where(Staff.username == "admin")).one()
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours = "周一至周日 8:00–18:00"
    counters.use_defaults(demo, admin, outlet_id=lead.outlet_id)
    return lead, lead.outlet_id or 0


def _form(page: BeautifulSoup) -> dict[str, str]:
    form = page.select_one("#book-form")
    assert form is not None
    data = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    slot = form.select_one("input[name=slot]:not([disabled])")
    assert slot is not None
    return {**data, "slot": slot["value"], "name": "王小明", "phone": PHONE}  # type: ignore[dict-item]


def test_public_booking_masks_name_and_phone_and_refuses_a_second_same_day(demo: Engine, client: TestClient) -> None:
    _lead, outlet_id = _setup(demo)
    outlets = _soup(client.get("/queue/book").text)
    assert outlets.select_one(f"#book-outlets a[href='/queue/book/{outlet_id}']") is not None
    data = _form(_soup(client.get(f"/queue/book/{outlet_id}").text))
    r = client.post(f"/queue/book/{outlet_id}", data=data)
    assert r.status_code == 201
    done = _soup(r.text)
    assert done.select_one("#booking-phone").text == "139****5678"  # type: ignore[union-attr]
    assert done.select_one("#booking-name").text == "王**"  # type: ignore[union-attr]
    assert PHONE not in r.text and "王小明" not in r.text
    code = done.select_one("#booking-code").text.strip()  # type: ignore[union-attr]
    again = client.post(f"/queue/book/{outlet_id}", data=data)
    assert again.status_code == 409
    page = _soup(again.text)
    assert "每天只能预约一次" in page.select_one("#book-error").text  # type: ignore[union-attr]
    assert page.select_one("input[name=name]")["value"] == "王小明"  # type: ignore[index]
    bad = client.post("/queue/book/cancel", data={"code": code, "last4": "0000", "csrf_token": data["csrf_token"]})
    assert bad.status_code == 404 and _soup(bad.text).select_one("#cancel-error")


def test_kiosk_checkin_with_another_outlets_code_and_status_query(demo: Engine, client: TestClient) -> None:
    lead, outlet_id = _setup(demo)
    with Session(demo) as s:
        line = s.exec(select(QueueLine).where(QueueLine.outlet_id == outlet_id, QueueLine.prefix == "A")).one()
        other = s.exec(select(Outlet).where(Outlet.id != outlet_id)).first()
        assert other is not None
    b = bookings.create(demo, outlet_id=outlet_id, line_id=line.id or 0, slot_start=day_start(datetime(2026, 9, 29).date()),
                        name="王小明", phone=PHONE, pseudonym_key=b"k" * 32, at=datetime(2026, 9, 28, 2))
    # a kiosk paired at another outlet (its lead pairs it; here the admin cannot, so use lead2's outlet)
    with Session(demo) as s:
        lead2 = s.exec(select(Staff).where(Staff.username == "lead2")).one()
    _k, token = devices.pair(demo, lead2, kind="kiosk", label="取号机")
    page = _soup(client.get("/queue/kiosk/checkin", params={"t": token}).text)
    csrf = page.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    r = client.post("/queue/kiosk/checkin", params={"t": token}, data={"code": b.code, "csrf_token": csrf})
    assert r.status_code == 409
    assert "不在本网点" in _soup(r.text).select_one("#kiosk-error").text  # type: ignore[union-attr]
    with Session(demo) as s:
        assert s.exec(select(Booking).where(Booking.id == b.id)).one().state == "booked"
    q = client.post("/queue/kiosk/status", params={"t": token},
                    data={"number": "NOPE", "check_code": "123456", "csrf_token": csrf})
    assert q.status_code == 404 and _soup(q.text).select_one("#kiosk-error")
    login(client, "lead1")
    assert _soup(client.get("/queue/manage").text).select_one("#booking-blocks") is not None
