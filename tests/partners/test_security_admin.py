"""Security administration over HTTP (三员分立): accounts, roles, passwords and sessions are
the security admin's alone; duty holders' resets need a second person; all of it audited."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from partners import accounts
from partners.models import Staff
from tests.conftest import login
from tests.partners.conftest import audit_entries


@pytest.fixture
def sec(fast_hashes: None, client: TestClient, demo: Engine) -> TestClient:
    return login(client, "secadmin")


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def staff_id(engine: Engine, username: str) -> int:
    with Session(engine) as s:
        sid = s.exec(select(Staff.id).where(Staff.username == username)).one()
        assert sid is not None
        return sid


def other_client(app: Starlette, username: str, password: str = "demo-12345") -> TestClient:
    c = TestClient(app, base_url="http://testserver")
    return login(c, username, password)


@pytest.mark.parametrize(
    ("username", "url"),
    [("admin", "/admin/staff"), ("admin", "/admin/staff/new"), ("auditor", "/admin/staff"),
     ("secadmin", "/admin/partners"), ("secadmin", "/admin/grants"), ("secadmin", "/audit/")],
)
def test_each_duty_reaches_only_its_own_pages(
    fast_hashes: None, client: TestClient, demo: Engine, username: str, url: str
) -> None:
    login(client, username)
    assert client.get(url).status_code == 403


def test_security_admin_creates_resets_and_assigns_backup_all_audited(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    response = sec.post(
        "/admin/staff/new",
        data={"username": "teller9", "password": "first-pass-1", "display_name": "新柜员",
              "roles": ["teller"], "outlet_id": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    url = response.headers["location"]
    reset = sec.post(url + "/password", data={"new_password": "chosen-by-me-2"})  # a chosen one is ignored
    assert reset.status_code == 200
    one_time = soup(reset).select_one("#one-time-password code").get_text()
    assert len(one_time) >= 12 and one_time != "chosen-by-me-2"
    assert soup(sec.get(url)).select_one("#one-time-password") is None  # shown once only
    assert reset.headers["cache-control"] == "no-store"
    backup = sec.post(
        url + "/backups",
        data={"backup_id": str(staff_id(demo, "teller1")), "backup_from": "2026-01-01",
              "backup_to": "2026-01-31", "backup_note": "培训"},
        follow_redirects=False,
    )
    assert backup.status_code == 303
    assert "培训" in soup(sec.get(url)).select_one("#backups tbody").get_text()
    edits = [e["state"]["to"] for e in audit_entries(demo, "security.staff.edit")]
    resets = [e["state"]["to"] for e in audit_entries(demo, "security.password.reset")]
    assert edits[0].startswith("staff:") and edits[1].startswith("backup:")
    assert resets == ["password_reset"]
    # someone else chose the password: the first login leads to the password change only
    teller = other_client(app, "teller9", one_time)
    assert teller.get("/cases/", follow_redirects=False).headers["location"] == "/account/password"
    page = teller.get("/account/password")
    assert soup(page).select_one("#forced-change") is not None
    changed = teller.post("/account/password", data={
        "current_password": one_time, "new_password": "my-own-secret-9",
        "new_password2": "my-own-secret-9"}, follow_redirects=False)
    assert changed.status_code == 303 and changed.headers["location"] == "/cases/"
    assert teller.get("/cases/").status_code == 200
    (own,) = audit_entries(demo, "security.password.change")  # one's own change is audited too
    assert own["state"] == {"from": f"staff:{staff_id(demo, 'teller9')}", "to": "password_changed"}


def test_password_change_refuses_weak_password_and_keeps_the_forced_state(
    fast_hashes: None, client: TestClient, demo: Engine
) -> None:
    login(client, "teller1")
    response = client.post("/account/password", data={
        "current_password": "demo-12345", "new_password": "teller1-2026x", "new_password2": "teller1-2026x"})
    assert response.status_code == 422
    assert "用户名" in soup(response).select_one(".field-error").get_text()


def test_security_admin_invalid_roles_keep_input(sec: TestClient) -> None:
    response = sec.post(
        "/admin/staff/new",
        data={"username": "both", "password": "long-enough-1", "display_name": "兼任",
              "roles": ["admin", "auditor"], "outlet_id": ""},
    )
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#f-username")["value"] == "both"
    assert page.select_one("#fs-roles input[value=auditor]").has_attr("checked")
    assert "三员分立" in page.select_one("#err-roles").get_text()
    assert page.select_one("#f-password").get("value") in (None, "")  # never echoed


def test_security_admin_cannot_give_themselves_a_second_duty_or_drop_their_own(
    sec: TestClient, demo: Engine
) -> None:
    me = staff_id(demo, "secadmin")
    for roles in (["security_admin", "auditor"], ["auditor"]):
        response = sec.post(f"/admin/staff/{me}", data={"display_name": "孙立新", "roles": roles, "active": "1"})
        assert response.status_code == 422
    with Session(demo) as s:
        assert s.get(Staff, me).roles == "security_admin"  # type: ignore[union-attr]


def test_reset_of_the_auditor_needs_a_second_security_admin(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    """The request holds no password: secadmin asks, secadmin2 approves and alone sees the
    generated one-time password — secadmin cannot log in as the auditor."""
    auditor = other_client(app, "auditor")
    target = staff_id(demo, "auditor")
    asked = sec.post(f"/admin/staff/{target}/password", data={"new_password": "ledger-temp-77"},
                     follow_redirects=False)
    assert asked.status_code == 303
    page = soup(sec.get(f"/admin/staff/{target}"))
    assert page.select_one("#pending-request")["data-kind"] == "reset"
    assert page.select_one("#approve-request") is None  # the requester cannot approve
    assert page.select_one("#one-time-password") is None
    assert auditor.get("/audit/").status_code == 200  # nothing happened yet
    second = _second_secadmin(app, demo)
    approved = second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    assert approved.status_code == 200
    one_time = soup(approved).select_one("#one-time-password code").get_text()
    assert auditor.get("/audit/", follow_redirects=False).headers["location"].startswith("/login")
    for guess in ("ledger-temp-77", "demo-12345"):  # what the requester chose or knew
        with pytest.raises(AssertionError):
            other_client(app, "auditor", guess)
    assert other_client(app, "auditor", one_time).get("/audit/", follow_redirects=False).headers["location"] \
        == "/account/password"
    kinds = [(e["action"], e["state"], e["outcome"]["result"]) for e in audit_entries(demo)
             if e["action"].startswith("security.password") or e["action"] == "security.request.decide"]
    assert kinds == [("security.password.reset", {"from": f"staff:{target}", "to": "reset_pending"}, "done"),
                     ("security.request.decide", {"from": f"staff:{target}", "to": "reset_approved"}, "done")]
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.pending_kind is None
        assert one_time not in str(s.exec(select(Staff)).all())  # never stored in clear
    assert all(one_time not in str(e) for e in audit_entries(demo))


def test_self_approval_of_any_request_is_one_duty_separation_entry_naming_the_account(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    """One helper settles every kind: the requester approving a reset is a 422
    ``duty_separation`` refusal naming staff:N — one entry, no access.refused beside it."""
    target = staff_id(demo, "auditor")
    sec.post(f"/admin/staff/{target}/password")
    refused = sec.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    assert refused.status_code == 422
    second = _second_secadmin(app, demo)
    me2 = staff_id(demo, "secadmin2")
    sec.post(f"/admin/staff/{me2}", data={"display_name": "林卫东", "roles": ["security_admin"], "active": "0"})
    assert second.post(f"/admin/staff/{me2}/pending/decide", data={"decision": "approve"}).status_code == 422
    assert second.post(f"/admin/staff/{me2}/pending/cancel").status_code == 422  # the holder cannot cancel
    entries = [e for e in audit_entries(demo) if e["outcome"]["result"] == "refused"]
    assert [(e["action"], e["outcome"]["reason"], e["state"]["from"]) for e in entries] == [
        ("security.request.decide", "duty_separation", f"staff:{target}"),
        ("security.request.decide", "duty_separation", f"staff:{me2}"),
        ("security.request.decide", "duty_separation", f"staff:{me2}"),
    ]


def test_one_pending_request_per_account_and_the_requester_can_cancel_it(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    target = staff_id(demo, "auditor")
    sec.post(f"/admin/staff/{target}", data={"display_name": "审计员", "roles": ["reviewer"], "active": "1"})
    second = _second_secadmin(app, demo)
    again = second.post(f"/admin/staff/{target}/password")
    assert again.status_code == 409
    assert "岗位变更" in again.text and "孙立新" in soup(again).select_one("#err-pending").get_text()
    form = {"display_name": "审计员", "roles": ["auditor"], "active": "0"}
    other = second.post(f"/admin/staff/{target}", data=form)
    assert other.status_code == 409 and soup(other).select_one("#f-active option[selected]")["value"] == "0"
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and (row.pending_kind, row.pending_roles, row.active) == ("roles", "reviewer", True)
    cancelled = sec.post(f"/admin/staff/{target}/pending/cancel", follow_redirects=False)
    assert cancelled.status_code == 303
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.pending_kind is None and row.roles == "auditor"
    assert second.post(f"/admin/staff/{target}/password", follow_redirects=False).status_code == 303
    refused = [(e["action"], e["outcome"]["reason"]) for e in audit_entries(demo) if e["outcome"]["result"] == "refused"]
    assert refused == [("security.password.reset", "request_pending"), ("security.staff.edit", "request_pending")]
    decided = [e["state"] for e in audit_entries(demo, "security.request.decide")]
    assert decided == [{"from": f"staff:{target}", "to": "roles_cancelled"}]


def test_the_pending_box_lists_every_kind_with_requester_and_time(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    second = _second_secadmin(app, demo)
    sec.post(f"/admin/staff/{staff_id(demo, 'auditor')}/password")
    sec.post(f"/admin/staff/{staff_id(demo, 'admin')}", data={"display_name": "管理员", "roles": ["reviewer"],
                                                              "active": "1"})
    sec.post(f"/admin/staff/{staff_id(demo, 'secadmin2')}", data={"display_name": "第二安全员",
                                                                  "roles": ["security_admin"], "active": "0"})
    sec.post("/admin/staff/new", data={"username": "auditor9", "display_name": "新审计员", "roles": ["auditor"]})
    rows = soup(second.get("/admin/staff")).select("#pending-requests tbody tr")
    assert sorted(r["data-kind"] for r in rows) == ["activation", "deactivation", "reset", "roles"]
    assert all("孙立新" in r.select_one(".requester").get_text() for r in rows)
    assert all(r.select("td")[3].get_text().strip() for r in rows)  # the time


def test_reactivating_the_auditor_waits_for_a_second_security_admin(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    target = staff_id(demo, "auditor")
    with Session(demo) as s, s.begin():
        row = s.get(Staff, target)
        assert row is not None
        row.active = False
    r = sec.post(f"/admin/staff/{target}", data={"display_name": "审计员", "roles": ["auditor"], "active": "1"})
    assert r.status_code == 200 and "双人复核" in r.text
    with pytest.raises(AssertionError):
        other_client(app, "auditor")
    second = _second_secadmin(app, demo)
    approved = second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    one_time = soup(approved).select_one("#one-time-password code").get_text()
    with pytest.raises(AssertionError):  # a re-activated duty account gets a fresh one-time password
        other_client(app, "auditor")
    assert other_client(app, "auditor", one_time).get("/audit/", follow_redirects=False).headers["location"] \
        == "/account/password"


def test_security_admin_sees_and_ends_a_users_sessions(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    teller = other_client(app, "teller1")
    target = staff_id(demo, "teller1")
    rows = soup(sec.get(f"/admin/staff/{target}")).select("#sessions tbody tr[data-session]")
    assert len(rows) == 1 and "testclient" in rows[0].get_text()
    sec.post(f"/admin/staff/{target}/sessions/end", data={"session": rows[0].select_one("input[name=session]")["value"]})
    assert teller.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")
    assert soup(sec.get(f"/admin/staff/{target}")).select("#sessions tbody tr[data-session]") == []
    assert [e["state"]["to"] for e in audit_entries(demo, "security.sessions.end")] == ["sessions_ended:1"]


def test_cli_reset_password_needs_no_second_person_and_is_audited(
    fast_hashes: None, demo: Engine, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setenv("SERVICEPOINT_DATA", str(settings.data_dir))
    monkeypatch.setenv("SERVICEPOINT_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["reset-password", "auditor"], input="cli-chosen-pass9\n")
    assert result.exit_code == 0, result.output
    with Session(demo) as s, s.begin():
        staff = accounts.authenticate(s, "auditor", "cli-chosen-pass9")
        assert staff.must_change_password
    (entry,) = audit_entries(demo, "security.password.reset")
    assert entry["actor"] == {"id": 0, "role": "server_cli"}


def test_security_admin_creates_a_partner_manager_bound_to_one_partner(
    sec: TestClient, app: Starlette, demo: Engine
) -> None:
    from partners.models import Partner

    with Session(demo) as s:
        ccb = s.exec(select(Partner).where(Partner.code == "CCB-HC")).one()
    missing = sec.post("/admin/staff/new", data={
        "username": "ccbnet", "password": "first-pass-1", "display_name": "建行网点管理",
        "roles": ["partner_manager"], "outlet_id": "", "partner_id": ""})
    assert missing.status_code == 422
    assert soup(missing).select_one("#err-partner_id").get_text() == "合作方管理员须选择所属合作机构"
    assert soup(missing).select_one("#f-display_name")["value"] == "建行网点管理"
    made = sec.post("/admin/staff/new", data={
        "username": "ccbnet", "password": "first-pass-1", "display_name": "建行网点管理",
        "roles": ["partner_manager"], "outlet_id": "", "partner_id": str(ccb.id)}, follow_redirects=False)
    assert made.status_code == 303
    page = soup(sec.get(made.headers["location"]))
    assert page.select_one("#f-partner_id option[selected]")["value"] == str(ccb.id)
    assert "中国建设银行" in soup(sec.get("/admin/staff?q=ccbnet")).select_one("tbody").get_text()
    assert [e["state"]["to"][:6] for e in audit_entries(demo, "security.staff.edit")] == ["staff:"]


def test_cli_create_user_of_a_duty_needs_no_second_person_and_is_audited(
    fast_hashes: None, demo: Engine, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setenv("SERVICEPOINT_DATA", str(settings.data_dir))
    monkeypatch.setenv("SERVICEPOINT_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["create-user", "--username", "auditor7", "--name", "审计七",
                                       "--role", "auditor"], input="cli-chosen-pass9\n")
    assert result.exit_code == 0, result.output
    with Session(demo) as s:
        staff = s.exec(select(Staff).where(Staff.username == "auditor7")).one()
        assert staff.active and staff.pending_roles is None
    (entry,) = audit_entries(demo, "security.staff.edit")
    assert entry["actor"] == {"id": 0, "role": "server_cli"} and entry["state"]["to"] == f"staff:{staff.id}"


def test_separation_refusals_are_audited_and_keep_the_form(sec: TestClient, demo: Engine) -> None:
    """A request that breaks 三员分立 is a refusal entry naming what was asked for, not only a 422."""
    response = sec.post("/admin/staff/new", data={"username": "both", "password": "long-enough-1",
                                                  "display_name": "兼任", "roles": ["admin", "auditor"]})
    assert response.status_code == 422 and "三员分立" in soup(response).select_one("#err-roles").get_text()
    me = staff_id(demo, "secadmin")
    response = sec.post(f"/admin/staff/{me}", data={"display_name": "孙立新", "roles": ["security_admin"]})
    assert response.status_code == 422  # deactivating oneself
    assert "不能停用自己的账号" in soup(response).select_one("#err-roles").get_text()
    refused = [(e["outcome"]["reason"], e["state"]["from"]) for e in audit_entries(demo, "security.staff.edit")
               if e["outcome"]["result"] == "refused"]
    assert refused == [("duty_separation", "roles:admin/auditor"), ("duty_separation", f"staff:{me}")]


def _second_secadmin(app: Starlette, demo: Engine) -> TestClient:
    """The demo's second security admin (so the two-person flow works on a fresh demo)."""
    return other_client(app, "secadmin2")


