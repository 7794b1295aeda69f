"""What the call pages offer: no material marks the server would refuse (a forwarded case),
接听 disabled with the reason while the expert is in another call, and an ended call's page
shows its chat transcript."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from outlet.models import Case
from tests.conftest import login
from tests.remote_assist.conftest import new_case
from tests.remote_assist.test_web_assist import accept, recv, request_inspection, soup
from web.settings import Settings


def test_call_on_a_forwarded_case_offers_no_material_marks(
    client: TestClient, engine: Engine, food_case: Case
) -> None:
    sid = accept(client, request_inspection(client, food_case))
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert page.select(".mark-form")  # a draft case: the expert may mark its materials
    with Session(engine) as s:
        case = s.get(Case, food_case.id)
        assert case is not None
        case.state = "forwarded"
        s.add(case)
        s.commit()
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert not page.select(".mark-form")
    assert "不能在通话中标注" in page.select_one("#materials-locked").get_text()


def test_accept_is_disabled_with_the_reason_while_in_another_call(
    client: TestClient, engine: Engine, food_case: Case, settings: Settings
) -> None:
    accept(client, request_inspection(client, food_case))
    request_inspection(client, new_case(engine, settings))
    login(client, "expert1")
    queue = soup(client.get("/assist/", headers={"HX-Request": "true"}))
    buttons = queue.select("button.accept")
    assert buttons and all(b.has_attr("disabled") for b in buttons)
    assert "挂断后才能接听" in queue.select_one("#busy-reason").get_text()


def test_ended_call_page_shows_the_chat_transcript(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as ws:
        recv(ws)
        ws.send_text(json.dumps({"type": "chat", "text": "请把营业执照对准镜头"}))
        ws.send_text(json.dumps({"type": "hangup"}))
        while recv(ws)["type"] != "hangup":
            pass
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert page.select_one("#call-ended") is not None
    lines = [li.get_text(" ", strip=True) for li in page.select("#chat-transcript li")]
    assert any("请把营业执照对准镜头" in x for x in lines), lines
