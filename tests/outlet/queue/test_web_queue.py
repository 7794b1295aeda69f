"""The queue through the real app: the lead's settings, the kiosk (device token), the
counter panel, the hall display's WebSocket fed by the event hub, the ticket's pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from outlet import devices
from outlet.demo import seed_demo_cases
from outlet.events import Event
from outlet.models import Case
from outlet.queue import counters
from outlet.queue.models import Ticket
from outlet.states import TERMINAL
from partners.models import Outlet, Staff
from tests.conftest import login
from tests.outlet.conftest import audit_rows
from web.routes import queue_live

HTMX = {"HX-Request": "true"}


def _staff(engine: Engine, username: str) -> Staff:
    with Session(engine) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


@pytest.fixture
def hall(demo: Engine, client: TestClient) -> Iterator[dict[str, object]]:
    """teller1's outlet open all day, default lines and one counter, a kiosk and a display."""
    lead = _staff(demo, "lead1")
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
        outlet.opening_hours = ""  # no hours set: always staffed (tests run at any hour)
    login(client, "lead1")
    assert client.post("/queue/manage/defaults", follow_redirects=False).status_code == 303
    _kiosk, kiosk_token = devices.pair(demo, lead, kind="kiosk", label="大厅取号机")
    _display, display_token = devices.pair(demo, lead, kind="hall_display", label="大厅叫号屏")
    client.post("/logout")
    client.headers.pop("X-CSRF-Token", None)
    yield {"lead": lead, "kiosk": kiosk_token, "display": display_token}


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _take(client: TestClient, token: str, prefix: str = "A", priority: str = "") -> BeautifulSoup:
    home = _soup(client.get("/queue/kiosk", params={"t": token}).text)
    line_id = home.select_one(f"#line-{prefix}")["value"]  # type: ignore[index]
    csrf = home.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    r = client.post("/queue/kiosk/ticket", params={"t": token},
                    data={"line_id": line_id, "priority": priority, "csrf_token": csrf})
    assert r.status_code == 201, r.text
    return _soup(r.text)


def test_queue_manage_lines_defaults_and_bad_input_kept(demo: Engine, client: TestClient, hall: dict[str, object]) -> None:
    login(client, "lead1")
    page = _soup(client.get("/queue/manage").text)
    assert [td.text for td in page.select("#queue-lines tbody tr td.mono")] == ["A", "B", "C"]
    assert page.select_one("#counter-1") is not None
    assert page.select_one("#fig-tickets").text.strip() == "0 张"  # type: ignore[union-attr]
    r = client.post("/queue/manage/lines", data={"prefix": "a1", "name": "新业务", "daily_cap": "abc",
                                                 "warn_minutes": "30", "slot_capacity": "4"})
    assert r.status_code == 422
    form = _soup(r.text).select_one("#line-form")
    assert form is not None and form.select_one("input[name=name]")["value"] == "新业务"  # type: ignore[index]
    assert "号票字母" in form.text and "每日限号" in form.text
    client.post("/logout")
    client.headers.pop("X-CSRF-Token", None)
    login(client, "teller1")
    assert client.get("/queue/manage").status_code == 403


