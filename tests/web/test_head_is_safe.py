"""HEAD is a safe method (RFC 9110 §9.2.1): the CSRF check lets it through, so it must run a
page's GET branch, never its form branch (web.security.is_write) — no change, no login."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from partners.models import Staff
from tests.conftest import login
from tests.partners.conftest import audit_entries


def test_head_with_a_form_body_changes_no_staff_record_nor_creates_one(
        client: TestClient, demo: Engine) -> None:
    login(client, "secadmin")
    with Session(demo) as s:
        teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
    body = {"display_name": "被改名", "roles": ["outlet_lead"], "outlet_id": str(teller.outlet_id), "active": "0"}
    r = client.request("HEAD", f"/admin/staff/{teller.id}", data=body)
    assert r.status_code == 200 and r.content == b""
    new = {"username": "teller99", "password": "first-pass-19", "display_name": "新柜员", "roles": ["teller"],
           "outlet_id": str(teller.outlet_id)}
    assert client.request("HEAD", "/admin/staff/new", data=new).status_code == 200
    with Session(demo) as s:
        after = s.get(Staff, teller.id)
        assert after is not None and (after.display_name, after.roles, after.active) == \
            (teller.display_name, teller.roles, teller.active)
        assert s.exec(select(Staff).where(Staff.username == "teller99")).first() is None
    assert audit_entries(demo, "security.staff.edit") == []


def test_head_login_is_not_a_login_attempt(client: TestClient, demo: Engine) -> None:
    r = client.request("HEAD", "/login", data={"username": "teller1", "password": "demo-12345"})
    assert r.status_code == 200
    assert client.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")  # not logged in
    assert client.request("HEAD", "/login").status_code == 200  # `curl -I /login`
    assert audit_entries(demo, "security.login") == []  # neither a success nor a failed attempt


def test_no_handler_branches_on_the_get_method() -> None:
    # A handler that tests `method == "GET"` runs its POST branch for HEAD (which the CSRF check
    # treats as safe): every GET+POST handler asks web.security.is_write instead.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"""\.method\s*[!=]=\s*["']GET["']""")
    found = [f"{p.relative_to(root)}:{n}" for d in ("web", "outlet", "partners", "remote_assist", "audit")
             for p in (root / d).rglob("*.py")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []
