"""Refused requests of logged-in staff are audited: another outlet's case (404), a page the
role lacks (403) — the first of each actor × route × minute at once, naming the case or id
asked for, then the minute's exact total."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from audit import search_entries
from outlet.demo import seed_demo_cases
from outlet.models import Case
from partners.models import Outlet, Staff, utcnow
from tests.conftest import login
from web import refusals as refusals_module

NOW = (utcnow() + timedelta(days=1)).replace(second=30, microsecond=0)  # one minute, never flushed early


@pytest.fixture(autouse=True)
def fixed_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refusal of a test falls in one minute (a burst may not straddle two), one the
    app's own periodic flush does not reach; the tests flush it themselves."""
    monkeypatch.setattr(refusals_module, "utcnow", lambda: NOW)


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


def test_another_outlets_case_is_a_refusal_entry_naming_the_case_then_a_total(
        client: TestClient, demo: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    number = foreign_case(demo, "teller2")
    login(client, "teller2")
    for _ in range(12):  # a user guessing at one route
        assert client.get(f"/cases/{number}").status_code == 404
    (first,) = refusals(demo)  # one entry at once, naming what was asked for
    assert first["state"] == {"from": "GET:/cases/:number", "to": "count:1"}
    assert first["case"] == number
    assert first["outcome"] == {"result": "refused", "reason": "not_found"}
    # the minute's exact total, once the minute is over (the periodic job)
    assert refusals_module.flush(demo, at=NOW + timedelta(minutes=1)) == 1
    assert [e["state"] for e in refusals(demo)] == [
        {"from": "GET:/cases/:number", "to": "count:1"}, {"from": "GET:/cases/:number", "to": "total:12"}]
    assert refusals_module.flush(demo, at=NOW + timedelta(minutes=1)) == 0  # written once
    # an action on it is a separate route: its own entry at once
    client.post(f"/cases/{number}/actions/accept")
    last = refusals(demo)[-1]
    assert last["state"] == {"from": "POST:/cases/:number/actions/:action", "to": "count:1"}
    assert last["case"] == number


def test_a_single_refusal_has_no_total_entry(client: TestClient, demo: Engine) -> None:
    login(client, "teller1")
    assert client.get("/admin/grants").status_code == 403
    assert refusals_module.flush(demo, at=NOW + timedelta(minutes=1)) == 0
    assert len(refusals(demo)) == 1


def test_refused_ids_are_named_but_never_free_text_from_the_url(client: TestClient, demo: Engine) -> None:
    """Numeric ids are filled in; anything else typed into a path (here a resident ID number
    where a case number belongs) stays a placeholder, so no personal data reaches the log."""
    login(client, "teller1")
    with Session(demo) as s:
        auditor = s.exec(select(Staff.id).where(Staff.username == "auditor")).one()
    assert client.get(f"/admin/staff/{auditor}").status_code == 403
    assert client.get("/cases/370211195804120021").status_code == 404
    staff_entry, guessed = refusals(demo)
    assert staff_entry["state"]["from"] == f"GET:/admin/staff/{auditor}"
    assert guessed["state"]["from"] == "GET:/cases/:number" and guessed["case"] is None
    assert "370211195804120021" not in str(guessed)


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


def test_the_auditor_filters_refused_access_and_reads_it_in_chinese(client: TestClient, demo: Engine) -> None:
    from bs4 import BeautifulSoup

    login(client, "teller1")
    for _ in range(3):
        assert client.get("/admin/grants").status_code == 403
    refusals_module.flush(demo, at=NOW + timedelta(minutes=1))
    login(client, "auditor")
    page = BeautifulSoup(client.get("/audit/").text, "html.parser")
    link = page.select_one("#filter-refused-access")
    assert link is not None and link["href"] == "/audit/?action=access.refused"
    assert page.select_one('#audit-actions option[value="access.refused"]').text == "越权访问被拒绝"  # type: ignore[union-attr]
    rows = BeautifulSoup(client.get(str(link["href"])).text, "html.parser").select("#audit-table tbody tr")
    assert len(rows) == 2 and all("refused" in r["class"] for r in rows)
    total, first = (r.get_text(" ", strip=True) for r in rows)  # newest first
    assert "越权访问被拒绝" in first and "请求 GET /admin/grants" in first and "本分钟首次" in first
    assert "岗位无权访问该页面或操作" in first
    assert "本分钟共 3 次" in total


def test_a_csrf_refusal_names_the_route_like_other_refusals(client: TestClient, demo: Engine) -> None:
    """The CSRF middleware answers before routing; its refusal still names the route
    template with the ids filled in, never ``POST:unmatched``."""
    login(client, "secadmin")
    with Session(demo) as s:
        teller = s.exec(select(Staff.id).where(Staff.username == "teller1")).one()
    forged = client.post(f"/admin/staff/{teller}/sessions/end", headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert client.post("/cases/", headers={"X-CSRF-Token": "forged"}).status_code == 403  # a GET-only route
    assert [e["state"]["from"] for e in refusals(demo)] == [f"POST:/admin/staff/{teller}/sessions/end", "POST:/cases/"]


def test_a_refused_delegated_action_is_one_entry_not_two(client: TestClient, demo: Engine) -> None:
    """A refusal raised inside a delegated action has its own entry (action, reason, state);
    the error page must not add an ``access.refused`` entry for the same refusal."""
    from starlette.requests import Request
    from starlette.routing import Route

    from partners.delegation import delegated_action
    from partners.errors import RoleLacksAction
    from web.auth import current_user

    async def refuse(request: Request) -> None:
        user = current_user(request)
        assert user is not None
        with delegated_action(request.app.state.engine, user, "security.sessions.end") as act:
            act.state = ("staff:1", None)
            raise RoleLacksAction()

    client.app.router.routes.append(Route("/_test/refuse", refuse, methods=["POST"]))  # type: ignore[attr-defined]
    login(client, "secadmin")
    assert client.post("/_test/refuse").status_code == 403
    with Session(demo) as s:
        page = search_entries(s, limit=500, newest_first=False)
        refused = [v.entry for v in page.entries if v.entry["outcome"]["result"] == "refused"]
    assert [(e["action"], e["outcome"]["reason"]) for e in refused] == [("security.sessions.end", "role_lacks_action")]


def test_a_refusal_under_a_mount_names_the_real_route_once(client: TestClient, demo: Engine) -> None:
    """A path value the convertor refuses ("²" for an id) matches no route of the mounted
    app: the entry still names that route's template (issue 10: "POST:/queue/queue")."""
    login(client, "lead2")
    assert client.post("/queue/manage/blocks/²/lift").status_code == 404
    assert client.post("/devices/²/revoke").status_code == 404
    assert [e["state"]["from"] for e in refusals(demo)] == [
        "POST:/queue/manage/blocks/:block_id/lift", "POST:/devices/:device_id/revoke"]
