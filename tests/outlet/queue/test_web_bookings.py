"""The public booking page, the kiosk's 预约签到 and 办件查询, and the lead's block list,
through the real app."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from outlet import devices
from outlet.demo import seed_demo_cases
from outlet.events import lease
from outlet.models import Applicant, Case, Notice
from outlet.queue import bookings, counters
from outlet.queue.bookings import day_start
from outlet.queue.models import Booking, QueueLine
from partners.models import Outlet, Staff
from tests.conftest import login
from tests.outlet.conftest import audit_rows
from web.app import create_app
from web.settings import Settings

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
    for name in ("😀😀", "<script>alert(1)</script>", "王小明2"):
        refused = client.post(f"/queue/book/{outlet_id}", data={**data, "name": name, "phone": "13900001111"})
        assert refused.status_code == 422, name
        page = _soup(refused.text)
        assert "姓名只能包含文字和间隔号" in page.text
        assert page.select_one("input[name=name]")["value"] == name  # type: ignore[index]
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
    with Session(demo, expire_on_commit=False) as s, s.begin():
        lead2 = s.exec(select(Staff).where(Staff.username == "lead2")).one()
        outlet2 = s.get(Outlet, lead2.outlet_id)
        assert outlet2 is not None
        outlet2.opening_hours = ""  # no hours set: always staffed (tests run at any hour)
    _k, token = devices.pair(demo, lead2, kind="kiosk", label="取号机")
    page = _soup(client.get("/queue/kiosk/checkin", params={"t": token}).text)
    csrf = page.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    r = client.post("/queue/kiosk/checkin", params={"t": token}, data={"code": b.code, "csrf_token": csrf})
    assert r.status_code == 409
    assert "不在本网点" in _soup(r.text).select_one("#kiosk-error").text  # type: ignore[union-attr]
    with Session(demo) as s:  # not checked in, no ticket (its past slot may be swept by the no-show job)
        row = s.exec(select(Booking).where(Booking.id == b.id)).one()
        assert row.state != "checked_in" and row.ticket_id is None
    q = client.post("/queue/kiosk/status", params={"t": token},
                    data={"number": "NOPE", "check_code": "123456", "csrf_token": csrf})
    assert q.status_code == 404 and _soup(q.text).select_one("#kiosk-error")
    login(client, "lead1")
    assert _soup(client.get("/queue/manage").text).select_one("#booking-blocks") is not None


def test_no_shows_are_marked_by_the_periodic_job_in_one_process(demo: Engine, settings: Settings) -> None:
    """Booking does not sweep; the app's ``queue.no_shows`` job does, under a lease, and a
    second process (another app on the same database) neither runs it nor marks twice."""
    _lead, outlet_id = _setup(demo)
    with Session(demo) as s:
        line = s.exec(select(QueueLine).where(QueueLine.outlet_id == outlet_id, QueueLine.prefix == "A")).one()
    b = bookings.create(demo, outlet_id=outlet_id, line_id=line.id or 0, slot_start=day_start(datetime(2026, 9, 29).date()),
                        name="王小明", phone=PHONE, pseudonym_key=b"k" * 32, at=datetime(2026, 9, 28, 2))
    assert b.state == "booked"  # its slot has passed (real time), but nobody swept on create
    first, second = create_app(settings), create_app(settings)
    with TestClient(first), TestClient(second):
        for _ in range(400):  # the job's first round runs as the app starts
            with Session(demo) as s:
                if s.exec(select(Booking.state).where(Booking.id == b.id)).one() == "no_show":
                    break
            time.sleep(0.05)
        holder = lease.holder_of(demo, "queue.no_shows")
        assert holder in (first.state.hub.process_id, second.state.hub.process_id)
    with Session(demo) as s:
        assert s.exec(select(Booking.state).where(Booking.id == b.id)).one() == "no_show"
    marked = [e for e in audit_rows(demo, action="booking.no_show") if e["queue"]["booking"] == b.id]
    assert len(marked) == 1 and marked[0]["actor"]["role"] == "system" and PHONE not in str(marked[0])


def _kiosk(demo: Engine, client: TestClient, lead_name: str = "lead1") -> tuple[str, str]:
    with Session(demo, expire_on_commit=False) as s, s.begin():
        lead = s.exec(select(Staff).where(Staff.username == lead_name)).one()
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours = ""  # no hours set: always staffed (tests run at any hour)
    _k, token = devices.pair(demo, lead, kind="kiosk", label="自助终端")
    page = _soup(client.get("/queue/kiosk/print", params={"t": token}).text)
    return token, page.select_one("input[name=csrf_token]")["value"]  # type: ignore[index,return-value]


def _receipt_case(demo: Engine) -> tuple[Case, Applicant, Notice]:
    seed_demo_cases(demo, b"k" * 32)  # teller1's demo cases, with their receipts
    with Session(demo) as s:
        notice = s.exec(select(Notice).where(Notice.kind == "receipt").order_by(col(Notice.id))).first()
        assert notice is not None
        case = s.get(Case, notice.case_id)
        assert case is not None
        applicant = s.get(Applicant, case.applicant_id)
        assert applicant is not None
    return case, applicant, notice


def test_kiosk_self_print_needs_check_code_and_the_applicants_id(demo: Engine, client: TestClient) -> None:
    token, csrf = _kiosk(demo, client)
    case, applicant, notice = _receipt_case(demo)
    form = {"number": case.number, "check_code": case.check_code, "csrf_token": csrf}
    plain = client.get("/queue/kiosk/print", params={"t": token})
    assert "connect-src 'self';" in plain.headers["content-security-policy"]  # no bridge configured
    assert _soup(plain.text).select_one("input[data-idcard=id_number][data-keypad=id]") is not None
    wrong = client.post("/queue/kiosk/print", params={"t": token}, data={**form, "id_number": "11010519491231002X"})
    unknown = client.post("/queue/kiosk/print", params={"t": token},
                          data={**form, "number": "NO-SUCH-CASE", "id_number": applicant.id_number})
    assert wrong.status_code == unknown.status_code == 404
    assert _soup(wrong.text).select_one("#kiosk-error").text == _soup(unknown.text).select_one("#kiosk-error").text  # type: ignore[union-attr]
    assert _soup(wrong.text).select_one("input[name=number]")["value"] == case.number  # type: ignore[index]
    assert case.check_code not in wrong.text.replace(case.number, "")
    assert audit_rows(demo, action="notice.reprint") == []
    ok = client.post("/queue/kiosk/print", params={"t": token},
                     data={**form, "id_number": applicant.id_number.lower()})
    assert ok.status_code == 200
    page = _soup(ok.text)
    doc = page.select_one(f".kiosk-doc[data-notice='{notice.number}']")
    assert doc is not None and doc.select_one("article.document[data-kind=receipt]") is not None
    assert page.select_one(f"button[data-print-doc='{doc['id']}']") is not None
    assert page.select_one("#go-rate")["href"].startswith(f"/rate/{case.number}")  # type: ignore[index]
    (entry,) = audit_rows(demo, action="notice.reprint")
    assert entry["case"] == case.number and entry["actor"]["role"] == "device"
    assert applicant.id_number not in str(entry) and applicant.name not in str(entry)


def test_kiosk_pages_may_connect_only_to_the_configured_loopback_bridge(demo: Engine, settings: Settings) -> None:
    bridged = dataclasses.replace(settings, idcard_bridge="ws://127.0.0.1:18889/idcard")
    with TestClient(create_app(bridged)) as c:
        token, _csrf = _kiosk(demo, c)
        r = c.get("/queue/kiosk/print", params={"t": token})
        assert "connect-src 'self' ws://127.0.0.1:18889;" in r.headers["content-security-policy"]
        assert _soup(r.text).select_one("#idcard-status")["data-idcard-bridge"] == "ws://127.0.0.1:18889/idcard"  # type: ignore[index]
        home = c.get("/queue/kiosk", params={"t": token})
        assert "connect-src 'self';" in home.headers["content-security-policy"]  # only the page that reads cards
    remote = dataclasses.replace(settings, idcard_bridge="ws://reader.example.com:18889/idcard")
    assert remote.idcard_bridge_origin == "" and bridged.idcard_bridge_origin == "ws://127.0.0.1:18889"


def test_kiosk_links_to_the_rating_page_under_its_idle_wipe(demo: Engine, client: TestClient) -> None:
    token, _csrf = _kiosk(demo, client)
    case, _applicant, _notice = _receipt_case(demo)
    home = _soup(client.get("/queue/kiosk", params={"t": token}).text)
    assert home.select_one("#go-rate")["href"] == "/queue/kiosk/rate"  # type: ignore[index]
    assert home.select_one("#go-print") is not None
    r = client.get("/queue/kiosk/rate", params={"t": token, "number": case.number}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/rate/{case.number}?from=kiosk"
    rate = _soup(client.get(r.headers["location"]).text)
    assert rate.select_one("#rate-case")["data-home"] == "/queue/kiosk"  # type: ignore[index]
    assert rate.select_one("#rate-form")["action"] == f"/rate/{case.number}?from=kiosk"  # type: ignore[index]
    assert client.get("/queue/kiosk/rate", params={"t": "bogus"}).status_code == 403


def test_outside_hours_the_24_hour_flag_decides_what_the_kiosk_offers(demo: Engine, client: TestClient) -> None:
    token, _csrf = _kiosk(demo, client)
    hour = (datetime.utcnow().hour + 8 + 12) % 24  # Beijing time, twelve hours from now
    with Session(demo, expire_on_commit=False) as s, s.begin():
        lead = s.exec(select(Staff).where(Staff.username == "lead1")).one()
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours, outlet.self_service_24h = f"周一至周日 {hour}:00–{hour}:30", False
    home = _soup(client.get("/queue/kiosk", params={"t": token}).text)
    assert home.select_one("#closed-notice") is not None and home.select_one("#self-service") is None
    for path in ("/queue/kiosk/status", "/queue/kiosk/print", "/queue/kiosk/rate", "/queue/kiosk/checkin"):
        r = client.get(path, params={"t": token})
        assert r.status_code == 409 and "夜间不提供自助服务" in r.text, path
    r = client.post("/queue/kiosk/checkin", params={"t": token}, data={"code": "ABC123", "csrf_token": _csrf})
    assert r.status_code == 409 and "夜间不提供自助服务" in r.text and "爽约" not in r.text
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.self_service_24h = True
    home = _soup(client.get("/queue/kiosk", params={"t": token}).text)
    assert home.select_one("#take-ticket") is None and home.select_one("#go-print") is not None
    assert client.get("/queue/kiosk/print", params={"t": token}).status_code == 200