def test_a_new_auditor_account_needs_a_second_security_admin(sec: TestClient, app: Starlette, demo: Engine) -> None:
    """The requester chooses no password for a duty account: the approver alone sees the
    one-time password generated at approval."""
    chosen = sec.post("/admin/staff/new", data={"username": "auditor9", "password": "ledger-first-9",
                                                "display_name": "新审计员", "roles": ["auditor"]})
    assert chosen.status_code == 422 and "批准启用时系统生成" in soup(chosen).select_one("#err-password").get_text()
    assert soup(chosen).select_one("#f-username")["value"] == "auditor9"
    r = sec.post("/admin/staff/new", data={"username": "auditor9", "password": "",
                                           "display_name": "新审计员", "roles": ["auditor"]}, follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"]
    page = soup(sec.get(url))
    assert page.select_one("#pending-request")["data-kind"] == "activation"
    assert page.select_one("#approve-request") is None  # the requester cannot approve
    assert sec.post(url + "/pending/decide", data={"decision": "approve"}).status_code == 422  # refused, audited
    second = _second_secadmin(app, demo)
    assert soup(second.get(url)).select_one("#approve-request") is not None
    approved = second.post(url + "/pending/decide", data={"decision": "approve"})
    assert approved.status_code == 200
    one_time = soup(approved).select_one("#one-time-password code").get_text()
    with pytest.raises(AssertionError):  # what the requester typed was never a password
        other_client(app, "auditor9", "ledger-first-9")
    auditor = other_client(app, "auditor9", one_time)
    assert auditor.get("/audit/", follow_redirects=False).headers["location"] == "/account/password"
    decided = [(e["outcome"]["result"], e["state"]["to"]) for e in audit_entries(demo, "security.request.decide")]
    assert decided[0][0] == "refused" and decided[1] == ("done", "activation_approved")
    edits = [e["state"]["to"] for e in audit_entries(demo, "security.staff.edit")]
    assert edits == ["roles_pending"]


def test_granting_the_admin_duty_waits_for_a_second_person_and_can_be_refused(
        sec: TestClient, app: Starlette, demo: Engine) -> None:
    target = staff_id(demo, "reviewer3")
    with Session(demo) as s:
        before = s.get(Staff, target)
        assert before is not None
    reviewer = other_client(app, "reviewer3")
    form = {"display_name": before.display_name, "roles": ["admin"], "active": "1"}
    assert sec.post(f"/admin/staff/{target}", data=form, follow_redirects=False).status_code == 303
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == "reviewer" and row.pending_roles == "admin"
    assert reviewer.get("/review/").status_code == 200  # nothing changed yet
    second = _second_secadmin(app, demo)
    assert second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "refuse"},
                       follow_redirects=False).status_code == 303
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == "reviewer" and row.pending_roles is None
    sec.post(f"/admin/staff/{target}", data=form)
    second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == "admin"
    assert reviewer.get("/review/", follow_redirects=False).headers["location"].startswith("/login")


