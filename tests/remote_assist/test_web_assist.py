"""The assist pages over HTTP and the signaling WebSocket (Starlette TestClient): request,
queue, accept, who may open the call, close codes, relaying, hang-up for both, consent,
material marks, stats."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from outlet.models import Case, CaseMaterial
from outlet.notices import one_time_items
from remote_assist.models import AssistConsent, AssistRequest, AssistSession
from tests.conftest import login
from tests.remote_assist.conftest import audit_entries


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def request_inspection(client: TestClient, case: Case) -> int:
    login(client, "teller2")
    r = client.post("/assist/requests", data={"kind": "inspection", "case_id": str(case.id), "topic": "现场勘验"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def accept(client: TestClient, rid: int, expert: str = "expert1") -> int:
    login(client, expert)
    r = client.post(f"/assist/requests/{rid}/accept", follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def recv(ws: Any) -> dict[str, Any]:
    return json.loads(ws.receive_text())


def test_assist_new_request_page_shows_checklist_before_start(client: TestClient, food_case: Case) -> None:
    login(client, "teller2")
    page = soup(client.get(f"/assist/new?case={food_case.id}"))
    assert len(page.select("#assist-checklist li")) == 7
    assert page.select_one("input[name=kind][value=inspection][checked]") is not None


def test_assist_request_shows_position_and_reaches_expert_queue(client: TestClient, food_case: Case) -> None:
    rid = request_inspection(client, food_case)
    status = soup(client.get(f"/assist/requests/{rid}"))
    assert status.select_one("#assist-position").get_text(strip=True) == "第 1 位"
    assert status.select_one("#assist-eta").get_text(strip=True) == "约 10 分钟"  # no expert online yet
    assert status.select_one("#assist-callback-form select[name=slot] option") is not None
    login(client, "expert1")
    queue = soup(client.get("/assist/"))
    assert [tr["data-request-id"] for tr in queue.select("#assist-queue tr.queue-item")] == [str(rid)]
    login(client, "expert3")  # 社保 expert: not offered
    assert soup(client.get("/assist/")).select("#assist-queue tr.queue-item") == []


def test_assist_call_page_only_for_the_two_participants(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert page.select_one("#assist-call")["data-role"] == "expert"
    login(client, "teller2")
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert page.select_one("#assist-call")["data-role"] == "teller"
    assert page.select_one("#consent-form") is not None  # consent asked before anything is recorded
    for outsider in ("expert2", "lead1"):
        login(client, outsider)
        r = client.get(f"/assist/sessions/{sid}")
        assert r.status_code == 403
        assert "不是本次视频通话的参与人" in r.text


def test_assist_websocket_refuses_outsiders_with_4403(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    login(client, "expert2")
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4403
    assert "参与人" in closed.value.reason


def test_assist_websocket_refuses_anonymous_with_4401(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    client.cookies.clear()
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4401


def test_assist_websocket_relays_and_hangup_ends_for_both(client: TestClient, engine: Engine, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as expert_ws:
        assert recv(expert_ws) == {"type": "welcome", "role": "expert", "peer_present": False}
        assert recv(expert_ws)["type"] == "recording"
        login(client, "teller2")
        with client.websocket_connect(f"/assist/sessions/{sid}/ws") as teller_ws:
            assert recv(teller_ws)["peer_present"] is True
            assert recv(teller_ws) == {"type": "recording", "state": "off"}
            assert recv(expert_ws) == {"type": "peer-joined", "role": "teller"}
            expert_ws.send_text(json.dumps({"type": "offer", "sdp": "v=0 fake"}))
            assert recv(teller_ws) == {"type": "offer", "sdp": "v=0 fake", "from": "expert"}
            teller_ws.send_text(json.dumps({"type": "chat", "text": "  您好，请把营业执照对准镜头 "}))
            chat = recv(expert_ws)
            assert (chat["type"], chat["text"]) == ("chat", "您好，请把营业执照对准镜头")
            teller_ws.send_text(json.dumps({"type": "hangup"}))
            assert recv(expert_ws) == {"type": "hangup", "reason": "hangup"}
            with pytest.raises(WebSocketDisconnect) as closed:
                recv(expert_ws)
            assert closed.value.code == 4410
    with Session(engine) as s:
        call = s.get(AssistSession, sid)
        assert call is not None and (call.state, call.end_reason) == ("ended", "hangup")
        assert s.get(AssistRequest, call.request_id).status == "done"  # type: ignore[union-attr]
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as ws, \
            pytest.raises(WebSocketDisconnect) as closed:  # ended: no way back in
        ws.receive_text()
    assert closed.value.code == 4410


def test_assist_recorder_refused_without_consent(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    login(client, "teller2")
    r = client.post(f"/assist/sessions/{sid}/recorder", json={"type": "offer", "sdp": "v=0"})
    assert r.status_code == 409
    assert "同意" in r.json()["error"]


def test_assist_consent_form_requires_explicit_confirmation(client: TestClient, engine: Engine, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    login(client, "teller2")
    form = {"name": "张三", "role": "申请人", "purpose": "远程视频勘验取证", "retention_days": "1095"}
    refused = client.post(f"/assist/sessions/{sid}/consent", data=form, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    panel = soup(refused)
    assert "明确表示同意" in panel.select_one("#consent-form .field-error").get_text()
    assert panel.select_one("#consent-form input[name=name]")["value"] == "张三"  # input kept
    ok = client.post(f"/assist/sessions/{sid}/consent", data={**form, "confirmed": "1"},
                     headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert "张三" in soup(ok).select_one("#consent-given").get_text()
    with Session(engine) as s:
        consent = s.exec(select(AssistConsent).where(AssistConsent.session_id == sid)).one()
        assert (consent.consenter_role, consent.retention_days) == ("申请人", 1095)
    entry = audit_entries(engine, "assist.consent")[-1]
    assert entry["case"] == food_case.number and entry["outcome"] == {"result": "done"}
    assert "张三" not in json.dumps(entry, ensure_ascii=False)  # no PII in the log


def test_assist_expert_marks_become_one_time_notice_items(client: TestClient, engine: Engine, food_case: Case) -> None:
    rid = request_inspection(client, food_case)
    sid = accept(client, rid)
    with Session(engine) as s:
        licence = s.exec(select(CaseMaterial).where(CaseMaterial.case_id == food_case.id,
                                                    CaseMaterial.name == "营业执照复印件")).one()
    url = f"/assist/sessions/{sid}/materials/{licence.id}"
    refused = client.post(url, data={"verdict": "defective", "reason": ""}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert soup(refused).select_one(f"#material-{licence.id} .field-error") is not None
    ok = client.post(url, data={"verdict": "defective", "reason": "复印件模糊，经营范围不清"},
                     headers={"HX-Request": "true"})
    assert ok.status_code == 200
    assert soup(ok).select_one(f"#material-{licence.id}")["data-status"] == "defective"
    with Session(engine) as s:
        mats = s.exec(select(CaseMaterial).where(CaseMaterial.case_id == food_case.id)).all()
    items = {i["name"]: i for i in one_time_items(mats)}
    assert items["营业执照复印件"]["reason"] == "复印件模糊，经营范围不清"
    assert audit_entries(engine, "assist.mark")[-1]["case"] == food_case.number
    login(client, "teller2")  # the teller may see but not mark
    assert client.post(url, data={"verdict": "ok"}).status_code == 403


def test_assist_stats_summary_is_stored_per_side(client: TestClient, engine: Engine, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    r = client.post(f"/assist/sessions/{sid}/stats",
                    json={"duration_s": 61.5, "rtt_ms_avg": 12.3, "loss_pct": 0.4, "evil": "<script>"})
    assert r.status_code == 200
    login(client, "teller2")
    token = client.headers["X-CSRF-Token"]
    del client.headers["X-CSRF-Token"]  # the page-unload beacon: urlencoded with the token field
    r = client.post(f"/assist/sessions/{sid}/stats",
                    data={"csrf_token": token, "summary": json.dumps({"bitrate_kbps_avg": 820})})
    assert r.status_code == 200
    with Session(engine) as s:
        stats = s.get(AssistSession, sid).stats  # type: ignore[union-attr]
    assert stats["expert"]["rtt_ms_avg"] == 12.3 and "evil" not in stats["expert"]
    assert stats["teller"]["bitrate_kbps_avg"] == 820


def test_assist_ice_config_has_short_lived_turn_credentials(client: TestClient, food_case: Case) -> None:
    sid = accept(client, request_inspection(client, food_case))
    cfg = client.get(f"/assist/sessions/{sid}/ice").json()
    assert cfg["iceTransportPolicy"] in ("all", "relay")
    assert isinstance(cfg["iceServers"], list)
    login(client, "expert2")
    assert client.get(f"/assist/sessions/{sid}/ice").status_code == 403


def test_assist_walk_in_help_needs_no_recording(client: TestClient, engine: Engine) -> None:
    login(client, "teller1")
    home = soup(client.get("/assist/"))
    options = {o.get_text(strip=True): o["value"] for o in home.select("#assist-walkin select[name=matter_id] option")
               if o["value"]}
    pension = next(v for k, v in options.items() if "城乡居民基本养老保险参保登记" in k)
    refused = client.post("/assist/requests", data={"kind": "help", "matter_id": ""})
    assert refused.status_code == 422
    assert soup(refused).select_one("#assist-form-error") is not None
    r = client.post("/assist/requests", data={"kind": "help", "matter_id": pension, "topic": "咨询参保缴费档次"},
                    follow_redirects=False)
    assert r.status_code == 303
    rid = int(r.headers["location"].rsplit("/", 1)[1])
    with Session(engine) as s, s.begin():  # nobody at town level answered: now at district level
        req = s.get(AssistRequest, rid)
        assert req is not None
        req.created_at -= timedelta(seconds=130)
        s.add(req)
    sid = accept(client, rid, expert="expert3")  # 社保 expert, district level
    page = soup(client.get(f"/assist/sessions/{sid}"))
    assert page.select_one("#assist-call")["data-record"] == "none"
    assert page.select_one("#consent-section") is None
    login(client, "teller1")
    r = client.post(f"/assist/sessions/{sid}/recorder", json={"type": "offer", "sdp": "v=0"})
    assert r.status_code == 409 and "无需录像" in r.json()["error"]


def test_assist_case_fragment_is_scoped(client: TestClient, food_case: Case) -> None:
    login(client, "teller2")
    page = soup(client.get(f"/assist/cases/{food_case.id}"))
    assert "勘验" in page.select_one("#case-inspection-gate").get_text()  # no conclusion yet
    login(client, "teller1")  # another outlet
    assert client.get(f"/assist/cases/{food_case.id}").status_code == 404
    login(client, "auditor")
    assert client.get(f"/assist/cases/{food_case.id}").status_code == 200


def test_assist_case_fragment_follows_the_case_page_rules(
    client: TestClient, demo: Engine, food_case: Case
) -> None:
    from remote_assist import queue
    from tests.remote_assist.conftest import staff

    for username in ("reviewer3", "expert2"):  # never forwarded, never asked for help
        login(client, username)
        assert client.get(f"/assist/cases/{food_case.id}").status_code == 404
    queue.create_request(demo, staff(demo, "teller2"), kind="help", case_id=food_case.id)
    login(client, "expert2")  # the case asked for remote help: experts of its domain see it
    assert client.get(f"/assist/cases/{food_case.id}").status_code == 200
    login(client, "reviewer3")  # still not forwarded to the center
    assert client.get(f"/assist/cases/{food_case.id}").status_code == 404


@pytest.mark.timeout(60)
def test_assist_call_ends_when_a_participants_login_ends(client: TestClient, engine: Engine, food_case: Case) -> None:
    """Logout elsewhere (or any end of the login) closes that participant's call socket with
    4401 and ends the call for both: the other side hears the hang-up."""
    sid = accept(client, request_inspection(client, food_case))
    with client.websocket_connect(f"/assist/sessions/{sid}/ws") as expert_ws:
        recv(expert_ws), recv(expert_ws)  # welcome, recording
        login(client, "teller2")
        with client.websocket_connect(f"/assist/sessions/{sid}/ws") as teller_ws:
            recv(teller_ws), recv(teller_ws)
            assert recv(expert_ws) == {"type": "peer-joined", "role": "teller"}
            client.post("/logout")  # the teller's login ends (another tab of the same browser)
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    recv(teller_ws)
            assert closed.value.code == 4401
        while (msg := recv(expert_ws))["type"] != "hangup":
            pass
        assert msg == {"type": "hangup", "reason": "session_ended"}
    with Session(engine) as s:
        call = s.get(AssistSession, sid)
        assert call is not None and (call.state, call.end_reason) == ("ended", "session_ended")