def test_kiosk_ticket_counter_call_and_hall_display_push(demo: Engine, client: TestClient,
                                                         hall: dict[str, object]) -> None:
    slip = _take(client, str(hall["kiosk"]), priority="elderly")
    assert slip.select_one("#slip-number").text == "A001"  # type: ignore[union-attr]
    assert slip.select_one(".slip-qr svg") is not None and "前面还有" in slip.text
    # the display's socket on the app's own client (its event loop is the hub's: a second
    # TestClient runs another loop, and the hub's queues are not thread-safe across loops)
    with client.websocket_connect(f"/queue/display/live?t={hall['display']}",
                                  headers={"origin": "http://testserver"}) as ws:
        first = ws.receive_json()
        assert first["board"]["waiting"][0] == {"line": "A", "name": "社保医保", "count": 1}
        login(client, "teller1")
        panel = _soup(client.get("/queue/").text)
        counter_id = panel.select_one("select[name=counter_id] option")["value"]  # type: ignore[index]
        client.post("/queue/sign-in", data={"counter_id": counter_id})
        r = client.post("/queue/act/call", headers=HTMX)
        assert r.status_code == 200
        assert _soup(r.text).select_one("#current-number").text == "A001"  # type: ignore[union-attr]
        pushed = ws.receive_json()
        for _ in range(3):  # the issue and sign-in may still be on their way (published before)
            if pushed["announce"] is not None:
                break
            pushed = ws.receive_json()
        assert pushed["announce"] == {"ticket": "A001", "counter": 1, "counter_name": "1号窗口"}
        assert pushed["board"]["calls"] == [{"ticket": "A001", "counter": 1, "counter_name": "1号窗口"}]
    page = _soup(client.get("/queue/display", params={"t": str(hall["display"])}).text)
    assert page.select_one("#calls .num").text == "A001"  # type: ignore[union-attr]


def test_kiosk_refuses_revoked_and_foreign_tokens_and_issues_nothing(demo: Engine, client: TestClient,
                                                                     hall: dict[str, object]) -> None:
    home = _soup(client.get("/queue/kiosk", params={"t": str(hall["kiosk"])}).text)
    line_id = home.select_one("#line-A")["value"]  # type: ignore[index]
    csrf = home.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    for token in (str(hall["display"]), "not-a-token"):
        r = client.post("/queue/kiosk/ticket", params={"t": token}, data={"line_id": line_id, "csrf_token": csrf})
        assert r.status_code == 403 and "未配对或已停用" in r.text
    kiosk = devices.resolve(demo, str(hall["kiosk"]), kind="kiosk")
    devices.revoke(demo, hall["lead"], kiosk.id or 0)  # type: ignore[arg-type]
    r = client.post("/queue/kiosk/ticket", params={"t": str(hall["kiosk"])}, data={"line_id": line_id, "csrf_token": csrf})
    assert r.status_code == 403
    client.cookies.set("sp_device", "bogus-cookie-token")  # a bogus sp_device cookie, no ?t=
    assert client.post("/queue/kiosk/ticket", data={"line_id": line_id, "csrf_token": csrf}).status_code == 403
    with Session(demo) as s:
        assert s.exec(select(Ticket)).all() == []
    # every refusal audited (tallied per actor × route × minute), the device or anonymous, no token
    refused = audit_rows(demo, action="access.refused")
    display = devices.token_owner(demo, str(hall["display"]))
    assert {(e["actor"]["role"], e["actor"]["id"]) for e in refused} == {
        ("device", display), ("anonymous", 0), ("device", kiosk.id)}
    assert {e["state"]["from"] for e in refused} == {"POST:/queue/kiosk/ticket"}
    assert all(e["outcome"] == {"result": "refused", "reason": "forbidden"} for e in refused)
    assert not any(str(hall[k]) in str(refused) for k in ("kiosk", "display")) and "bogus" not in str(refused)


def test_kiosk_outside_hours_shows_closed_and_refuses_issue(demo: Engine, client: TestClient,
                                                            hall: dict[str, object]) -> None:
    home = _soup(client.get("/queue/kiosk", params={"t": str(hall["kiosk"])}).text)
    line_id = home.select_one("#line-A")["value"]  # type: ignore[index]
    csrf = home.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, _staff(demo, "lead1").outlet_id)
        assert outlet is not None
        outlet.opening_hours = "周八 9:00–9:01；周一至周日 0:00–0:00"  # a day with no staffed minute
    assert _soup(client.get("/queue/kiosk", params={"t": str(hall["kiosk"])}).text).select_one("#closed-notice")
    r = client.post("/queue/kiosk/ticket", params={"t": str(hall["kiosk"])}, data={"line_id": line_id, "csrf_token": csrf})
    assert r.status_code == 409
    assert "不在取号时间" in _soup(r.text).select_one("#kiosk-error").text  # type: ignore[union-attr]


