"""The center admin's 排队叫号默认设置 page through the real app: a bad form comes back 422
with Chinese messages and the input kept; a saved change is what the leads, tellers and
kiosks of every outlet see at once — in another app process too (its cached copy dropped
through ``ref_version``). A booking block is its outlet's: another outlet's lead neither
sees nor lifts it."""

from __future__ import annotations

from datetime import timedelta

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import devices
from outlet.clock import local_day
from outlet.queue import bookings, counters, tickets
from outlet.queue.bookings import day_start
from outlet.queue.models import QueueLine
from outlet.workdays import WorkCalendar
from partners.models import Outlet, Staff, utcnow
from tests.conftest import login
from tests.outlet.conftest import audit_rows
from web.app import create_app
from web.settings import Settings

KEY = b"k" * 32
PHONE = "13912345678"


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _staff(engine: Engine, username: str) -> Staff:
    with Session(engine) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


def _form(page: BeautifulSoup) -> dict[str, object]:
    """The admin form as the browser would post it (every input, lines as lists)."""
    form = page.select_one("#queue-defaults-form")
    assert form is not None
    data: dict[str, object] = {}
    for i in form.select("input[name]"):
        name, value = str(i["name"]), str(i.get("value", ""))
        if name.startswith("line_"):
            data.setdefault(name, []).append(value)  # type: ignore[union-attr]
        else:
            data[name] = value
    return data


def test_admin_form_refused_with_chinese_messages_and_input_kept(demo: Engine, client: TestClient) -> None:
    login(client, "admin")
    page = _soup(client.get("/admin/queue").text)
    data = _form(page)
    assert data["max_recalls"] == "3" and data["line_prefix"][:3] == ["A", "B", "C"]  # type: ignore[index]
    data.update(max_recalls="0", idle_seconds="９０")  # full-width digits are not a number
    data["line_daily_cap"][0] = "5000"  # type: ignore[index]
    r = client.post("/admin/queue", data=data)
    assert r.status_code == 422
    bad = _soup(r.text)
    assert "未保存" in bad.select_one("#queue-defaults-error").text  # type: ignore[union-attr]
    assert bad.select_one("#err-max_recalls").text == "重呼次数上限（之后可过号）须为 3–5 的整数（次）"  # type: ignore[union-attr]
    assert "30–600" in bad.select_one("#err-idle_seconds").text  # type: ignore[union-attr]
    assert bad.select_one("#err-lines-0-daily_cap").text == "每日限号须为 1–999 的整数"  # type: ignore[union-attr]
    kept = _form(bad)
    assert (kept["max_recalls"], kept["idle_seconds"], kept["line_daily_cap"][0]) == ("0", "９０", "5000")  # type: ignore[index]
    assert audit_rows(demo, action="admin.queue.edit") == []
    login(client, "lead1")
    assert client.post("/admin/queue", data=data, follow_redirects=False).status_code == 403