def test_deactivating_another_security_admin_waits_for_a_third_look_and_is_audited(
        sec: TestClient, app: Starlette, demo: Engine) -> None:
    """One security admin cannot shut the other out alone: the deactivation waits, the
    requester cannot approve it (an audited refusal), another security admin can."""
    second = _second_secadmin(app, demo)
    target = staff_id(demo, "secadmin2")
    form = {"display_name": "林卫东", "roles": ["security_admin"], "active": "0"}
    r = sec.post(f"/admin/staff/{target}", data=form)
    assert r.status_code == 200 and "双人复核" in r.text
    page = soup(sec.get(f"/admin/staff/{target}"))
    assert page.select_one("#pending-request")["data-kind"] == "deactivation"
    assert page.select_one("#approve-request") is None  # not for the requester
    assert second.get("/admin/staff").status_code == 200  # still active, still logged in
    assert sec.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"}).status_code == 422
    with Session(demo, expire_on_commit=False) as s, s.begin():  # a third security admin approves
        accounts.create_staff(s, username="secadmin3", display_name="第三安全员", password="third-sec-pass",
                              roles=["security_admin"], must_change_password=False)
    third = other_client(app, "secadmin3", "third-sec-pass")
    assert third.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"},
                      follow_redirects=False).status_code == 303
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and not row.active and row.pending_kind is None
    assert second.get("/admin/staff", follow_redirects=False).headers["location"].startswith("/login")
    edits = [(e["outcome"]["result"], e["state"]["to"]) for e in audit_entries(demo, "security.staff.edit")]
    assert ("done", "deactivation_pending") in edits
    decided = [(e["outcome"]["result"], e["actor"]["id"], e["state"]["to"])
               for e in audit_entries(demo, "security.request.decide")]
    me = staff_id(demo, "secadmin")
    assert decided[0][:2] == ("refused", me) and decided[-1] == ("done", staff_id(demo, "secadmin3"),
                                                                 "deactivation_approved")