def test_panel_call_with_no_one_waiting_and_ticket_public_pages(demo: Engine, client: TestClient,
                                                                hall: dict[str, object]) -> None:
    login(client, "teller1")
    panel = _soup(client.get("/queue/").text)
    client.post("/queue/sign-in", data={"counter_id": panel.select_one("select[name=counter_id] option")["value"]})  # type: ignore[index]
    r = client.post("/queue/act/call", headers=HTMX)
    assert r.status_code == 409
    assert "没有等候" in _soup(r.text).select_one("#panel-error").text  # type: ignore[union-attr]
    _take(client, str(hall["kiosk"]))
    _take(client, str(hall["kiosk"]))
    with Session(demo) as s:
        second = s.exec(select(Ticket).where(Ticket.number == "A002")).one()
    page = _soup(client.get(f"/queue/t/{second.public_code}").text)
    assert page.select_one("#pos-ahead").text == "1"  # type: ignore[union-attr]
    printed = _soup(client.get(f"/queue/t/{second.public_code}/print").text)
    assert printed.select_one("body.print-80 #slip-number").text == "A002"  # type: ignore[union-attr]
    assert client.get("/queue/t/unknown-code").status_code == 404


def test_display_feed_builds_one_board_per_outlet_and_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 displays of one outlet share one board query and one encoded message per event;
    a newly connected display gets a fresh board of its own."""
    built: list[int] = []

    def board_of(engine: object, outlet_id: int) -> dict[str, object]:
        built.append(outlet_id)
        return {"calls": [], "recent": [], "waiting": []}

    monkeypatch.setattr(queue_live, "board_of", board_of)
    feed = queue_live.DisplayFeed()
    ev = Event(7, "queue.outlet.1", {"step": "call", "ticket": "A001", "counter": 1, "counter_name": "1号窗口"})

    async def run() -> list[str]:
        return list(await asyncio.gather(*(feed.message(None, 1, ev) for _ in range(20))))

    texts = asyncio.run(run())
    assert len(set(texts)) == 1 and built == [1]
    msg = json.loads(texts[0])
    assert msg["seq"] == 7 and msg["announce"] == {"ticket": "A001", "counter": 1, "counter_name": "1号窗口"}
    asyncio.run(feed.message(None, 1, None))
    assert built == [1, 1]


DIGIT_LIKE = ["²", "٣", "１", "9" * 20, "-1", ""]


def test_digit_like_numbers_are_clear_refusals_with_the_form_kept(demo: Engine, client: TestClient,
                                                                  hall: dict[str, object]) -> None:
    """"²" passes str.isdigit() and then breaks int(); 20 digits overflow SQLite (issue 10):
    the kiosk and the lead's forms answer 422 with a Chinese reason, an id answers 404."""
    token = str(hall["kiosk"])
    home = _soup(client.get("/queue/kiosk", params={"t": token}).text)
    csrf = home.select_one("input[name=csrf_token]")["value"]  # type: ignore[index]
    for raw in DIGIT_LIKE:
        r = client.post("/queue/kiosk/ticket", params={"t": token}, data={"line_id": raw, "csrf_token": csrf})
        assert r.status_code == 422, raw
        assert "请选择业务类型" in _soup(r.text).select_one("#kiosk-error").text  # type: ignore[union-attr]
    login(client, "lead1")
    for raw in DIGIT_LIKE:
        r = client.post("/queue/manage/counters", data={"number": raw, "name": "", "line_ids": raw})
        assert r.status_code == 422, raw
        form = _soup(r.text).select_one("#counter-form")
        assert form is not None and "窗口号须为 1–99 的整数" in form.text
        assert form.select_one("input[name=number]")["value"] == raw  # type: ignore[index]
        r = client.post("/queue/manage/lines", data={"prefix": "D", "name": "新业务", "daily_cap": raw,
                                                     "warn_minutes": "30", "slot_capacity": "4"})
        assert r.status_code == 422 and "每日限号须为 1–999 的整数" in r.text, raw
        assert client.get("/queue/manage", params={"line": raw, "counter": raw}).status_code == 200
    empty_name = client.post("/queue/manage/counters", data={"number": "", "name": " "})
    assert "请填写窗口名称" in empty_name.text and "不超过 32 字" not in empty_name.text
    client.post("/logout")
    client.headers.pop("X-CSRF-Token", None)
    login(client, "teller1")
    panel = _soup(client.get("/queue/").text)
    client.post("/queue/sign-in", data={"counter_id": panel.select_one("select[name=counter_id] option")["value"]})  # type: ignore[index]
    for raw in DIGIT_LIKE:
        for step in ("serve", "done"):
            assert client.post(f"/queue/act/{step}", data={"ticket_id": raw}, headers=HTMX).status_code == 404, raw
        assert client.post("/queue/act/transfer", data={"ticket_id": "1", "line_id": raw},
                           headers=HTMX).status_code in (404, 422), raw
        assert client.post("/queue/sign-in", data={"counter_id": raw}).status_code == 422, raw


