"""SQL statements per request for the teller's busiest pages, counted on the real engine
(SQLAlchemy ``before_cursor_execute``): a change that brings back N+1 queries fails here.
Budgets are what the page needs, not what it happens to run today."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from audit.db import reader_of
from outlet.demo import seed_demo_cases
from tests.conftest import csrf_from, login
from web.app import create_app
from web.settings import Settings


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """Statements run through ``engine`` and its read-only twin (``audit.db.reader_of``)."""
    seen: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    engines = {engine, reader_of(engine)}
    for eng in engines:
        event.listen(eng, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        for eng in engines:
            event.remove(eng, "before_cursor_execute", on_execute)


def _reads(stmts: list[str]) -> list[str]:
    return [s for s in stmts if s.lstrip().upper().startswith("SELECT")]


def test_teller_pages_run_a_bounded_number_of_queries(demo, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    quiet = Settings(**{**settings.__dict__, "checkpoint_interval": 3600.0})  # no background signing
    with TestClient(create_app(quiet)) as client:
        login(client, "teller1")
        engine = client.app.state.engine  # type: ignore[attr-defined]  # the app's own engine
        _measure(client, engine)


def _measure(client: TestClient, engine: Engine) -> None:
    client.get("/cases/")  # warm: caches that rarely change (catalog, calendar) are filled once
    with counted(engine) as home:
        page = client.get("/cases/")
    assert page.status_code == 200
    number = re.search(r'href="/cases/([0-9A-Z-]{10,})"', page.text)
    assert number, "the demo teller has cases"
    client.get(f"/cases/{number.group(1)}")
    with counted(engine) as case_page:
        r = client.get(f"/cases/{number.group(1)}")
    assert r.status_code == 200

    new = client.get("/cases/new")
    matter = re.search(r'matter_id=(\d+)', new.text)
    assert matter
    form = {"matter_id": matter.group(1), "applicant_kind": "person", "applicant_name": "张三",
            "id_number": "11010519491231002X", "phone": "13800138000",
            "csrf_token": csrf_from(new.text)}
    client.post("/cases/new", data=form, follow_redirects=False)  # warm
    with counted(engine) as create:
        r = client.post("/cases/new", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    print(f"\nSQL statements: teller home {len(home)} ({len(_reads(home))} reads), case page "
          f"{len(case_page)} ({len(_reads(case_page))} reads), case creation {len(create)} "
          f"({len(_reads(create))} reads)")
    assert len(home) <= HOME_BUDGET, home
    with counted(engine) as home_again:  # one more case on the page: not one more query
        client.get("/cases/")
    assert len(home_again) == len(home), home_again
    writes: list[str] = []  # pages only read: nothing on the writer (session touched < 60 s ago)
    listener = lambda *args: writes.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get("/cases/")
        client.get(f"/cases/{number.group(1)}")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert writes == []
    assert len(case_page) <= CASE_BUDGET, case_page
    assert len(create) <= CREATE_BUDGET, create


# the session lookup (with the reference-data version), the three lists in one statement;
# outlet, calendar and AB角 cover come from the reference-data cache (partners/refdata.py)
HOME_BUDGET = 2
# the session lookup, the case joined with matter, version, outlet and applicant,
# materials, files, notices, events (calendar and cover cached)
CASE_BUDGET = 6
# user, catalog and grant lookups (9 reads), applicant, serial, case, event, materials
# (one INSERT each), the audit entry, and the day's figures row (outlet/figures/daily.py: one
# insert-or-update in the same transaction)
CREATE_BUDGET = 20
