"""Live connections end with their login: a WebSocket opened by a session closes (4401) when
that session ends — logout, password reset, role change, deactivation, an end by the
security admin, an end committed by another process — or when it expired; a hall
display's socket closes when its device is revoked. See web/live.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from outlet import devices
from outlet.events import Hub
from partners import accounts, logins
from partners.models import Outlet, Staff
from tests.conftest import login
from web import live
from web.settings import Settings

ORIGIN = {"origin": "http://testserver"}
pytestmark = pytest.mark.timeout(60)  # a socket the push fails to close would hang here


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No periodic re-check during these tests: a socket that closes was closed by the push
    (or by its per-message check), so a broken push fails here instead of passing late."""
    return dataclasses.replace(settings, live_recheck_seconds=3600.0)


def _staff(engine: Engine, username: str) -> Staff:
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


def _closed_by_server(ws: Any) -> WebSocketDisconnect:
    """Read until the server closes the socket; the close it sent."""
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            ws.receive_text()
    return closed.value


def _other_browser(client: TestClient, username: str) -> TestClient:
    other = TestClient(client.app, base_url=str(client.base_url))
    return login(other, username)


def _by_secadmin(client: TestClient, path: str, data: dict[str, str]) -> None:
    admin = _other_browser(client, "secadmin")
    try:
        r = admin.post(path, data=data, follow_redirects=False)
        assert r.status_code in (200, 303), r.text  # a reset answers with its one-time password page
    finally:
        admin.close()


def test_expert_feed_closes_on_logout_in_another_tab(client: TestClient, demo: Engine) -> None:
    login(client, "expert1")
    with client.websocket_connect("/assist/events", headers=ORIGIN) as ws:
        ws.send_text(json.dumps({"type": "ping"}))
        assert json.loads(ws.receive_text()) == {"type": "pong"}
        client.post("/logout")
        closed = _closed_by_server(ws)
    assert (closed.code, closed.reason) == (4401, live.SESSION_ENDED_REASON)


@pytest.mark.parametrize("change", ["password", "roles", "deactivate", "sessions"])
def test_counter_panel_closes_when_the_security_admin_changes_the_account(
        client: TestClient, demo: Engine, change: str) -> None:
    teller = _staff(demo, "teller1")
    login(client, "teller1")
    with client.websocket_connect("/queue/live", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "changed"  # the snapshot on connect
        path, data = {
            "password": (f"/admin/staff/{teller.id}/password", {}),  # the server generates it
            "roles": (f"/admin/staff/{teller.id}", {"display_name": teller.display_name, "roles": "outlet_lead",
                                                    "outlet_id": str(teller.outlet_id), "active": "1"}),
            "deactivate": (f"/admin/staff/{teller.id}", {"display_name": teller.display_name, "roles": "teller",
                                                         "outlet_id": str(teller.outlet_id)}),
            "sessions": (f"/admin/staff/{teller.id}/sessions/end", {}),
        }[change]
        _by_secadmin(client, path, data)
        assert _closed_by_server(ws).code == 4401


def test_a_session_ended_by_another_process_closes_the_socket(client: TestClient, demo: Engine) -> None:
    """Another process (here a second hub on the same database, as the CLI's reset uses)
    ends the sessions; the app learns it from the hub's table, not from memory."""
    login(client, "expert1")
    other_process = Hub(demo)  # never started: it only publishes, like `servicepoint reset-password`
    uninstall = live.install(other_process)
    try:
        with client.websocket_connect("/assist/events", headers=ORIGIN) as ws:
            with Session(demo, expire_on_commit=False) as s, s.begin():
                expert = s.exec(select(Staff).where(Staff.username == "expert1")).one()
                accounts.reset_password(s, expert, "Reset-by-cli-2026", actor=None)
            assert _closed_by_server(ws).code == 4401
    finally:
        uninstall()


def test_an_expired_session_is_noticed_on_the_next_message(client: TestClient, demo: Engine) -> None:
    """Expiry produces no event: the socket's own re-check (each message) ends it."""
    login(client, "expert1")
    with client.websocket_connect("/assist/events", headers=ORIGIN) as ws:
        with Session(demo) as s, s.begin():
            for row in s.exec(select(logins.LoginSession)).all():
                row.last_seen -= timedelta(hours=1)  # idle for an hour
                s.add(row)
        ws.send_text(json.dumps({"type": "ping"}))
        assert _closed_by_server(ws).code == 4401


def test_other_users_sockets_stay_open(client: TestClient, demo: Engine) -> None:
    """The end of one login closes only that login's sockets."""
    login(client, "expert1")
    other = _other_browser(client, "expert1")  # the same user in another browser
    with client.websocket_connect("/assist/events", headers=ORIGIN) as ws:
        other.post("/logout")
        other.close()
        ws.send_text(json.dumps({"type": "ping"}))
        assert json.loads(ws.receive_text()) == {"type": "pong"}


def test_hall_display_socket_closes_when_the_device_is_revoked(client: TestClient, demo: Engine) -> None:
    lead = _staff(demo, "lead1")
    with Session(demo) as s, s.begin():
        outlet = s.get(Outlet, lead.outlet_id)
        assert outlet is not None
    display, token = devices.pair(demo, lead, kind="hall_display", label="大厅叫号屏")
    with client.websocket_connect(f"/queue/display/live?t={token}", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "board"
        lead_browser = _other_browser(client, "lead1")
        try:
            r = lead_browser.post(f"/devices/{display.id}/revoke", follow_redirects=False)
            assert r.status_code == 303
        finally:
            lead_browser.close()
        closed = _closed_by_server(ws)
    assert (closed.code, closed.reason) == (4401, live.DEVICE_REVOKED_REASON)


def test_session_end_event_names_only_ids(demo: Engine) -> None:
    """What the hub carries: the staff id and the stored (hashed) session ids — no token."""
    hub = Hub(demo)
    uninstall = live.install(hub)
    seen: list[dict[str, Any]] = []
    try:
        with Session(demo, expire_on_commit=False) as s, s.begin():
            teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
            token = logins.start(s, teller, client="test", lifetime=timedelta(hours=1))
        with Session(demo) as s, s.begin():
            logins.end(s, logins.token_id(token), "logout")
        seen = [e.payload for e in hub.read_after(0, (live.SESSION_TOPIC,))]
    finally:
        uninstall()
    assert seen == [{"staff": teller.id, "sessions": [logins.token_id(token)]}]
    assert token not in json.dumps(seen)


