"""Paired devices: pairing and revoking are audited lead actions; tokens are shown once,
stored hashed, and refused (403) once revoked or when of another kind."""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from audit.models import entries
from outlet import devices
from outlet.devices import Device, DeviceInputError, DeviceRefused
from partners.errors import RoleLacksAction
from partners.models import Staff
from tests.conftest import login


def _staff(engine: Engine, username: str) -> Staff:
    with Session(engine) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


def _actions(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [json.loads(r[0]) for r in conn.execute(select(entries.c.leaf).order_by(entries.c.idx))]


def test_device_pair_resolve_and_revoke_are_audited(demo: Engine) -> None:
    lead, teller = _staff(demo, "lead1"), _staff(demo, "teller1")
    device, token = devices.pair(demo, lead, kind="rating_pad", label="1号窗口评价器",
                                 counter="1号窗口", staff_id=teller.id)
    with Session(demo) as s:
        row = s.get(Device, device.id)
        assert row is not None and token not in row.token_sha256 and len(row.token_sha256) == 64
    assert devices.resolve(demo, token, kind="rating_pad").id == device.id
    with pytest.raises(DeviceRefused):
        devices.resolve(demo, token, kind="kiosk")
    with pytest.raises(DeviceRefused):
        devices.resolve(demo, token, kind="rating_pad", outlet_id=device.outlet_id + 1)
    devices.revoke(demo, lead, device.id or 0)
    with pytest.raises(DeviceRefused):
        devices.resolve(demo, token, kind="rating_pad")
    leaves = [e for e in _actions(demo) if str(e["action"]).startswith("device.")]
    assert [(e["action"], e["state"]) for e in leaves] == [
        ("device.pair", {"from": None, "to": "paired"}),
        ("device.revoke", {"from": "paired", "to": "revoked"}),
    ]
    assert all(token not in json.dumps(e) for e in leaves)


def test_device_pair_refused_for_a_teller_and_audited(demo: Engine) -> None:
    teller = _staff(demo, "teller1")
    with pytest.raises(RoleLacksAction):
        devices.pair(demo, teller, kind="rating_pad", label="x", staff_id=teller.id)
    last = _actions(demo)[-1]
    assert last["action"] == "device.pair" and last["outcome"] == {
        "result": "refused", "reason": "role_lacks_action"}


def test_device_pair_needs_a_served_staff_member_for_a_rating_pad(demo: Engine) -> None:
    with pytest.raises(DeviceInputError, match="评价器须绑定"):
        devices.pair(demo, _staff(demo, "lead1"), kind="rating_pad", label="评价器")
    with Session(demo) as s:
        assert s.exec(select(Device)).first() is None


def test_device_web_pairing_link_is_shown_once_and_sets_the_cookie(client: TestClient, demo: Engine) -> None:
    login(client, "lead1")
    page = client.get("/devices/")
    teller_option = BeautifulSoup(page.text, "html.parser").find("option", string="张晓燕")
    assert teller_option is not None
    made = client.post("/devices/", data={"kind": "rating_pad", "label": "1号窗口评价器",
                                          "counter": "1号窗口", "staff_id": teller_option["value"]})
    assert made.status_code == 201
    link = BeautifulSoup(made.text, "html.parser").select_one("#pairing-link").get_text(strip=True)
    assert "/devices/activate/" in link
    assert link not in client.get("/devices/").text  # shown once only

    pad = TestClient(client.app, base_url="http://testserver")
    assert link.startswith("http://127.0.0.1:8000/")  # SERVICEPOINT_PUBLIC_URL, not the Host header
    activated = pad.get(link.removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert activated.status_code == 303 and activated.headers["location"] == "/rate/pad"
    assert pad.cookies.get("sp_device")
    assert pad.get("/devices/paired").status_code == 200

    with Session(demo) as s:
        device = s.exec(select(Device)).one()
    assert client.post(f"/devices/{device.id}/revoke", follow_redirects=False).status_code == 303
    refused = pad.get("/devices/paired")
    assert refused.status_code == 403 and "已停用" in refused.text


def test_device_revoke_out_of_scope_is_404_like_an_unknown_id_and_audited(
        client: TestClient, demo: Engine) -> None:
    """Another outlet's device answers exactly as an id that does not exist (no probing of
    ids, no outlet named); the refusal is in the audit log and the device keeps working."""
    lead1 = _staff(demo, "lead1")
    device, token = devices.pair(demo, lead1, kind="rating_pad", label="1号窗口评价器",
                                 counter="1号窗口", staff_id=_staff(demo, "teller1").id)
    with Session(demo) as s:
        from partners.models import Outlet
        outlet_name = s.get(Outlet, device.outlet_id).name  # type: ignore[union-attr]
    login(client, "lead2")
    other = client.post(f"/devices/{device.id}/revoke", follow_redirects=False)
    unknown = client.post("/devices/99999/revoke", follow_redirects=False)
    assert other.status_code == unknown.status_code == 404
    for r in (other, unknown):
        text = BeautifulSoup(r.text, "html.parser").select_one("main").get_text()
        assert "未找到该终端" in text and outlet_name not in text
    assert devices.resolve(demo, token, kind="rating_pad").id == device.id  # not revoked
    refused = [e for e in _actions(demo) if e["action"] == "access.refused"]
    assert refused and refused[0]["outcome"] == {"result": "refused", "reason": "not_found"}
    assert refused[0]["state"]["from"] == f"POST:/devices/{device.id}/revoke"  # type: ignore[index]