def test_demoting_the_auditor_waits_for_a_second_person(sec: TestClient, app: Starlette, demo: Engine) -> None:
    target = staff_id(demo, "auditor")
    auditor = other_client(app, "auditor")
    r = sec.post(f"/admin/staff/{target}", data={"display_name": "审计员", "roles": ["reviewer"], "active": "1"})
    assert r.status_code == 200 and "双人复核" in r.text
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == "auditor" and row.pending_roles == "reviewer"
    assert auditor.get("/audit/").status_code == 200  # unchanged until approved
    second = _second_secadmin(app, demo)
    second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == "reviewer"
    assert auditor.get("/audit/", follow_redirects=False).headers["location"].startswith("/login")


def test_moving_a_teller_to_another_outlet_ends_their_sessions(sec: TestClient, app: Starlette, demo: Engine) -> None:
    """Pages and live connections (the counter panel, the outlet's event feed) were scoped to
    the old outlet: the move ends the login like a role change does."""
    target = staff_id(demo, "teller1")
    teller = other_client(app, "teller1")
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None
        other = s.exec(select(Staff.outlet_id).where(Staff.username == "teller2")).one()
    assert other != row.outlet_id
    form = {"display_name": row.display_name, "roles": ["teller"], "outlet_id": str(other), "active": "1"}
    assert sec.post(f"/admin/staff/{target}", data=form, follow_redirects=False).status_code == 303
    assert teller.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")


