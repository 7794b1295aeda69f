"""The auditor UI (/audit): search, entry detail with proof download and verification,
checkpoint history, exports, and the public key endpoint."""

from __future__ import annotations

import base64
import tarfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

import audit
from outlet.files import FileStore
from outlet.intake import NewCase, create_case, upload_material
from outlet.models import Case, CaseMaterial
from partners.delegation import delegated_action
from partners.errors import ActionRefused
from partners.models import Matter, MatterVersion, Outlet, Staff
from tests.conftest import login
from web.routes import audit_ui
from web.settings import Settings
from web.templating import LOCAL_TZ

FOOD_MATTER = "食品经营许可（新办）"  # delegated to teller2's outlet
PENSION_MATTER = "城乡居民基本养老保险参保登记"  # delegated to teller1's outlet
APPLICANT_ID = "11010519491231002X"
PDF = b"%PDF-1.4\n% audit ui test scan\n%%EOF\n"


pytestmark = pytest.mark.usefixtures("demo")  # the demo world, copied per test


@pytest.fixture
def auditor(client: TestClient) -> TestClient:
    return login(client, "auditor")


def staff(engine: Engine, username: str) -> Staff:
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(select(Staff).where(Staff.username == username)).one()


def food_matter(engine: Engine, name: str = FOOD_MATTER) -> Matter:
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(
            select(Matter)
            .join(MatterVersion, MatterVersion.matter_id == Matter.id)  # type: ignore[arg-type]
            .where(MatterVersion.name == name, MatterVersion.version == Matter.current_version)
        ).one()


def new_case(engine: Engine, settings: Settings, username: str = "teller2") -> Case:
    """A real delegated action: a teller takes in a case at her outlet (audited)."""
    matter = food_matter(engine, FOOD_MATTER if username == "teller2" else PENSION_MATTER)
    return create_case(
        engine, staff(engine, username),
        NewCase(matter_id=matter.id, applicant_kind="person", applicant_name="张三",
                id_number=APPLICANT_ID, phone="13800138000"),
        pseudonym_key=settings.pseudonym_key(),
    )  # fmt: skip


def refused_action(engine: Engine) -> None:
    """teller2 tries to act at another outlet: refused and audited as such."""
    teller, matter = staff(engine, "teller2"), food_matter(engine)
    with Session(engine, expire_on_commit=False) as s:
        other = s.exec(select(Outlet).where(Outlet.id != teller.outlet_id)).first()
    with (
        pytest.raises(ActionRefused),
        delegated_action(engine, teller, "case.create", matter=matter, outlet=other),
    ):
        pass


def upload_scan(engine: Engine, settings: Settings, case: Case) -> str:
    with Session(engine) as s:
        key = s.exec(select(CaseMaterial.key).where(CaseMaterial.case_id == case.id)).first()
    assert key is not None
    cf = upload_material(
        engine,
        staff(engine, "teller2"),
        case.number,
        key,
        [PDF],
        claimed_name="营业执照.pdf",
        store=FileStore(settings.files_dir),
        max_bytes=settings.max_upload_bytes,
    )
    return cf.sha256


def sign(app: Starlette) -> audit.StoredCheckpoint:
    return audit_ui.checkpointer(app).sign_checkpoint(app.state.engine)


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def result_indexes(html: str) -> list[int]:
    return [int(tr["data-index"]) for tr in soup(html).select("#audit-table tbody tr")]


def pinned_policy(client: TestClient) -> audit.Policy:
    """What an outside auditor does: take the keys from /audit/keys and trust only those."""
    text = client.get("/audit/keys").text
    return audit.Policy.build([line.split()[0] for line in text.splitlines() if line.strip()])


# --- public keys -----------------------------------------------------------------------
def test_keys_serves_log_vkey_without_login(client: TestClient, settings: Settings) -> None:
    response = client.get("/audit/keys")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    signer = audit.load_signer(settings.audit_key_file)
    assert response.text.splitlines() == [signer.vkey]
    assert audit.Verifier.from_vkey(response.text.strip()).name == settings.audit_origin


# --- access ----------------------------------------------------------------------------
def test_audit_pages_forbidden_for_teller(client: TestClient) -> None:
    login(client, "teller1")
    for url in ("/audit/", "/audit/entries/0", "/audit/checkpoints", "/audit/exports"):
        assert client.get(url).status_code == 403, url
    assert client.post("/audit/exports", data={}).status_code == 403
    assert client.get("/audit/keys").status_code == 200


