"""Refused requests of logged-in staff are audited: another outlet's case (404), a page the
role lacks (403) — one entry per actor × route × minute, more only at 10, 100 … refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from audit import search_entries
from outlet.demo import seed_demo_cases
from outlet.models import Case
from partners.models import Outlet, Staff
from tests.conftest import login


def refusals(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as s:
        page = search_entries(s, action="access.refused", limit=500, newest_first=False)
        return [v.entry for v in page.entries]


def foreign_case(engine: Engine, username: str) -> str:
    """A case number of an outlet that is not ``username``'s."""
    with Session(engine) as s:
        outlet = s.exec(select(Staff.outlet_id).where(Staff.username == username)).one()
        number = s.exec(select(Case.number).where(Case.outlet_id != outlet)).first()
        assert number is not None and s.exec(select(Outlet)).first() is not None
        return number


def test_another_outlets_case_is_a_refusal_entry_rate_limited(client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    number = foreign_case(demo, "teller2")
    login(client, "teller2")
    for _ in range(12):  # a user guessing at one route
        assert client.get(f"/cases/{number}").status_code == 404
    entries = refusals(demo)
    assert [e["state"] for e in entries] == [
        {"from": "GET:/cases/:number", "to": "count:1"}, {"from": "GET:/cases/:number", "to": "count:10"}]
    assert entries[0]["outcome"] == {"result": "refused", "reason": "not_found"}
    assert number not in str(entries)  # the guessed id is not in the leaf
    # an action on it is a separate route: its own entry at once
    client.post(f"/cases/{number}/actions/accept")
    assert refusals(demo)[-1]["state"] == {"from": "POST:/cases/:number/actions/:action", "to": "count:1"}


def test_a_page_the_role_lacks_is_a_refusal_entry(client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    assert client.get("/admin/grants").status_code == 403
    (entry,) = refusals(demo)
    assert entry["outcome"]["reason"] == "forbidden" and entry["actor"]["role"] == "teller"
    assert entry["state"]["from"] == "GET:/admin/grants"


def test_anonymous_404s_are_not_audited(client: TestClient, demo: Engine) -> None:
    assert client.get("/cases/NOPE", follow_redirects=False).status_code == 303
    assert client.get("/no-such-page").status_code == 404
    assert refusals(demo) == []