def test_moving_an_expert_to_another_domain_ends_their_sessions(sec: TestClient, app: Starlette, demo: Engine) -> None:
    """The expert's request feed was filtered by the old domain: the move ends the login."""
    target = staff_id(demo, "expert1")
    expert = other_client(app, "expert1")
    assert expert.get("/assist/").status_code == 200
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.domain != "社保"
    form = {"display_name": row.display_name, "roles": ["expert"], "domain": "社保",
            "expert_level": row.expert_level, "active": "1"}
    assert sec.post(f"/admin/staff/{target}", data=form, follow_redirects=False).status_code == 303
    assert expert.get("/assist/", follow_redirects=False).headers["location"].startswith("/login")


def test_the_requester_never_holds_the_login_of_an_account_made_a_duty_holder(
        sec: TestClient, app: Starlette, demo: Engine) -> None:
    """secadmin resets reviewer3 (an ordinary account: the one-time password is theirs to see),
    then asks for the admin duty; secadmin2 approves and gets a new one-time password, shown
    only to them: the password secadmin knew no longer opens the account."""
    target = staff_id(demo, "reviewer3")
    reset = sec.post(f"/admin/staff/{target}/password")
    known = soup(reset).select_one("#one-time-password code").get_text()
    form = {"display_name": "何静怡", "roles": ["admin"], "active": "1"}
    assert sec.post(f"/admin/staff/{target}", data=form, follow_redirects=False).status_code == 303
    second = _second_secadmin(app, demo)
    approved = second.post(f"/admin/staff/{target}/pending/decide", data={"decision": "approve"})
    assert approved.status_code == 200 and approved.headers["cache-control"] == "no-store"
    one_time = soup(approved).select_one("#one-time-password code").get_text()
    assert one_time != known and "一次性密码" in soup(approved).select_one(".flash, .notice").get_text()
    with pytest.raises(AssertionError):
        other_client(app, "reviewer3", known)
    admin = other_client(app, "reviewer3", one_time)
    assert admin.get("/admin/", follow_redirects=False).headers["location"] == "/account/password"
    assert soup(sec.get(f"/admin/staff/{target}")).select_one("#one-time-password") is None
    assert all(one_time not in str(e) for e in audit_entries(demo))