def test_audit_search_requires_login(client: TestClient) -> None:
    response = client.get("/audit/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


# --- search ----------------------------------------------------------------------------
def test_search_finds_entry_of_delegated_action(
    auditor: TestClient, engine: Engine, settings: Settings
) -> None:
    case = new_case(engine, settings)
    refused_action(engine)
    page = soup(auditor.get("/audit/", params={"case": case.number}).text)
    rows = page.select("#audit-table tbody tr")
    assert len(rows) == 1
    cells = [td.get_text(" ", strip=True) for td in rows[0].select("td")]
    assert "case.create" in cells[2] and "新建办件" in cells[2]
    assert "服务专员" in cells[3] and "王芳" in cells[3]
    assert case.number in cells[5]
    assert "已完成" in cells[6] and "refused" not in (rows[0].get("class") or [])
    assert page.select_one("#audit-keys .vkey") is not None  # keys shown on the home page


def test_search_marks_refused_rows_with_reason(auditor: TestClient, engine: Engine) -> None:
    refused_action(engine)
    page = soup(auditor.get("/audit/", params={"action": "case.create"}).text)
    refused = page.select("#audit-table tr.refused")
    assert len(refused) == 1
    assert "已拒绝" in refused[0].get_text() and "wrong_outlet" in refused[0].get_text()


def test_search_filters_narrow_results(
    auditor: TestClient, engine: Engine, settings: Settings
) -> None:
    case = new_case(engine, settings)
    new_case(engine, settings, "teller1")
    refused_action(engine)
    everything = result_indexes(auditor.get("/audit/").text)
    assert len(everything) == 4  # the auditor's own login (security.login) is the first entry
    teller2 = staff(engine, "teller2")
    by_actor = result_indexes(auditor.get("/audit/", params={"actor": "teller2"}).text)
    assert len(by_actor) == 2
    assert by_actor == result_indexes(
        auditor.get("/audit/", params={"actor": str(teller2.id)}).text
    )
    with Session(engine) as s:
        outlet_code = s.exec(select(Outlet.code).where(Outlet.id == teller2.outlet_id)).one()
    by_outlet = soup(auditor.get("/audit/", params={"outlet": outlet_code}).text)
    assert len(by_outlet.select("#audit-table tbody tr")) == 1
    assert case.number in by_outlet.select_one("#audit-table").get_text()
    today = datetime.now(LOCAL_TZ).date()
    in_range = {"from": today.isoformat(), "to": today.isoformat()}
    assert len(result_indexes(auditor.get("/audit/", params=in_range).text)) == 4
    future = {"from": (today + timedelta(days=1)).isoformat()}
    empty = soup(auditor.get("/audit/", params=future).text)
    assert empty.select_one("#no-results") is not None
    matter = food_matter(engine).implementation_code
    combined = {"matter": matter, "action": "case.create", "actor": "teller2"}
    assert len(result_indexes(auditor.get("/audit/", params=combined).text)) == 2  # done + refused
    combined["outlet"] = outlet_code
    assert len(result_indexes(auditor.get("/audit/", params=combined).text)) == 1


def test_search_rejects_bad_filters_with_field_errors(auditor: TestClient) -> None:
    response = auditor.get(
        "/audit/", params={"from": "2026-13-01", "actor": "nobody", "case": "X1"}
    )
    assert response.status_code == 422
    page = soup(response.text)
    assert "日期格式" in page.select_one("#err-from").get_text()
    assert "未找到该人员" in page.select_one("#err-actor").get_text()
    assert page.select_one("#q-case")["value"] == "X1"  # input kept


def test_search_paginates_with_keyset(
    auditor: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        new_case(engine, settings)
    refused_action(engine)
    refused_action(engine)  # 5 entries
    monkeypatch.setattr(audit_ui, "PAGE_SIZE", 2)
    seen: list[int] = []
    url: str | None = "/audit/?outlet=&action=case.create"
    pages = 0
    while url:
        html = auditor.get(url).text
        seen += result_indexes(html)
        link = soup(html).select_one("#audit-results a[rel=next]")
        url = link["href"] if link else None
        pages += 1
    assert pages == 3
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5
    # htmx asks for the same URL and gets only the results fragment
    fragment = auditor.get(
        "/audit/?action=case.create&after_index=" + str(seen[1]), headers={"HX-Request": "true"}
    )
    assert "HX-Request" in fragment.headers["vary"]
    frag = soup(fragment.text)
    assert frag.select_one("html") is None and frag.select_one("#audit-results") is not None
    assert result_indexes(fragment.text) == seen[2:4]


# --- one entry -------------------------------------------------------------------------
def test_entry_detail_shows_leaf_and_its_proof_verifies(
    auditor: TestClient, engine: Engine, settings: Settings, app: Starlette, tmp_path: Path
) -> None:
    case = new_case(engine, settings)
    sign(app)
    index = result_indexes(auditor.get("/audit/", params={"case": case.number}).text)[0]
    page = soup(auditor.get(f"/audit/entries/{index}").text)
    with Session(engine) as s:
        view = audit.get_entry(s, index)
    assert view is not None
    assert page.select_one("#leaf-bytes").get_text() == view.leaf.decode()
    assert case.number in page.select_one("#leaf-pretty").get_text()
    assert page.select_one("#leaf-hash").get_text() == view.leaf_hash.hex()
    assert page.select_one("#not-covered") is None

    download = auditor.get(page.select_one("#proof-download")["href"])
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    proof = tmp_path / "entry.tlog-proof"
    proof.write_bytes(download.content)
    audit.verify(proof, pinned_policy(auditor))  # accepted

    lines = download.content.split(b"\n")
    assert lines[1].startswith(b"extra ")
    leaf = base64.b64decode(lines[1][6:]).replace(b'"to":"draft"', b'"to":"accepted"')
    assert leaf != view.leaf
    lines[1] = b"extra " + base64.b64encode(leaf)
    tampered = tmp_path / "tampered.tlog-proof"
    tampered.write_bytes(b"\n".join(lines))
    with pytest.raises(audit.AuditError):
        audit.verify(tampered, pinned_policy(auditor))


def test_entry_verify_action_shows_numbered_steps(
    auditor: TestClient, engine: Engine, settings: Settings, app: Starlette
) -> None:
    new_case(engine, settings)
    sign(app)
    response = auditor.post("/audit/entries/0/verify", headers={"HX-Request": "true"})
    assert response.status_code == 200
    frag = soup(response.text)
    assert frag.select_one("#verify-result .success") is not None
    passed = [li["data-step"] for li in frag.select("#verify-result li.step-ok")]
    assert passed == ["1", "2–7", "8–9"] and frag.select_one(".step-failed") is None
    full = soup(auditor.post("/audit/entries/0/verify").text)  # without JS: the whole page
    assert full.select_one("#entry-leaf") is not None
    assert full.select_one("#verify-result .success") is not None


def test_entry_verify_action_names_the_failing_step(
    auditor: TestClient,
    engine: Engine,
    settings: Settings,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new_case(engine, settings)
    sign(app)
    stranger = audit.Signer.generate(settings.audit_origin, 0x01)  # same name, other key
    wrong = audit.Policy.build([stranger.vkey])
    monkeypatch.setattr(audit_ui.checkpointer(app), "policy", lambda *a, **k: wrong)
    frag = soup(auditor.post("/audit/entries/0/verify", headers={"HX-Request": "true"}).text)
    assert frag.select_one("#verify-result .success") is None
    failed = frag.select_one("#verify-result li.step-failed")
    assert failed["data-step"] == "2–7" and "第 2–7 步" in failed.get_text()
    assert [li["data-step"] for li in frag.select("li.step-ok")] == ["1"]
    error = frag.select_one("#verify-error").get_text()
    assert "第 2–7 步" in error and "未通过" in error and "Error:" not in error


def test_entry_not_covered_waits_for_the_server_and_auditor_cannot_sign(
    auditor: TestClient, engine: Engine, settings: Settings, app: Starlette
) -> None:
    """The auditor is read-only: no 立即签发检查点 button and no signing endpoint; the
    server signs on its schedule and the proof is then offered."""
    new_case(engine, settings)
    page = soup(auditor.get("/audit/entries/0").text)
    assert page.select_one("#not-covered") is not None
    assert page.select_one("#sign-now") is None
    assert not [b for b in page.select("button") if "签发" in b.get_text()]
    assert soup(auditor.get("/audit/checkpoints").text).select_one("#sign-now") is None
    assert auditor.get("/audit/entries/0/proof").status_code == 409
    assert auditor.get("/audit/entries/9223372036854775807/proof").status_code == 404  # no such entry
    assert auditor.post("/audit/sign", follow_redirects=False).status_code in (404, 405)
    sign(app)
    page = soup(auditor.get("/audit/entries/0").text)
    assert (
        page.select_one("#not-covered") is None and page.select_one("#proof-download") is not None
    )


def test_entry_shows_state_and_matter_names_not_codes(
    auditor: TestClient, engine: Engine, settings: Settings
) -> None:
    """A new case's entry reads "— → 待受理" and the matter's name; the codes stay visible
    (muted) next to them for cross-checking with an export."""
    case = new_case(engine, settings)
    [index] = result_indexes(auditor.get("/audit/", params={"case": case.number}).text)
    page = soup(auditor.get(f"/audit/entries/{index}").text)
    matter = page.select_one("#entry-matter")
    assert FOOD_MATTER in matter.get_text() and matter.select_one("code") is not None
    state = page.select_one("#entry-state")
    assert state.get_text().startswith("— → 待受理")
    assert state.select_one("code").get_text() == "— → draft"
    listing = soup(auditor.get("/audit/", params={"case": case.number}).text)
    row = listing.select_one("#audit-table tbody tr")
    assert row.select_one(".matter-name").get_text() == FOOD_MATTER
    assert row.select_one(".state-change").get_text() == "— → 待受理"
    assert "draft" not in row.select_one(".state-change").get_text()


def test_entry_unknown_index_is_404(auditor: TestClient) -> None:
    assert auditor.get("/audit/entries/999").status_code == 404


# --- checkpoints -----------------------------------------------------------------------
def test_checkpoints_page_lists_signed_checkpoint(
    auditor: TestClient, engine: Engine, settings: Settings, app: Starlette
) -> None:
    new_case(engine, settings)
    new_case(engine, settings)
    cp = sign(app)
    page = soup(auditor.get("/audit/checkpoints").text)
    row = page.select_one(f"#checkpoint-table tr[data-size='{cp.size}']")
    assert row is not None and cp.size == 3  # the auditor's login and the two cases
    assert base64.b64encode(cp.root).decode() in row.get_text()
    assert settings.audit_origin in row.get_text() and "未知公钥" not in row.get_text()
    assert page.select_one("#witness-status") is not None


# --- exports ---------------------------------------------------------------------------
def wait_for_export(client: TestClient, url: str) -> BeautifulSoup:
    deadline = time.monotonic() + 60
    while True:
        frag = soup(client.get(url + "/status", headers={"HX-Request": "true"}).text)
        status = frag.select_one("#export-status")
        if status["data-phase"] in ("done", "failed") or time.monotonic() > deadline:
            return frag
        assert status.get("hx-trigger") == "every 1s"  # still polling while running
        time.sleep(0.05)


def test_export_produces_directory_that_verifies(
    auditor: TestClient, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    case = new_case(engine, settings)
    sha = upload_scan(engine, settings, case)
    new_case(engine, settings, "teller1")  # another outlet: filtered out
    teller2 = staff(engine, "teller2")
    with Session(engine) as s:
        outlet_code = s.exec(select(Outlet.code).where(Outlet.id == teller2.outlet_id)).one()
    response = auditor.post(
        "/audit/exports", data={"outlet": outlet_code, "evidence": "1"}, follow_redirects=False
    )
    assert response.status_code == 303
    url = response.headers["location"]
    frag = wait_for_export(auditor, url)
    assert frag.select_one("#export-status")["data-phase"] == "done", frag.get_text()
    assert frag.select_one("#export-entries").get_text() == "2"  # case.create + case.material
    assert frag.select("li.step-ok")

    job_id = url.rsplit("/", 1)[1]
    export_dir = settings.data_dir / "exports" / job_id
    audit.verify(export_dir, pinned_policy(auditor))
    assert f"evidence/material/{sha}" in (export_dir / "manifest").read_text()

    archive = auditor.get(f"{url}/download/tar.gz")
    assert archive.status_code == 200
    (tmp_path / "x.tar.gz").write_bytes(archive.content)
    with tarfile.open(tmp_path / "x.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    audit.verify(tmp_path / "x" / f"audit-export-{job_id}", pinned_policy(auditor))
    assert auditor.get(f"{url}/download/zip").headers["content-type"] == "application/zip"

    exports = [v.entry for v in _entries(engine, "audit.export")]
    assert len(exports) == 1 and exports[0]["actor"]["role"] == "auditor"


def test_export_form_rejects_bad_input(auditor: TestClient) -> None:
    response = auditor.post(
        "/audit/exports", data={"outlet": "NOPE", "from": "2026-05-02", "to": "2026-05-01"}
    )
    assert response.status_code == 422
    page = soup(response.text)
    assert "未找到该网点" in page.select_one("#err-outlet").get_text()
    assert "结束日期" in page.select_one("#err-to").get_text()
    assert page.select_one("#e-from")["value"] == "2026-05-02"


def _entries(engine: Engine, action: str) -> list[Any]:
    with Session(engine) as s:
        return audit.search_entries(s, action=action, limit=500).entries