def test_a_present_but_invalid_record_id_is_404_and_creates_nothing(demo: Engine, client: TestClient,
                                                                   hall: dict[str, object]) -> None:
    """Only an absent or empty line_id / counter_id means "new" (issue 10: "²" made a line)."""
    from outlet.queue.models import QueueCounter, QueueLine

    def count(model: type) -> int:
        with Session(demo) as s:
            return len(s.exec(select(model)).all())

    login(client, "lead1")
    lines, counters_before = count(QueueLine), count(QueueCounter)
    a_line = _soup(client.get("/queue/manage").text).select_one("input[name=line_ids]")["value"]  # type: ignore[index]
    for raw in [r for r in DIGIT_LIKE if r]:
        r = client.post("/queue/manage/lines", data={"line_id": raw, "prefix": "D", "name": "新业务",
                                                     "daily_cap": "100", "warn_minutes": "30", "slot_capacity": "4"})
        assert r.status_code == 404 and "未找到该业务类型" in r.text, raw
        r = client.post("/queue/manage/counters", data={"counter_id": raw, "number": "9", "name": "",
                                                        "line_ids": a_line})
        assert r.status_code == 404 and "未找到该窗口" in r.text, raw
    assert (count(QueueLine), count(QueueCounter)) == (lines, counters_before)
    r = client.post("/queue/manage/lines", data={"line_id": "", "prefix": "D", "name": "新业务",
                                                 "daily_cap": "100", "warn_minutes": "30", "slot_capacity": "4"},
                    follow_redirects=False)
    assert r.status_code == 303 and count(QueueLine) == lines + 1