def test_saved_defaults_reach_every_outlet_and_another_process(demo: Engine, client: TestClient,
                                                               settings: Settings) -> None:
    lead = _staff(demo, "lead1")
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours = ""  # always staffed (tests run at any hour)
    _k, kiosk = devices.pair(demo, lead, kind="kiosk", label="取号机")
    other = TestClient(create_app(settings), base_url="http://testserver")  # a second app process
    with other:
        login(other, "lead1")
        before = _soup(other.get("/queue/manage").text)  # read (and cached) in that process
        assert "社保医保 A" in before.select_one("form[action='/queue/manage/defaults'] button").text  # type: ignore[union-attr]
        login(client, "admin")
        data = _form(_soup(client.get("/admin/queue").text))
        data.update(max_recalls="4", idle_seconds="120", countdown_seconds="15", no_show_limit="3")
        data["line_name"][0] = "社保业务"  # type: ignore[index]
        r = client.post("/admin/queue", data=data, follow_redirects=False)
        assert r.status_code == 303
        assert "已保存" in client.get("/admin/queue").text
        after = _soup(other.get("/queue/manage").text)
        assert "社保业务 A" in after.select_one("form[action='/queue/manage/defaults'] button").text  # type: ignore[union-attr]
        assert "3 次预约未到" in after.select_one("#booking-blocks h2").text  # type: ignore[union-attr]
        main = _soup(other.get("/queue/kiosk", params={"t": kiosk}).text).select_one("#kiosk-main")
        assert main is not None and (main["data-idle"], main["data-countdown"]) == ("120", "15")
        assert other.post("/queue/manage/defaults", follow_redirects=False).status_code == 303
        with Session(demo) as s:
            line = s.exec(select(QueueLine).where(QueueLine.outlet_id == lead.outlet_id)).first()
            (counter,) = counters.counters_of(s, lead.outlet_id or 0)
        assert line is not None and line.name == "社保业务"  # the lead's "use defaults" took the center's lines
        tickets.issue(demo, outlet_id=lead.outlet_id or 0, line_id=line.id or 0, hub=None, device_id=1)
        login(other, "teller1")
        assert other.post("/queue/sign-in", data={"counter_id": str(counter.id)},
                          follow_redirects=False).status_code == 303
        other.post("/queue/act/call", follow_redirects=False)
        panel = _soup(other.get("/queue/").text)
        assert panel.select_one("#btn-recall").text == "重呼（0/4）"  # type: ignore[union-attr]
    (saved,) = audit_rows(demo, action="admin.queue.edit")
    assert saved["state"]["to"] == "countdown_seconds/idle_seconds/max_recalls/no_show_limit/lines"


def test_another_outlets_lead_neither_sees_nor_lifts_a_block(demo: Engine, client: TestClient) -> None:
    lead1, lead2 = _staff(demo, "lead1"), _staff(demo, "lead2")
    admin = _staff(demo, "admin")
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead1.outlet_id)
        assert outlet is not None
        outlet.opening_hours = "周一至周日 8:00–18:00"
    counters.use_defaults(demo, admin, outlet_id=lead1.outlet_id)
    with Session(demo) as s:
        line = s.exec(select(QueueLine).where(QueueLine.outlet_id == lead1.outlet_id, QueueLine.prefix == "A")).one()
    booked_at = utcnow() - timedelta(days=12)  # two no-shows in the last 30 days: a block in force now
    with Session(demo) as s:
        days = bookings.bookable_days(WorkCalendar.load(s), local_day(booked_at), 5)[:2]
    for day in days:
        bookings.create(demo, outlet_id=lead1.outlet_id or 0, line_id=line.id or 0, slot_start=day_start(day),
                        name="王小明", phone=PHONE, pseudonym_key=KEY, at=booked_at)
    bookings.sweep_no_shows(demo, pseudonym_key=KEY)
    with Session(demo) as s:
        (block,) = [b for b in bookings.blocks(s, lead1.outlet_id or 0) if b.phone == PHONE]
    login(client, "lead2")
    blocks = _soup(client.get("/queue/manage").text).select_one("#booking-blocks")
    assert blocks is not None and "139****5678" not in blocks.text
    r = client.post(f"/queue/manage/blocks/{block.id}/lift", follow_redirects=False)
    assert r.status_code == 404
    login(client, "lead1")
    blocks = _soup(client.get("/queue/manage").text).select_one("#booking-blocks")
    assert blocks is not None and "139****5678" in blocks.text
    assert client.post(f"/queue/manage/blocks/{block.id}/lift", follow_redirects=False).status_code == 303
    refused, lifted = audit_rows(demo, action="booking.block_lift")
    assert refused["actor"]["id"] == lead2.id and refused["outcome"] == {"result": "refused", "reason": "not_found"}
    assert lifted["actor"]["id"] == lead1.id and lifted["outcome"]["result"] == "done"
