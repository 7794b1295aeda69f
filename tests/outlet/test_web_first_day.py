"""A teller's first day (issue 8 §4): the intake form's attributes, the primary action, the
printed notices, the case history's times, the holiday-schedule note, static niceties."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from bs4 import BeautifulSoup
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import decisions, intake
from outlet.models import Case, CaseEvent
from tests.conftest import login
from tests.outlet.conftest import AT, World
from web.templating import local_dt

HX = {"HX-Request": "true"}
CSS_DIR = Path(__file__).resolve().parents[2] / "web" / "static" / "css"


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def quoted_attributes(page: BeautifulSoup) -> list[str]:
    """Attributes whose value came out HTML-escaped (``maxlength=&#34;18&#34;`` parses as the
    value ``"18"`` with its quotes): a string of HTML passed where attributes belonged."""
    return [f"<{tag.name} {name}={value!r}>" for tag in page.find_all(True)
            for name, value in tag.attrs.items()
            if isinstance(value, str) and len(value) > 1 and value[0] in "\"'" and value[-1] in "\"'"]


# --- the new-case form ------------------------------------------------------------------
def test_new_case_form_id_fields_have_length_monospace_and_no_autofill(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    page = soup(client.get("/cases/new", params={"matter_id": world.committed.id}).text)
    assert quoted_attributes(page) == []
    for name in ("id_number", "agent_id_number"):
        field = page.select_one(f"#f-{name}")
        assert field["maxlength"] == "18"  # GB 11643-1999 and GB 32100-2015: 18 characters
        assert field["autocomplete"] == "off" and field["spellcheck"] == "false"
        assert field["inputmode"] == "text"  # the resident ID may end in X
        assert "mono" in field["class"]
    for name in ("phone", "agent_phone"):
        field = page.select_one(f"#f-{name}")
        assert field["type"] == "tel" and field["inputmode"] == "tel" and field["autocomplete"] == "off"


def test_new_case_form_keeps_attributes_when_redisplayed_with_errors(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    r = client.post("/cases/new", data={"matter_id": str(world.committed.id), "applicant_kind": "person",
                                        "applicant_name": "张三", "id_number": "12345"})
    page = soup(r.text)
    assert r.status_code == 422 and quoted_attributes(page) == []
    field = page.select_one("#f-id_number")
    assert field["maxlength"] == "18" and field["aria-invalid"] == "true" and field["value"] == "12345"


# --- radio buttons and checkboxes -------------------------------------------------------
def _rules() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(CSS_DIR.glob("*.css")):
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        text = re.sub(r"@media[^{]*\{", "", text)
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
            for sel in selectors.split(","):
                out.append((path.name, sel.strip(), body))
    return out


def test_no_stylesheet_stretches_checkboxes_or_radios_like_text_fields() -> None:
    """A rule that gives every ``input`` of a container a width or block display also hits
    its checkboxes and radios, which then float away from their labels (申请视频帮办's type
    choice, the export checkbox). Text-field rules must exclude them; the one style for
    checkboxes and radios lives in app.css."""
    offenders = []
    for name, sel, body in _rules():
        last = re.split(r"[\s>+~]+", re.sub(r"\((?:[^()]|\([^()]*\))*\)", "()", sel))[-1]
        if not last.startswith("input") or re.search(r'^input\[type="(checkbox|radio)"\]$', last):
            continue
        targets_text_only = ':not()' in last or re.search(r'\[type="(text|search|file|date|tel)"\]|\[name=', last)
        if not targets_text_only and re.search(r"\b(width|display)\s*:", body):
            offenders.append(f"{name}: {sel}")
    assert offenders == []
    patched = [f"{n}: {s}" for n, s, _ in _rules()
               if re.search(r'type="(checkbox|radio)"\]\s*$', s) or "label.inline" in s]
    assert patched and all(p.startswith("app.css") for p in patched), patched


# --- the primary action and the printed notices -----------------------------------------
def _primary(page: BeautifulSoup) -> list[str]:
    return [b.find_parent("form")["id"] for b in page.select("#case-actions button.primary")]


def test_primary_action_is_the_one_time_notice_while_materials_are_missing(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = world.new_case().number
    page = soup(client.get(f"/cases/{number}").text)
    assert _primary(page) == ["action-notice"]
    assert "primary" not in page.select_one("#action-accept button")["class"]
    world.receive(number, "m1", "m2")  # only the 容缺后补 material is missing now
    assert _primary(soup(client.get(f"/cases/{number}").text)) == ["action-rongque"]
    world.receive(number, "m3")
    page = soup(client.get(f"/cases/{number}").text)
    assert _primary(page) == ["action-accept"]


def test_every_state_has_at_most_one_primary_action(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    for state in ("draft", "accepted", "rongque", "correction", "approved", "refused"):
        number = world.drive(state)
        primary = _primary(soup(client.get(f"/cases/{number}").text))
        assert len(primary) <= 1, (state, primary)
        assert not any(p in ("action-refuse", "action-withdraw") for p in primary)


def test_one_time_notice_says_not_submitted_once_per_material(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = world.new_case().number
    world.receive(number, "m1")
    intake.mark_material(world.engine, world.teller_a, number, "m4", "defective", "照片模糊", at=AT)
    client.post(f"/cases/{number}/actions/notice", headers=HX)
    link = soup(client.get(f"/cases/{number}").text).select_one('#case-notices li[data-kind="one_time"] a')
    rows = soup(client.get(link["href"]).text).select("#notice-items tbody tr")
    cells = {r["data-key"]: [td.get_text(strip=True) for td in r.select("td")] for r in rows}
    assert cells["m2"][2:4] == ["未提交", ""]  # problem once, no repeated "reason"
    assert cells["m4"][2:4] == ["需补正", "照片模糊"]
    for row in cells.values():
        assert row[2] != row[3]


def test_receipt_lists_materials_received_outlet_contact_and_signature(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = world.new_case().number
    world.receive(number, "m1", "m2", "m3")
    decisions.accept(world.engine, world.teller_a, number, at=AT)
    link = soup(client.get(f"/cases/{number}").text).select_one('#case-notices li[data-kind="receipt"] a')
    receipt = soup(client.get(link["href"]).text)
    names = [tr.select("td")[1].get_text() for tr in receipt.select("#received-items tbody tr")]
    assert names == ["居民身份证", "申请表", "参保证明"]  # m4 (optional) was not brought
    contact = receipt.select_one("#doc-outlet-contact").get_text()
    assert "香港中路1号" in contact and "0532-8000 0001" in contact
    assert "签收" in receipt.select_one("#signature-line").get_text()


# --- times and dates ----------------------------------------------------------------------
def test_case_history_shows_when_each_action_happened(world: World, client: TestClient) -> None:
    login(client, "teller.a")
    number = world.new_case(at=AT).number
    world.receive(number, "m1", "m2", "m3", at=AT + timedelta(minutes=5))
    decisions.accept(world.engine, world.teller_a, number, at=AT + timedelta(minutes=30))
    decisions.forward(world.engine, world.teller_a, number, at=AT + timedelta(hours=2))
    items = soup(client.get(f"/cases/{number}").text).select("#case-history li")
    shown = {li.get_text(): li.select_one(".muted").get_text() for li in items}
    accept = next(t for text, t in shown.items() if "受理" in text and "→ 已受理" in text)
    forward = next(t for text, t in shown.items() if "已转报" in text)
    assert accept == local_dt(AT + timedelta(minutes=30)) == "2026-09-28 10:30"
    assert forward == "2026-09-28 12:00"
    with Session(world.engine) as s:
        case = s.exec(select(Case).where(Case.number == number)).one()
        events = s.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
        assert max(e.at for e in events) == AT + timedelta(hours=2) == case.updated_at


def test_holiday_note_sits_on_the_date_of_the_unpublished_year(world: World, client: TestClient) -> None:
    """Accepted 2026-12-14: the committed date (5 working days) is in 2026, whose schedule is
    published; the statutory date (20 working days) is in 2027, whose schedule is not."""
    login(client, "teller.a")
    at = datetime(2026, 12, 14, 2, 0)
    number = world.new_case(at=at).number
    world.receive(number, "m1", "m2", "m3", at=at)
    decisions.accept(world.engine, world.teller_a, number, at=at)
    page = soup(client.get(f"/cases/{number}").text)
    committed, statutory = page.select_one("#due-on"), page.select_one("#statutory-due-on")
    assert committed.get_text().startswith("2026-12-21") and committed.select_one(".estimated") is None
    assert statutory.get_text().startswith("2027-") and statutory.select_one(".estimated") is not None


def test_favicon_is_a_static_icon(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # ICO header: reserved 0, type 1 (icon)
    assert 'rel="icon"' in client.get("/login").text


def test_demo_case_history_matches_its_facts(demo, settings, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    """The demo's overdue case was accepted 12 working days ago at 10:00: its history says
    so too (it used to show the time the demo was seeded)."""
    from outlet.demo import seed_demo_cases

    numbers = seed_demo_cases(demo, settings.pseudonym_key())
    login(client, "teller1")
    for number in numbers:
        page = soup(client.get(f"/cases/{number}").text)
        facts = dict(zip([dt.get_text() for dt in page.select("#case-facts dt")],
                         [dd.get_text(" ", strip=True) for dd in page.select("#case-facts dd")], strict=True))
        history = [li.get_text(" ", strip=True) for li in page.select("#case-history li")]
        assert history[0].startswith(facts["收件日期"]), (number, history[0])
        if "受理时间" in facts:
            accepted = next(h for h in history if "→ 已受理" in h)
            assert accepted.startswith(facts["受理时间"]), (number, accepted, facts["受理时间"])


def test_case_numbers_in_tables_are_compact_distinct_and_copyable(world: World, client: TestClient) -> None:
    """Case numbers (≈44 characters) used to wrap in every table: the table shows a short
    form on one line; the full number is the link, the title and the copy button's value."""
    numbers = [world.new_case(at=AT).number, world.new_case(matter=world.instant, at=AT).number]
    assert numbers[0][-12:] == numbers[1][-12:]  # same day, both serial 0001
    login(client, "teller.a")
    page = soup(client.get("/cases/").text)
    shorts = []
    for number in numbers:
        cell = page.select_one(f'#recent-table tr[data-case="{number}"] .case-no')
        assert cell["title"] == number and cell.select_one("a")["href"] == f"/cases/{number}"
        assert cell.select_one("button.copy")["data-copy"] == number
        assert cell.select_one(".sr-only").get_text() == number
        short = cell.select_one(".case-no-short").get_text()
        assert len(short) <= 26 and short.endswith(number[-12:])
        shorts.append(short)
    assert shorts[0] != shorts[1]
    [script] = [s["src"] for s in page.select("script[src]") if "/static/js/copy.js" in s["src"]]
    assert client.get(script).status_code == 200