@pytest.mark.parametrize("holder", ["secadmin", "auditor", "admin"])
def test_a_duty_holder_gets_no_business_role_neither_themselves_nor_others(
        sec: TestClient, app: Starlette, demo: Engine, holder: str) -> None:
    """三员分立: a duty holder holds no business role at all — a 422 duty_separation refusal,
    audited, the account unchanged (no approval needed to refuse)."""
    target = staff_id(demo, holder)
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None
        duty, name = row.roles, row.display_name
    response = sec.post(f"/admin/staff/{target}", data={"display_name": name, "roles": [duty, "reviewer"],
                                                        "active": "1"})
    assert response.status_code == 422
    assert "不能兼任业务岗位" in soup(response).select_one("#err-roles").get_text()
    assert soup(response).select_one("#fs-roles input[value=reviewer]").has_attr("checked")  # input kept
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None and row.roles == duty and row.pending_kind is None
    if holder == "secadmin":
        assert sec.get("/review/").status_code == 403
    refused = [(e["outcome"]["reason"], e["state"]) for e in audit_entries(demo, "security.staff.edit")
               if e["outcome"]["result"] == "refused"]
    assert refused == [("duty_separation", {"from": f"staff:{target}", "to": f"staff:{target}"})]  # nothing changed


def test_cli_create_user_refuses_a_duty_with_a_business_role(
    fast_hashes: None, demo: Engine, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setenv("SERVICEPOINT_DATA", str(settings.data_dir))
    monkeypatch.setenv("SERVICEPOINT_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["create-user", "--username", "admin7", "--name", "管理七",
                                       "--role", "admin", "--role", "reviewer"], input="cli-chosen-pass9\n")
    assert result.exit_code == 1 and "不能兼任业务岗位" in result.output
    with Session(demo) as s:
        assert s.exec(select(Staff).where(Staff.username == "admin7")).first() is None


