"""Faults a new user found after issue 8 landed, fixed as kinds (issue 8, sections 2 and 4):

* a value longer than its column: PostgreSQL answered 500 (StringDataRightTruncation) and
  the form was lost, SQLite stored 100,000 characters — now one 422 on both, input kept;
* ``%`` and ``_`` typed into a search matched everything (LIKE wildcards not escaped);
* the compact case number split inside the matter code once the daily serial passed 9,999;
* the auditor UI showed codes (``booking.create``, ``booked``, ``device``) instead of names.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import text
from sqlmodel import Session, SQLModel
from starlette.testclient import TestClient

from outlet.errors import InvalidInput
from outlet.models import Applicant
from tests.conftest import login
from tests.outlet.conftest import PERSON_ID, World
from web.db import make_engine
from web.routes.audit_views import Names, entry_row
from web.templating import case_no_parts


def _applicant(name: str) -> Applicant:
    return Applicant(kind="person", name=name, id_number=PERSON_ID, pseudonym="p" * 64)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_value_longer_than_its_column_is_refused_before_the_database(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import new_pg_database

    url = new_pg_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'x.db'}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    limit = Applicant.__table__.c.name.type.length  # type: ignore[attr-defined]
    with Session(engine) as s, s.begin():
        s.add(_applicant("王" * limit))  # at the limit: stored
    with pytest.raises(InvalidInput, match=f"最多 {limit} 个字符"), Session(engine) as s, s.begin():
        s.add(_applicant("王" * (limit + 1)))
    with Session(engine) as s:  # an update is checked too
        row = s.exec(text("SELECT id FROM applicant")).one()  # type: ignore[call-overload]
        a = s.get(Applicant, row[0])
        assert a is not None
        a.name = "李" * (limit + 1)
        with pytest.raises(InvalidInput):
            s.commit()
    with Session(engine) as s:
        assert s.exec(text("SELECT count(*) FROM applicant")).one()[0] == 1  # type: ignore[call-overload]
    engine.dispose()


@pytest.mark.parametrize(("field", "limit"), [("applicant_name", 120), ("agent_name", 64),
                                              ("legal_representative", 64)])
def test_over_long_names_on_the_new_case_form_keep_the_input(world: World, client: TestClient,
                                                             field: str, limit: int) -> None:
    login(client, "teller.a")
    data = {"matter_id": str(world.committed.id), "applicant_kind": "enterprise" if field ==
            "legal_representative" else "person", "applicant_name": "张三", "id_number": PERSON_ID,
            "legal_representative": "李四", "service_mode": "收件受理"}
    if field == "agent_name":
        data["agent_id_number"] = PERSON_ID
    if field == "legal_representative":
        data["id_number"] = "91350100M000100Y43"  # GB 32100-2015 sample code
    data[field] = "王" * (limit + 1)
    r = client.post("/cases/new", data=data, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    page = BeautifulSoup(r.text, "html.parser")
    box = page.select_one(f"#f-{field}")
    assert box is not None and box["value"] == "王" * (limit + 1)  # nothing typed is lost
    assert box["maxlength"] == str(limit)
    assert f"最多 {limit} 个字" in page.select_one(f"#err-{field}").get_text()


def test_wildcards_typed_into_the_matter_search_match_only_themselves(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    for q in ("%", "_", "%%"):
        page = BeautifulSoup(client.get("/cases/new", params={"q": q}).text, "html.parser")
        assert page.select("#matter-results tr[data-matter]") == [], q


def test_compact_case_number_splits_at_the_day_for_every_serial_width() -> None:
    for code in ("1" * 30, "1" * 31, "2" * 33, "11370200MB2856000100011170000"):
        for serial in ("0001", "9999", "10000", "999999"):
            number = f"{code}20261208{serial}"
            assert case_no_parts(number) == (code, f"20261208{serial}"), number
    assert case_no_parts("not-a-case-number") == ("not-a-case-number", "")


def test_every_entry_of_the_demo_log_reads_in_chinese(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Actions, actor roles and state changes of every family in the log that `make run`
    seeds (cases, queue, bookings, ratings, services, visits, devices) have Chinese names."""
    from click.testing import CliRunner

    from web.cli import main

    monkeypatch.setenv("SERVICEPOINT_DATA", str(tmp_path / "var"))
    monkeypatch.delenv("SERVICEPOINT_DATABASE_URL", raising=False)
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 0, r.output
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'servicepoint.db'}")
    from audit import search_entries

    families = set()
    with Session(engine) as s:
        page = search_entries(s, limit=2000, newest_first=False)
        assert len(page.entries) > 300
        names = Names.load(s, [v.entry for v in page.entries])
        for view in page.entries:
            row = entry_row(view, names, 0)
            where = (row["action"], row["state_from"], row["state_to"], row["role"])
            assert row["action_label"] != row["action"], where
            assert row["role_label"] != row["role"], where
            for code, label in ((row["state_from"], row["state_from_label"]), (row["state_to"], row["state_to_label"])):
                if code and ":" not in code and "/" not in code:
                    assert label != code, where
            families.add(row["action"].split(".")[0])
    assert {"case", "ticket", "booking", "rating", "service", "visit", "device", "queue"} <= families
    engine.dispose()


@pytest.mark.parametrize(("number", "label"), [
    ("810000199003071237", "港澳居民居住证（香港）"),   # 《港澳台居民居住证申领发放办法》: area code 810000
    (PERSON_ID, "居民身份证"),                         # GB 11643-1999
])
def test_the_checklist_names_the_identity_document_the_applicant_shows(world: World, number: str,
                                                                       label: str) -> None:
    case = world.new_case(id_number=number)
    names = [m.name for m in world.materials(case.number).values()]
    assert label in names, names
    if label != "居民身份证":
        assert "居民身份证" not in names