def test_line_and_counter_names_refuse_markup_and_a_non_ascii_prefix(demo: Engine, client: TestClient,
                                                                      hall: dict[str, object]) -> None:
    """Names follow the person-name rule (digits and brackets also allowed); "ı" is not "I"."""
    from outlet.queue.models import QueueCounter, QueueLine

    login(client, "lead1")
    a_line = _soup(client.get("/queue/manage").text).select_one("input[name=line_ids]")["value"]  # type: ignore[index]
    for name in ("<b>社保</b>", "社保😀"):
        r = client.post("/queue/manage/lines", data={"prefix": "D", "name": name, "daily_cap": "100",
                                                     "warn_minutes": "30", "slot_capacity": "4"})
        assert r.status_code == 422 and "不能含有 < > 等标记" in _soup(r.text).text, name
        assert _soup(r.text).select_one("#line-form input[name=name]")["value"] == name  # type: ignore[index]
        r = client.post("/queue/manage/counters", data={"number": "9", "name": name, "line_ids": a_line})
        assert r.status_code == 422 and "不能含有 < > 等标记" in _soup(r.text).text, name
    r = client.post("/queue/manage/lines", data={"prefix": "ı", "name": "新业务", "daily_cap": "100",
                                                 "warn_minutes": "30", "slot_capacity": "4"})
    assert r.status_code == 422 and "号票字母须为一个英文大写字母" in r.text
    with Session(demo) as s:
        assert not s.exec(select(QueueLine).where(QueueLine.prefix.in_(("D", "I")))).all()  # type: ignore[attr-defined]
        assert not s.exec(select(QueueCounter).where(QueueCounter.number == 9)).all()
    ok = client.post("/queue/manage/counters", data={"number": "9", "name": "9号窗口（综合）", "line_ids": a_line},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_transfer_note_longer_than_the_field_is_refused_not_cut(demo: Engine, client: TestClient,
                                                                hall: dict[str, object]) -> None:
    _take(client, str(hall["kiosk"]))
    login(client, "teller1")
    panel = _soup(client.get("/queue/").text)
    client.post("/queue/sign-in", data={"counter_id": panel.select_one("select[name=counter_id] option")["value"]})  # type: ignore[index]
    current = _soup(client.post("/queue/act/call", headers=HTMX).text)
    ticket_id = current.select_one("input[name=ticket_id]")["value"]  # type: ignore[index]
    client.post("/queue/act/serve", data={"ticket_id": ticket_id}, headers=HTMX)
    page = _soup(client.get("/queue/").text)
    assert page.select_one("#transfer-form input[name=note]")["maxlength"] == "64"  # type: ignore[index]
    line_b = page.select_one("#transfer-form select[name=line_id] option:nth-of-type(3)")["value"]  # type: ignore[index]
    note = "材" * 65
    r = client.post("/queue/act/transfer", data={"ticket_id": ticket_id, "line_id": line_b, "note": note}, headers=HTMX)
    assert r.status_code == 422
    shown = _soup(r.text)
    assert "转移说明不超过 64 字（现为 65 字）" in shown.select_one("#panel-error").text  # type: ignore[union-attr]
    assert shown.select_one("#transfer-form input[name=note]")["value"] == note  # type: ignore[index]
    with Session(demo) as s:
        assert s.exec(select(Ticket)).one().state == "serving"


def test_continuing_another_outlets_case_keeps_its_history_and_shows_no_dead_link(
        demo: Engine, client: TestClient) -> None:
    """接续办理 at another outlet of the partner (lead2 continues a case of teller1's outlet):
    the panel shows the case's history for the whole service and no link that answers 404."""
    seed_demo_cases(demo, b"k" * 32)
    lead1, lead2 = _staff(demo, "lead1"), _staff(demo, "lead2")
    with Session(demo) as s, s.begin():
        case = s.exec(select(Case).where(Case.outlet_id == lead1.outlet_id,
                                         col(Case.state).not_in(TERMINAL))).first()
        assert case is not None
        number, code = case.number, case.check_code
        outlet2 = s.get(Outlet, lead2.outlet_id)
        assert outlet2 is not None
        outlet2.opening_hours = ""  # always staffed (tests run at any hour)
    counters.use_defaults(demo, lead2)
    _k, token = devices.pair(demo, lead2, kind="kiosk", label="取号机")
    _take(client, token)
    login(client, "lead2")
    panel = _soup(client.get("/queue/").text)
    client.post("/queue/sign-in", data={"counter_id": panel.select_one("select[name=counter_id] option")["value"]})  # type: ignore[index]
    current = _soup(client.post("/queue/act/call", headers=HTMX).text)
    ticket_id = current.select_one("input[name=ticket_id]")["value"]  # type: ignore[index]
    client.post("/queue/act/serve", data={"ticket_id": ticket_id}, headers=HTMX)
    r = client.post("/queue/act/continue", data={"ticket_id": ticket_id, "case_number": number,
                                                 "check_code": code}, headers=HTMX)
    assert r.status_code == 200, r.text
    for html in (r.text, client.get("/queue/").text):  # also after a reload of the panel
        page = _soup(html)
        assert page.select_one("#linked-case").text.strip() == number  # type: ignore[union-attr]
        assert number in page.select_one("#continued-case").text  # type: ignore[union-attr]
        assert page.select_one("#continued-case .history li") is not None
        for a in page.select("a[href^='/cases/']"):
            if a["href"] != "/cases/new" and not str(a["href"]).startswith("/cases/new?"):
                assert client.get(str(a["href"])).status_code == 200, a["href"]
        assert page.select_one(f"a[href='/cases/{number}']") is None