def test_the_demo_gives_no_duty_holder_a_business_role() -> None:
    from partners.demo_data import STAFF
    from partners.models import DUTY_ROLES

    assert all(len(roles) == 1 for _u, _n, roles, *_ in STAFF if set(roles) & DUTY_ROLES)


def test_every_staff_edit_entry_says_what_changed_and_the_auditor_reads_it(
        sec: TestClient, app: Starlette, demo: Engine) -> None:
    """roles, outlet, active… from → to in the leaf's ``terms`` (no name, no phone), shown in
    Chinese on the auditor's entry page."""
    target = staff_id(demo, "teller1")
    with Session(demo) as s:
        row = s.get(Staff, target)
        assert row is not None
        other = s.exec(select(Staff.outlet_id).where(Staff.username == "teller2")).one()
    form = {"display_name": row.display_name, "roles": ["outlet_lead"], "outlet_id": str(other), "active": "0",
            "phone": "13912345678"}
    assert sec.post(f"/admin/staff/{target}", data=form, follow_redirects=False).status_code == 303
    made = sec.post("/admin/staff/new", data={"username": "reviewer9", "password": "first-pass-19",
                                              "display_name": "新审核员", "roles": ["reviewer"], "domain": "社保"},
                    follow_redirects=False)
    assert made.status_code == 303
    held = sec.post(f"/admin/staff/{staff_id(demo, 'auditor')}", data={"display_name": "审计员", "roles": ["reviewer"],
                                                                       "active": "1"})
    assert held.status_code == 200
    edit, new, pending = audit_entries(demo, "security.staff.edit")
    assert set(edit["terms"]) == {"roles", "outlet", "active"}
    assert edit["terms"]["roles"] == {"from": "teller", "to": "outlet_lead"}
    assert edit["terms"]["active"] == {"from": True, "to": False}
    assert edit["terms"]["outlet"]["from"] != edit["terms"]["outlet"]["to"]
    assert new["terms"]["roles"] == {"from": None, "to": "reviewer"} and new["terms"]["domain"]["to"] == "社保"
    assert pending["state"]["to"] == "roles_pending" and pending["terms"] == {"roles": {"from": "auditor",
                                                                                        "to": "reviewer"}}
    assert all("13912345678" not in str(e) and row.display_name not in str(e) for e in audit_entries(demo))
    auditor = other_client(app, "auditor")
    index = _index_of(demo, edit)
    page = soup(auditor.get(f"/audit/entries/{index}"))
    items = {li["data-key"]: li.get_text() for li in page.select("#entry-changes li")}
    assert items["roles"] == "岗位：服务专员 → 网点负责人"
    assert items["active"] == "账号状态：启用 → 停用"


def _index_of(engine: Engine, entry: dict[str, Any]) -> int:
    from audit import search_entries

    with Session(engine) as s:
        page = search_entries(s, action=entry["action"], limit=500, newest_first=False)
        return next(view.index for view in page.entries if view.entry == entry)


def test_wrong_current_passwords_are_throttled_and_audited_like_failed_logins(
        fast_hashes: None, client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    form = {"current_password": "not-my-password-1", "new_password": "my-own-secret-9",
            "new_password2": "my-own-secret-9"}
    statuses = [client.post("/account/password", data=form).status_code for _ in range(8)]
    assert statuses[0] == 422 and statuses[-1] == 429  # guessing is slowed down
    held = client.post("/account/password", data=form)
    assert held.headers["retry-after"] and "秒后再试" in soup(held).select_one(".field-error").get_text()
    me = staff_id(demo, "teller1")
    refused = [(e["actor"]["id"], e["outcome"]["reason"], e["state"]["from"])
               for e in audit_entries(demo, "security.password.change")]
    assert (me, "bad_credentials", f"staff:{me}") in refused and (me, "throttled", f"staff:{me}") in refused
    with Session(demo) as s, s.begin():
        accounts.authenticate(s, "teller1", "demo-12345")  # unchanged


def test_a_fresh_demo_has_a_second_security_admin_and_short_idle_timeouts_are_refused(
        demo: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from partners.logins import touch_every
    from web.settings import Settings

    with Session(demo) as s:
        second = s.exec(select(Staff).where(Staff.username == "secadmin2")).one()
        assert second.roles == "security_admin" and second.active
    from datetime import timedelta
    for bad in ("0", "-5", "0.5", "half"):
        monkeypatch.setenv("SERVICEPOINT_SESSION_IDLE_MINUTES", bad)
        with pytest.raises(ValueError, match="SERVICEPOINT_SESSION_IDLE_MINUTES"):
            Settings.from_env()
    monkeypatch.setenv("SERVICEPOINT_SESSION_IDLE_MINUTES", "1")
    assert Settings.from_env().session_idle_minutes == 1
    assert touch_every(timedelta(minutes=1)) == 15 and touch_every(timedelta(minutes=30)) == 60
