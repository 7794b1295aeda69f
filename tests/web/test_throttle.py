"""Throttling of guessed secrets (web/throttle.py): growing delays per address, per target and
per pair; a stranger cannot lock a user out; existing and unknown accounts and case numbers
answer alike; X-Forwarded-For only from trusted proxies; counters live in the database."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from outlet.demo import seed_demo_cases
from outlet.models import Case
from partners.models import utcnow
from tests.conftest import csrf_from, login
from web import throttle
from web.app import create_app
from web.db import make_engine

STRANGER = ("203.0.113.66", 40000)
USER = ("198.51.100.7", 40001)


Browser = Callable[..., TestClient]


@pytest.fixture
def browser(app: Starlette, client: TestClient) -> Browser:
    """Clients of the same app from different addresses (``client`` ran the lifespan)."""
    def make(address: tuple[str, int] = USER) -> TestClient:
        return TestClient(app, base_url="http://testserver", client=address)
    return make


def try_login(c: TestClient, username: str, password: str) -> tuple[int, str]:
    token = csrf_from(c.get("/login").text)
    r = c.post("/login", data={"username": username, "password": password, "csrf_token": token},
               follow_redirects=False)
    error = BeautifulSoup(r.text, "html.parser").select_one("#login-error")
    return r.status_code, error.get_text() if error else ""


def test_rule_delays_grow_and_are_capped() -> None:
    rule = throttle.Rule(free=3, base=2, cap=60)
    assert [rule.delay(n) for n in range(1, 10)] == [0, 0, 0, 2, 4, 8, 16, 32, 60]


def test_a_stranger_cannot_lock_a_user_out(browser: Browser, demo: Engine) -> None:
    stranger = browser(STRANGER)
    answers = [try_login(stranger, "teller1", f"guess-{n:04d}-x") for n in range(25)]
    assert answers[0][0] == 401 and answers[-1][0] == 429  # the stranger is slowed down …
    assert "秒后再试" in answers[-1][1]
    status, _ = try_login(browser(USER), "teller1", "demo-12345")
    assert status == 303  # … the user, from their own address, is not


def test_existing_and_unknown_accounts_answer_alike(browser: Browser, demo: Engine) -> None:
    seen = {}
    for username in ("teller1", "nobody-here"):
        c = browser((f"192.0.2.{len(seen) + 1}", 1))
        seen[username] = [try_login(c, username, "wrong-password-1") for _ in range(8)]
    def shape(answers: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [(status, re.sub(r"\d+", "N", message)) for status, message in answers]

    # same statuses and messages, throttled alike (the seconds to wait depend on the clock)
    assert shape(seen["teller1"]) == shape(seen["nobody-here"])
    assert {s for s, _m in seen["teller1"]} == {401, 429}


def test_a_right_password_clears_the_targets_failures(browser: Browser, demo: Engine) -> None:
    c = browser()
    for _ in range(3):
        assert try_login(c, "teller1", "wrong-password-1")[0] == 401
    assert try_login(c, "teller1", "demo-12345")[0] == 303
    with Session(demo) as s:
        rows = s.exec(select(throttle.ThrottleCounter)).all()
    assert len(rows) == 1  # only the address keeps its count


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(settings, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    for trusted, expect_separate in (("", False), ("10.0.0.0/8", True)):
        app = create_app(dataclasses.replace(settings, trusted_proxies=trusted))
        with TestClient(app, base_url="http://testserver", client=("10.1.2.3", 1)) as proxy:
            for n in range(12):  # a scanner behind the proxy: many names, a forged header
                try_login_with(proxy, f"nobody{n}", f"198.18.0.{n}")
            proxy.headers["X-Forwarded-For"] = "198.18.1.1"
            status = try_login_with(proxy, "someone-else", "198.18.1.1")
        assert (status == 401) is expect_separate
        with Session(engine) as s, s.begin():
            for row in s.exec(select(throttle.ThrottleCounter)).all():
                s.delete(row)


def try_login_with(c: TestClient, username: str, forwarded: str) -> int:
    token = csrf_from(c.get("/login").text)
    return c.post("/login", data={"username": username, "password": "wrong-password-1", "csrf_token": token},
                  headers={"X-Forwarded-For": f"1.2.3.4, {forwarded}"}, follow_redirects=False).status_code


def test_status_page_throttles_real_and_unknown_numbers_alike(browser: Browser, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    with Session(demo) as s:
        case = s.exec(select(Case)).first()
        assert case is not None
    wrong = "000000" if case.check_code != "000000" else "111111"
    results = {}
    for i, number in enumerate((case.number, case.number[:-4] + "9999")):
        c = browser((f"192.0.2.{50 + i}", 1))
        token = csrf_from(c.get(f"/status/{number}").text)
        results[number] = [
            c.post(f"/status/{number}", data={"check_code": wrong, "csrf_token": token}).status_code
            for _ in range(8)
        ]
    real, unknown = results.values()
    assert real == unknown and real[0] == 404 and real[-1] == 429
    # the applicant, from their own phone, still gets in with the right code
    c = browser(USER)
    token = csrf_from(c.get(f"/status/{case.number}").text)
    ok = c.post(f"/status/{case.number}", data={"check_code": case.check_code, "csrf_token": token})
    assert ok.status_code == 200


def _engine_counts(engine: Engine) -> None:
    start = utcnow()
    for n in range(5):
        throttle.add_failure(engine, "login", "teller1", "192.0.2.9", at=start + timedelta(seconds=n))
    assert throttle.wait_seconds(engine, "login", "TELLER1 ", "192.0.2.9", at=start + timedelta(seconds=4)) == 4
    assert throttle.wait_seconds(engine, "login", "teller1", "192.0.2.9", at=start + timedelta(seconds=9)) == 0
    throttle.clear(engine, "login", "teller1", "192.0.2.9")
    assert throttle.wait_seconds(engine, "login", "teller1", "192.0.2.9", at=start) == 0


def test_counters_work_on_sqlite(engine: Engine) -> None:
    _engine_counts(engine)


@pytest.mark.postgres
def test_counters_work_on_postgres(pg_url: str) -> None:
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    try:
        _engine_counts(engine)
    finally:
        engine.dispose()


def test_login_helper_still_works(client: TestClient, demo: Engine) -> None:
    assert login(client, "teller1").get("/cases/").status_code == 200


def test_strangers_rotating_forwarded_addresses_never_keep_the_user_out(settings, engine: Engine, demo: Engine) -> None:  # type: ignore[no-untyped-def]
    """Behind a trusted proxy, wrong passwords for lead3 from ever new X-Forwarded-For
    addresses keep the target delay up; the user, right password from a clean address, gets
    in at once — while a guess from an address that already failed is still held back."""
    app = create_app(dataclasses.replace(settings, trusted_proxies="10.0.0.0/8"))
    with TestClient(app, base_url="http://testserver", client=("10.1.2.3", 1)) as proxy:
        def attempt(password: str, forwarded: str) -> int:
            token = csrf_from(proxy.get("/login", headers={"X-Forwarded-For": forwarded}).text)
            return proxy.post("/login", data={"username": "lead3", "password": password, "csrf_token": token},
                              headers={"X-Forwarded-For": forwarded}, follow_redirects=False).status_code

        answers = [attempt(f"guess-{n:04d}-x", f"203.1.0.{n + 1}") for n in range(30)]
        assert set(answers) == {401}  # each fresh address: one checked guess
        assert throttle.wait_seconds(engine, "login", "lead3", "203.1.0.1") > 0  # a failed address waits
        assert attempt("guess-again-x", "203.1.0.1") == 429
        assert attempt("demo-12345", "198.51.100.78") == 303  # the user, own clean address
