"""The reference-data cache (partners/refdata.py): pages read the calendar, outlets and AB角
cover from a per-process cache, and any change of them is in force from the very next
request in every process. Two app instances on one database stand for two processes: each
has its own cache and learns of the other's writes only through the database."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet.clock import local_day
from outlet.demo import seed_demo_cases
from outlet.models import HolidayOverride
from partners import refdata
from partners.accounts import add_backup, end_backup
from partners.models import Staff, utcnow
from tests.conftest import login
from web.app import create_app
from web.settings import Settings


def _version(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.execute(select(refdata.version_column())).scalar_one())


def _staff_id(engine: Engine, username: str) -> int:
    with Session(engine) as s:
        staff = s.exec(select(Staff).where(Staff.username == username)).one()
        assert staff.id is not None
        return staff.id


def test_refdata_ended_cover_is_refused_on_the_next_request_of_another_process(
    demo: Engine, settings: Settings
) -> None:
    seed_demo_cases(demo, settings.pseudonym_key())
    holder, backup = _staff_id(demo, "teller1"), _staff_id(demo, "teller2")
    today = local_day(utcnow())
    with Session(demo) as s, s.begin():
        assignment_id = add_backup(s, holder_id=holder, backup_id=backup, valid_from=today).id
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as other:
        login(one, "teller1")
        number = re.search(r'href="/cases/([0-9A-Z-]{10,})"', one.get("/cases/").text)
        assert number
        case_url = f"/cases/{number.group(1)}"
        login(other, "teller2")  # teller2 covers teller1's outlet (AB角) …
        assert other.get(case_url).status_code == 200
        assert other.get(case_url).status_code == 200  # … served from the cached cover
        cache: refdata.RefCache = other.app.state.refdata  # type: ignore[attr-defined]
        assert cache.get(cache.version, ("cover", backup, today), lambda: None) == {holder_outlet(demo, holder)}

        with Session(demo) as s, s.begin():  # the security admin ends the cover (any process)
            end_backup(s, assignment_id, today - timedelta(days=1))
        assert other.get(case_url).status_code == 404  # the very next request
        assert one.get(case_url).status_code == 200  # the holder keeps their own outlet


def holder_outlet(engine: Engine, staff_id: int) -> int:
    with Session(engine) as s:
        staff = s.get(Staff, staff_id)
        assert staff is not None and staff.outlet_id is not None
        return staff.outlet_id


def test_refdata_every_watched_change_bumps_the_version_in_its_transaction(demo: Engine) -> None:
    before = _version(demo)
    with Session(demo) as s, s.begin():  # a calendar change (outlet/workdays.py watches it)
        s.add(HolidayOverride(day=local_day(utcnow()) + timedelta(days=400), is_workday=False))
    assert _version(demo) == before + 1
    with Session(demo) as s:  # rolled back: no bump either
        with s.begin():
            staff = s.exec(select(Staff).where(Staff.username == "teller1")).one()
            staff.display_name = "改名"
            s.flush()  # bumped inside the transaction …
            s.rollback()  # … and undone with it
    assert _version(demo) == before + 1
    with Session(demo) as s, s.begin():  # reading or touching without a change: no bump
        staff = s.exec(select(Staff).where(Staff.username == "teller1")).one()
        staff.display_name = staff.display_name
    assert _version(demo) == before + 1


def test_refdata_a_request_that_saw_an_older_version_neither_reads_nor_keeps_entries() -> None:
    cache = refdata.RefCache()
    cache.observe(3)
    assert cache.get(3, "k", lambda: "v3") == "v3"
    assert cache.get(3, "k", lambda: "fresh") == "v3"  # cached
    assert cache.get(2, "k", lambda: "old") == "old"  # an older request loads for itself …
    cache.observe(4)
    assert cache.get(3, "k", lambda: "late") == "late"  # … and a late one stores nothing
    assert cache.get(4, "k", lambda: "v4") == "v4"
    assert refdata.cached("k", lambda: "no request") == "no request"  # outside a request


def _whoami(client: TestClient) -> str:
    page = client.get("/cases/", follow_redirects=False)
    if page.status_code != 200:
        return f"HTTP {page.status_code} {page.headers.get('location', '')}"
    shown = BeautifulSoup(page.text, "html.parser").select_one(".whoami span")
    assert shown is not None
    return shown.get_text()


def _change_teller1(engine: Engine, **values: object) -> None:
    """A direct ORM change of the staff row (as an admin page or the CLI of any process
    makes it), without ending the user's sessions."""
    with Session(engine) as s, s.begin():
        staff = s.exec(select(Staff).where(Staff.username == "teller1")).one()
        for name, value in values.items():
            setattr(staff, name, value)


def test_refdata_staff_row_of_the_session_is_cached_and_a_change_shows_on_the_next_request(
    demo: Engine, settings: Settings
) -> None:
    with TestClient(create_app(settings)) as client:
        login(client, "teller1")
        assert _whoami(client).startswith("张")  # the demo teller's name, now cached
        cache: refdata.RefCache = client.app.state.refdata  # type: ignore[attr-defined]
        cached = cache.get(cache.version, ("staff", _staff_id(demo, "teller1")), lambda: None)
        assert cached is not None and cached.username == "teller1"

        _change_teller1(demo, display_name="李四改名")
        assert _whoami(client).startswith("李四改名（")  # the very next request
        _change_teller1(demo, active=False)  # deactivated without ending its sessions
        assert _whoami(client) == "HTTP 303 /login?next=/cases/"


def test_refdata_staff_row_without_the_version_bump_would_stay_stale(
    demo: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin of the test above: it is the version bump, not a fresh read, that makes the
    change visible — so the staff row really is served from the cache."""
    with TestClient(create_app(settings)) as client:
        login(client, "teller1")
        before = _whoami(client)
        monkeypatch.setattr(refdata, "bump", lambda session: None)
        _change_teller1(demo, display_name="李四改名")
        assert _whoami(client) == before
