"""The authorization matrix, generated from the route table: every route × every role.

:data:`RULES` says who may reach each route (keyed ``"METHODS path"`` as Starlette mounts
it). A route added without a rule here fails :func:`test_every_route_has_a_rule`, so a new
page cannot ship unguarded by accident — add its line (roles as letters, below) when you
add a route. The live tests then request every route as every role's demo user and check
the answer: a role outside the rule gets 403 (or the login page for anonymous), a role
inside never does; own/other outlet is checked on the case routes.

Letters: T teller, B block_agent, L outlet_lead, E expert, R reviewer, A admin,
S security_admin, U auditor, P partner_manager (合作方管理员). ``PUBLIC``: no login (applicant pages, login, health, static);
``LOGIN``: any logged-in user, checked inside the endpoint (own password, session ping,
call WebSockets check the participant).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient

from outlet.demo import seed_demo_cases
from outlet.models import Case
from partners.models import Staff
from tests.conftest import login
from web.app import create_app
from web.settings import Settings

PUBLIC = "public"
LOGIN = "login"
LETTERS = {"T": "teller", "B": "block_agent", "L": "outlet_lead", "E": "expert", "R": "reviewer",
           "A": "admin", "S": "security_admin", "U": "auditor", "P": "partner_manager"}
USERS = {"teller": "teller1", "block_agent": "agent1", "outlet_lead": "lead1", "expert": "expert1",
         "reviewer": "reviewer1", "admin": "admin", "security_admin": "secadmin", "auditor": "auditor",
         "partner_manager": "partner1"}

RULES: dict[str, str] = {
    "GET /": LOGIN,
    "GET,POST /login": PUBLIC,
    "POST /logout": LOGIN,
    "POST /session/ping": LOGIN,
    "GET,POST /account/password": LOGIN,
    "GET /healthz": PUBLIC,
    "GET /favicon.ico": PUBLIC,
    "MOUNT /static": PUBLIC,
    "GET /cases/": "TBL",
    "GET /cases/new": "TBL",
    "POST /cases/new": "TBL",
    "GET /cases/{number}": "TBL",
    "POST /cases/{number}/actions/{action}": "TBL",
    "POST /cases/{number}/materials/{key}": "TBL",
    "POST /cases/{number}/materials/{key}/upload": "TBL",
    "GET /cases/{number}/notices/{notice}": "TBL",
    "GET /cases/{number}/files/{file_id:id}": "TBL",
    "POST /cases/{number}/reveal": "TBL",
    "GET /review/": "R",
    "GET /review/{number}": "R",
    "POST /review/{number}/actions/{action}": "R",
    "GET /review/{number}/notices/{notice}": "R",
    "GET /review/{number}/files/{file_id:id}": "R",
    "POST /review/{number}/reveal": "R",
    "GET /status/": PUBLIC,
    "GET,POST /status/{number}": PUBLIC,
    "GET /admin/": "A",
    "GET /admin/partners": "A",
    "GET,POST /admin/partners/new": "A",
    "GET,POST /admin/partners/{id:id}": "A",
    "GET /admin/agreements": "A",
    "GET,POST /admin/agreements/new": "A",
    "GET,POST /admin/agreements/{id:id}": "A",
    "GET /admin/outlets": "A",
    "GET,POST /admin/outlets/new": "A",
    "GET,POST /admin/outlets/{id:id}": "A",
    "GET /admin/staff": "S",
    "GET,POST /admin/staff/new": "S",
    "GET,POST /admin/staff/{id:id}": "S",
    "POST /admin/staff/{id:id}/password": "S",
    "POST /admin/staff/{id:id}/pending/decide": "S",
    "POST /admin/staff/{id:id}/pending/cancel": "S",
    "POST /admin/staff/{id:id}/sessions/end": "S",
    "POST /admin/staff/{id:id}/backups": "S",
    "POST /admin/backups/{id:id}/end": "S",
    "GET /admin/catalog": "A",
    "GET,POST /admin/catalog/new": "A",
    "GET /admin/catalog/{id:id}": "A",
    "GET /admin/catalog/{id:id}/v/{version:id}": "A",
    "GET,POST /admin/catalog/{id:id}/edit": "A",
    "POST /admin/catalog/{id:id}/active": "A",
    "GET /admin/grants": "A",
    "GET,POST /admin/grants/new": "A",
    "GET /admin/grants/{id:id}": "A",
    "POST /admin/grants/{id:id}/revoke": "A",
    "GET /admin/calendar": "A",
    "POST /admin/calendar/add": "A",
    "POST /admin/calendar/bulk": "A",
    "POST /admin/calendar/delete": "A",
    "GET,POST /admin/queue": "A",
    "GET /assist/": "TBLE",
    "GET /assist/new": "TBL",
    "POST /assist/requests": "TBL",
    "GET /assist/requests/{rid:id}": "TBLE",
    "POST /assist/requests/{rid:id}/cancel": "TBL",
    "POST /assist/requests/{rid:id}/callback": "TBL",
    "POST /assist/requests/{rid:id}/accept": "E",
    "GET /assist/sessions/{sid:id}": "TBLE",
    "GET /assist/cases/{case_id:id}": "TBLERU",
    "WS /assist/sessions/{sid:id}/ws": LOGIN,
    "WS /assist/events": LOGIN,
    "GET /assist/sessions/{sid:id}/ice": "TBLE",
    "POST /assist/sessions/{sid:id}/recorder": "TBLE",
    "POST /assist/sessions/{sid:id}/hangup": "TBLE",
    "POST /assist/sessions/{sid:id}/stats": "TBLE",
    "GET /assist/sessions/{sid:id}/files/{fid:id}": "TBLE",
    "GET /assist/snapshots/{snap_id:id}": "TBLERU",
    "POST /assist/sessions/{sid:id}/consent": "TBLE",
    "POST /assist/sessions/{sid:id}/materials/{mid:id}": "E",
    "POST /assist/sessions/{sid:id}/snapshots": "E",
    "POST /assist/sessions/{sid:id}/points/{idx:id}": "E",
    "POST /assist/sessions/{sid:id}/conclude": "E",
    "GET /audit/": "U",
    "GET /audit/keys": PUBLIC,
    "GET /audit/entries/{index:index}": "U",
    "GET /audit/entries/{index:index}/proof": "U",
    "POST /audit/entries/{index:index}/verify": "U",
    "GET /audit/checkpoints": "U",
    "GET,POST /audit/exports": "U",
    "GET /audit/exports/{job}": "U",
    "GET /audit/exports/{job}/status": "U",
    "GET /audit/exports/{job}/download/{fmt}": "U",
    "GET,POST /audit/stats": "U",
    "GET /audit/stats/{job}": "U",
    "GET /audit/stats/{job}/status": "U",
    "GET,POST /devices/": "L",
    "POST /devices/{device_id:id}/revoke": "L",
    "GET /devices/activate/{token}": PUBLIC,
    "GET /devices/paired": PUBLIC,
    "GET /ratings/": "TBLE",
    "GET /ratings/due": "L",
    "GET /ratings/orders/{order_id:id}": "TBLRA",
    "POST /ratings/orders/{order_id:id}/{step}": "LR",
    "GET,POST /ratings/{rating_id:id}/appeal": "TBLE",
    "GET,POST /ratings/assist/{session_id:id}": "TBL",
    "GET /ratings/center/": "RA",
    "POST /ratings/center/appeals/{appeal_id:id}": "RA",
    "GET /ratings/center/appeals/{appeal_id:id}/evidence": "RA",
    "GET,POST /ratings/center/settings": "A",
    "GET,POST /rate/pad": PUBLIC,
    "WS /rate/pad/live": PUBLIC,
    "POST /ratings/pad/link": "TBL",
    "POST /ratings/pad/unlink": "TBL",
    "GET,POST /rate/{number}": PUBLIC,
    "GET /cases/outlet": "L",
    "POST /cases/new/attempt": "TBL",
    "POST /cases/search": "TBL",
    "GET /services/": "TBL",
    "POST /services/new": "TBL",
    "GET /services/figures": "TBLEAP",
    "GET /services/{number}": "TBL",
    "POST /services/{number}/actions/{action}": "TBL",
    "GET /services/{number}/forms/{form}": "TBL",
    "GET /services/promise/{number}": "TBLR",
    "POST /services/promise/{number}/sign": "TBL",
    "POST /services/promise/{number}/check": "R",
    "POST /services/promise/{number}/revoke": "R",
    "GET /services/visits/sw.js": PUBLIC,
    "GET /services/visits/": "TBLA",
    "POST /services/visits/new": "TBLA",
    "GET /services/visits/today": "TBL",
    "GET /services/visits/{number}": "TBLA",
    "POST /services/visits/{number}/submit": "TBL",
    "POST /services/visits/{number}/assign": "TBLA",  # visit.assign: authorize lets lead and center
    # the queue: counter panel and lead settings (staff); kiosk, hall display (device token),
    # the ticket's QR pages and the booking pages (applicants) need no login
    "GET /queue/": "TBL",
    "POST /queue/sign-in": "TBL",
    "POST /queue/sign-out": "TBL",
    "POST /queue/act/{step}": "TBL",
    "GET /queue/manage": "L",
    "POST /queue/manage/lines": "L",
    "POST /queue/manage/counters": "L",
    "POST /queue/manage/defaults": "L",
    "POST /queue/manage/blocks/{block_id:id}/lift": "L",
    "WS /queue/live": LOGIN,
    "GET /queue/kiosk": PUBLIC,
    "POST /queue/kiosk/ticket": PUBLIC,
    "GET,POST /queue/kiosk/checkin": PUBLIC,
    "GET,POST /queue/kiosk/status": PUBLIC,
    "GET,POST /queue/kiosk/print": PUBLIC,
    "GET /queue/kiosk/rate": PUBLIC,
    "GET /queue/display": PUBLIC,
    "WS /queue/display/live": PUBLIC,
    "GET /queue/t/{code}": PUBLIC,
    "GET /queue/t/{code}/print": PUBLIC,
    "WS /queue/t/{code}/live": PUBLIC,
    "GET /queue/book": PUBLIC,
    "GET,POST /queue/book/cancel": PUBLIC,
    "GET,POST /queue/book/{outlet_id:id}": PUBLIC,
    # 服务统计 (issue 13): each role sees its own scope, checked inside (figure_view)
    "GET /figures/": "TBLEAP",
    "GET /figures/export.xlsx": "TBLEAP",
    "GET /figures/export.csv": "TBLEAP",
    "GET /figures/report": "TBLEAP",
    "GET /figures/rows/{kind}": "TBLEAP",
    "GET /reports/summary.csv": "A",
}


def routes_of(app: Any) -> dict[str, Any]:
    """``"METHODS path"`` → endpoint (None for a mounted app such as /static)."""
    found: dict[str, Any] = {}

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount):
                if r.routes:
                    walk(r.routes, prefix + r.path)
                else:
                    found[f"MOUNT {prefix + r.path}"] = None
            elif isinstance(r, WebSocketRoute):
                found[f"WS {prefix + r.path}"] = r.endpoint
            elif isinstance(r, Route):
                methods = ",".join(sorted((r.methods or set()) - {"HEAD"}))
                found[f"{methods} {prefix + r.path}"] = r.endpoint

    walk(app.routes, "")
    return found


def allowed(rule: str) -> frozenset[str]:
    return frozenset(LETTERS[c] for c in rule) if rule not in (PUBLIC, LOGIN) else frozenset()


@pytest.fixture
def routes(settings: Settings, engine: Engine) -> dict[str, Any]:
    return routes_of(create_app(settings))


def test_every_route_has_a_rule(routes: dict[str, Any]) -> None:
    assert sorted(set(routes) - set(RULES)) == [], "routes without a rule: add them to RULES"
    assert sorted(set(RULES) - set(routes)) == [], "rules for routes that no longer exist"


def test_guards_match_the_rules(routes: dict[str, Any]) -> None:
    for key, endpoint in routes.items():
        declared = getattr(endpoint, "required_roles", None)
        rule = RULES[key]
        if rule in (PUBLIC, LOGIN):
            assert declared is None, f"{key}: guarded by {sorted(declared or [])} but ruled {rule}"
        else:
            assert declared == allowed(rule), f"{key}: guard {sorted(declared or [])} ≠ rule {rule}"


def _concrete(path: str) -> str:
    """A path with made-up ids: the guard must answer before any record is looked up."""
    return re.sub(r"\{(\w+)(:id|:index)?\}", lambda m: "999999" if m.group(2) else "X999", path)


ROLE_ROUTES = [k for k, v in RULES.items() if v not in (PUBLIC, LOGIN)]


@pytest.mark.parametrize("role", sorted(USERS))
def test_every_guarded_route_answers_each_role_by_the_rule(
    role: str, client: TestClient, demo: Engine
) -> None:
    login(client, USERS[role])
    for key in ROLE_ROUTES:
        methods, path = key.split(" ", 1)
        url = _concrete(path)
        inside = role in allowed(RULES[key])
        for method in methods.split(","):
            if method == "POST" and inside:
                continue  # a POST by an allowed role would act; its guard is the same
            response = client.request(method, url, follow_redirects=False)
            if inside:
                assert response.status_code not in (401, 403), f"{role} {method} {url}: {response.status_code}"
                assert "/login" not in response.headers.get("location", ""), f"{role} {method} {url}"
            else:
                assert response.status_code == 403, f"{role} {method} {url}: {response.status_code}"


def test_anonymous_gets_the_login_page_for_every_guarded_route(client: TestClient, demo: Engine) -> None:
    for key in ROLE_ROUTES:
        methods, path = key.split(" ", 1)
        if "GET" in methods.split(","):
            response = client.get(_concrete(path), follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), key


@pytest.mark.parametrize(("username", "own"), [("teller1", True), ("lead1", True), ("teller2", False),
                                              ("agent1", False)])
def test_outlet_roles_see_their_own_outlets_cases_only(
    username: str, own: bool, client: TestClient, demo: Engine, settings: Settings
) -> None:
    seed_demo_cases(demo, settings.pseudonym_key())  # all at teller1's outlet
    with Session(demo) as s:
        outlet = s.exec(select(Staff.outlet_id).where(Staff.username == "teller1")).one()
        number = s.exec(select(Case.number).where(Case.outlet_id == outlet)).first()
    login(client, username)
    assert client.get(f"/cases/{number}").status_code == (200 if own else 404)
    if not own:
        assert client.post(f"/cases/{number}/reveal").status_code == 404
