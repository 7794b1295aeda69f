"""Server-side sessions: a cookie replayed after logout or a reset is dead, the idle timeout
slides with activity, the absolute lifetime holds, and the login is not fixed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from partners import accounts, logins
from partners.models import Staff
from tests.conftest import login


def _replay(app: Starlette, cookie: str, csrf: str) -> TestClient:
    """A fresh client (another browser, an attacker) carrying a copied cookie."""
    c = TestClient(app, base_url="http://testserver")
    c.cookies.set("sp_session", cookie)
    c.headers["X-CSRF-Token"] = csrf
    return c


def _age(engine: Engine, username: str, *, idle: timedelta = timedelta(0), age: timedelta = timedelta(0)) -> None:
    """Move the user's sessions into the past (last activity ``idle`` ago, login ``age`` ago)."""
    with Session(engine) as s, s.begin():
        sid = s.exec(select(Staff.id).where(Staff.username == username)).one()
        for row in s.exec(select(logins.LoginSession).where(logins.LoginSession.staff_id == sid)).all():
            row.last_seen = row.last_seen - idle
            row.expires_at = row.expires_at - age
            s.add(row)


def test_cookie_replayed_after_logout_is_refused(client: TestClient, app: Starlette, demo: Engine) -> None:
    login(client, "teller1")
    cookie, csrf = client.cookies["sp_session"], client.headers["X-CSRF-Token"]
    assert _replay(app, cookie, csrf).get("/cases/").status_code == 200
    client.post("/logout")
    stolen = _replay(app, cookie, csrf)
    assert stolen.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")
    assert stolen.post("/cases/new", data={}, follow_redirects=False).status_code in (303, 403)
    with Session(demo) as s:
        assert s.exec(select(logins.LoginSession.ended_reason)).all() == ["logout"]


def test_cookie_replayed_after_password_reset_is_refused(client: TestClient, app: Starlette, demo: Engine) -> None:
    login(client, "teller1")
    cookie, csrf = client.cookies["sp_session"], client.headers["X-CSRF-Token"]
    with Session(demo, expire_on_commit=False) as s, s.begin():
        teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
        accounts.reset_password(s, teller, "reset-by-cli-1", actor=None)
    assert _replay(app, cookie, csrf).get("/cases/", follow_redirects=False).status_code == 303
    assert client.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")


def test_idle_timeout_slides_with_activity(client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    idle = settings.session_idle_minutes
    for _ in range(4):  # 4 × (idle − 2 min) of steady work: longer than one idle period in total
        _age(demo, "teller1", idle=timedelta(minutes=idle - 2))
        assert client.get("/cases/").status_code == 200
    _age(demo, "teller1", idle=timedelta(minutes=idle + 1))
    assert client.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")


def test_absolute_lifetime_ends_a_busy_session(client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    assert client.get("/cases/").status_code == 200
    _age(demo, "teller1", age=timedelta(hours=settings.session_max_hours))
    assert client.get("/cases/", follow_redirects=False).headers["location"].startswith("/login")


def test_last_seen_is_written_at_most_once_a_minute(client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    with Session(demo) as s:
        first = s.exec(select(logins.LoginSession.last_seen)).one()
    client.get("/cases/")
    with Session(demo) as s:
        assert s.exec(select(logins.LoginSession.last_seen)).one() == first  # no write
    _age(demo, "teller1", idle=timedelta(seconds=61))
    client.get("/cases/")
    with Session(demo) as s:
        assert s.exec(select(logins.LoginSession.last_seen)).one() >= first


def test_ping_counts_as_activity_and_reports_the_idle_time(client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    _age(demo, "teller1", idle=timedelta(seconds=30))
    response = client.post("/session/ping")
    assert response.status_code == 204
    assert int(response.headers["x-session-idle"]) >= settings.session_idle_minutes * 60 - 2
    client.post("/logout")
    assert client.post("/session/ping").status_code in (401, 403)


def test_login_issues_a_new_cookie_token(client: TestClient, demo: Engine) -> None:
    client.get("/login")
    before = client.cookies.get("sp_session")
    login(client, "teller1")
    assert client.cookies["sp_session"] != before
    with Session(demo) as s:  # the database keeps only the token's hash
        stored = s.exec(select(logins.LoginSession.id)).one()
        assert len(stored) == 64 and stored not in client.cookies["sp_session"]


def test_htmx_request_after_expiry_returns_to_the_page_not_the_endpoint(client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    with Session(demo) as s, s.begin():
        s.execute(update(logins.LoginSession).values(ended_at=col(logins.LoginSession.last_seen)))
    response = client.post("/cases/new", data={}, headers={
        "HX-Request": "true", "HX-Current-URL": "http://testserver/cases/new?matter=3"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/login?next=/cases/new%3Fmatter%3D3"
