"""Logins, failed logins, logouts and session expiry are audit entries (GB/T 22239-2019
8.1.4.3); failed logins are tallied per account per minute like refused requests, unknown
login names never reach the log in clear, and a burst adds a bounded number of entries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from audit import search_entries
from audit.entry import canonical_json
from partners import logins
from partners.models import Staff, utcnow
from tests.conftest import csrf_from, login
from web import refusals as refusals_module

NOW = (utcnow() + timedelta(days=1)).replace(second=30, microsecond=0)  # one minute, never flushed early


def entries(engine: Engine, action: str) -> list[dict[str, Any]]:
    with Session(engine) as s:
        return [v.entry for v in search_entries(s, action=action, limit=500, newest_first=False).entries]


def staff_id(engine: Engine, username: str) -> int:
    with Session(engine) as s:
        return s.exec(select(Staff.id).where(Staff.username == username)).one()  # type: ignore[return-value]


def try_login(c: TestClient, username: str, password: str) -> int:
    token = csrf_from(c.get("/login").text)
    return c.post("/login", data={"username": username, "password": password, "csrf_token": token},
                  follow_redirects=False).status_code


def test_a_login_and_its_logout_are_entries_naming_the_same_session(client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    tid = staff_id(demo, "teller1")
    (entry,) = entries(demo, "security.login")
    assert entry["actor"] == {"id": tid, "role": "teller"} and entry["outcome"] == {"result": "done"}
    with Session(demo) as s:
        sid = s.exec(select(logins.LoginSession.id)).one()
    assert entry["state"] == {"from": None, "to": f"session:{sid[:12]}"}
    client.post("/logout")
    (out,) = entries(demo, "security.logout")
    assert out["actor"]["id"] == tid
    assert out["state"] == {"from": f"session:{sid[:12]}", "to": "ended:logout"}


def test_an_expired_session_is_one_entry_however_often_it_is_found(client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    cookie = client.cookies["sp_session"]
    with Session(demo) as s, s.begin():
        row = s.exec(select(logins.LoginSession)).one()
        row.last_seen -= timedelta(minutes=settings.session_idle_minutes + 1)
        s.add(row)
        sid = row.id
    assert client.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")
    again = TestClient(client.app, base_url="http://testserver")  # the same cookie once more
    again.cookies.set("sp_session", cookie)
    assert again.get("/cases/", follow_redirects=False).status_code == 303
    (expired,) = entries(demo, "security.session.expire")
    assert expired["actor"]["id"] == staff_id(demo, "teller1")
    assert expired["state"] == {"from": f"session:{sid[:12]}", "to": "expired"}
    with Session(demo) as s:
        assert s.get(logins.LoginSession, sid).ended_reason == "expired"  # type: ignore[union-attr]


@pytest.fixture
def fixed_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every failure of a test falls in one minute the app's own flush does not reach."""
    monkeypatch.setattr(refusals_module, "utcnow", lambda: NOW)


@pytest.mark.usefixtures("fixed_minute")
def test_failed_logins_are_tallied_per_account_and_unknown_names_stay_out_of_the_log(
        client: TestClient, demo: Engine) -> None:
    tid = staff_id(demo, "auditor")
    statuses = [try_login(client, "auditor", f"wrong-guess-{i}") for i in range(8)]
    # made-up names, one of them a password typed into the name field
    statuses += [try_login(client, name, "whatever-123") for name in
                 ["Hunter2-Secret!", "ghost.one", "ghost.two", "ghost.three", "ghost.one"]]
    assert set(statuses) <= {401, 429} and 401 in statuses and 429 in statuses
    first = entries(demo, "security.login")
    assert all(e["outcome"]["result"] == "refused" and e["actor"] == {"id": 0, "role": "anonymous"}
               for e in first)
    # at once: the first failure of each account × reason, one tally for every unknown name
    tried = {(e["state"]["from"].rsplit(":", 1)[0] if "unknown" in e["state"]["from"] else e["state"]["from"],
              e["outcome"]["reason"]) for e in first}
    assert ("staff:%d" % tid, "bad_credentials") in tried and ("staff:%d" % tid, "throttled") in tried
    unknown = [e for e in first if e["state"]["from"].startswith("account:unknown")]
    assert len(first) == len(tried) <= 4 and 1 <= len(unknown) <= 2
    assert all(len(e["state"]["from"]) == len("account:unknown:") + 12 for e in unknown)
    leaves = b"".join(canonical_json(e) for e in first)
    assert b"ghost" not in leaves and b"Hunter2" not in leaves and b"auditor" not in leaves
    assert b"wrong-guess" not in leaves
    # after the minute: the exact totals, so the signed log holds every attempt
    refusals_module.flush(demo, at=NOW + timedelta(minutes=1))
    totals = [e for e in entries(demo, "security.login") if e["state"]["to"].startswith("total:")]
    counted = len(first) + sum(int(e["state"]["to"][6:]) - 1 for e in totals)
    assert counted == len(statuses)


@pytest.mark.usefixtures("fixed_minute")
def test_a_burst_of_made_up_names_adds_at_most_two_entries_a_minute(demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(200):
        refusals_module.record_login_failure(demo, None, "bad_credentials", username=f"bot{i}",
                                             key=settings.pseudonym_key())
    assert len(entries(demo, "security.login")) == 1
    refusals_module.flush(demo, at=NOW + timedelta(minutes=1))
    assert [e["state"] for e in entries(demo, "security.login")][-1] == {"from": "account:unknown", "to": "total:200"}


def test_the_auditor_reads_logins_and_failures_in_chinese(client: TestClient, demo: Engine) -> None:
    assert try_login(client, "teller1", "not-the-password") == 401
    login(client, "teller1")
    client.post("/logout")
    del client.headers["X-CSRF-Token"]  # the logged-out session's token
    login(client, "auditor")
    page = BeautifulSoup(client.get("/audit/", params={"action": "security.login"}).text, "html.parser")
    text = page.get_text(" ", strip=True)
    assert "登录" in text and "用户名或密码错误" in text and "未登录者" in text
    assert "账号 " in text and "本分钟首次" in text


def test_failed_login_entries_name_the_client_network_and_a_keyed_tag_never_the_address(
        app: Any, client: TestClient, demo: Engine) -> None:
    """An IP address is personal data: the leaf keeps its /24 (/48 for IPv6) and a keyed tag
    that tells two addresses apart; each network is tallied apart."""
    c = TestClient(app, base_url="http://testserver", client=("203.0.113.66", 40000))
    assert try_login(c, "teller1", "wrong-password-1") == 401
    (first,) = entries(demo, "security.login")
    assert first["client"]["net"] == "203.0.113.0/24" and len(first["client"]["tag"]) == 12
    assert "203.0.113.66" not in canonical_json(first).decode()
    at = utcnow().replace(second=1) + timedelta(minutes=5)  # one minute of its own
    key = app.state.pseudonym_key
    for address in ("198.51.100.7", "198.51.100.8", "2001:db8:1234:5678::9"):
        refusals_module.record_login_failure(demo, None, "bad_credentials", username="bot", key=key, at=at,
                                             address=address)
    later = entries(demo, "security.login")[1:]
    assert [e["client"]["net"] for e in later] == ["198.51.100.0/24", "2001:db8:1234::/48"]
    assert later[0]["client"]["tag"] != refusals_module.client_fields(key, "198.51.100.8")["tag"]
