"""统计核验 (/audit/stats): recompute the figures from a finished export or an uploaded
.tar.gz, next to the published ones; differences highlighted; a tampered export refused."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from tests.web.test_audit_ui import new_case, soup, wait_for_export
from web.settings import Settings

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
def auditor(client: TestClient) -> TestClient:
    from tests.conftest import login

    return login(client, "auditor")


def wait_for_stats(client: TestClient, url: str) -> BeautifulSoup:
    deadline = time.monotonic() + 60
    while True:
        frag = soup(client.get(url + "/status", headers={"HX-Request": "true"}).text)
        status = frag.select_one("#stats-status")
        if status["data-phase"] in ("done", "failed") or time.monotonic() > deadline:
            return frag
        assert status.get("hx-trigger") == "every 1s"
        time.sleep(0.05)


def _export(auditor: TestClient) -> str:
    r = auditor.post("/audit/exports", data={}, follow_redirects=False)
    assert r.status_code == 303
    frag = wait_for_export(auditor, r.headers["location"])
    assert frag.select_one("#export-status")["data-phase"] == "done"
    return r.headers["location"].rsplit("/", 1)[1]


def _rows(frag: BeautifulSoup) -> dict[str, tuple[str, str, list[str]]]:
    return {tr["data-key"]: (tr.select("td")[1].get_text(strip=True), tr.select("td")[2].get_text(strip=True),
                             tr.get("class") or []) for tr in frag.select("#stats-table tbody tr")}


def test_stats_of_an_export_match_the_published_figures(
    auditor: TestClient, engine: Engine, settings: Settings
) -> None:
    new_case(engine, settings)
    job = _export(auditor)
    page = soup(auditor.get("/audit/stats").text)
    assert [o["value"] for o in page.select("#s-export option") if o["value"]] == [job]
    r = auditor.post("/audit/stats", data={"export": job}, follow_redirects=False)
    assert r.status_code == 303
    frag = wait_for_stats(auditor, r.headers["location"])
    assert frag.select_one("#stats-status")["data-phase"] == "done", frag.get_text()
    assert frag.select("li.step-ok")  # verified first
    rows = _rows(frag)
    assert rows["received"][:2] == ("1", "1") and "differs" not in rows["received"][2]
    assert "日志中无此数据" in rows["assist_avg_wait"][0] and "not-in-log" in rows["assist_avg_wait"][2]
    assert "一致" in frag.select_one("#stats-summary").get_text()
    listing = soup(auditor.get("/audit/stats").text)
    assert listing.select_one("#stats-jobs a")["href"] == r.headers["location"]


def test_stats_highlight_a_difference(auditor: TestClient, engine: Engine, settings: Settings) -> None:
    new_case(engine, settings)
    job = _export(auditor)
    new_case(engine, settings)  # after the export: the published figure now counts 2
    r = auditor.post("/audit/stats", data={"export": job}, follow_redirects=False)
    frag = wait_for_stats(auditor, r.headers["location"])
    rows = _rows(frag)
    assert rows["received"][:2] == ("1", "2") and "differs" in rows["received"][2]
    assert "1 项与公布值不一致" in frag.select_one("#stats-summary").get_text()


def _tar(export_dir: Path, tamper: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(export_dir.rglob("*")):
            if not p.is_file():
                continue
            data = p.read_bytes()
            if tamper and p.name == "entries.jsonl":
                data = data.replace(b'"case.create"', b'"case.accept"', 1)
            info = tarfile.TarInfo(f"audit-export/{p.relative_to(export_dir).as_posix()}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_stats_of_an_upload_and_a_tampered_upload_refused(
    auditor: TestClient, engine: Engine, settings: Settings
) -> None:
    new_case(engine, settings)
    export_dir = settings.data_dir / "exports" / _export(auditor)
    for tamper in (False, True):
        r = auditor.post("/audit/stats", files={"archive": ("x.tar.gz", _tar(export_dir, tamper), "application/gzip")},
                         follow_redirects=False)
        assert r.status_code == 303, r.text
        frag = wait_for_stats(auditor, r.headers["location"])
        phase = frag.select_one("#stats-status")["data-phase"]
        if tamper:
            assert phase == "failed" and "entries.jsonl" in frag.select_one("#stats-error").get_text()
            assert not frag.select("#stats-table")
        else:
            assert phase == "done" and _rows(frag)["received"][0] == "1"


def test_stats_form_rejects_bad_input(auditor: TestClient) -> None:
    r = auditor.post("/audit/stats", data={"export": "", "outlet": "NOPE", "from": "2026-05-02"})
    assert r.status_code == 422
    page = soup(r.text)
    assert "已完成的导出" in page.select_one("#err-export").get_text()
    assert "未找到该网点" in page.select_one("#err-outlet").get_text()
    assert page.select_one("#s-from")["value"] == "2026-05-02"
    r = auditor.post("/audit/stats", files={"archive": ("x.zip", b"PK", "application/zip")})
    assert r.status_code == 422 and ".tar.gz" in soup(r.text).select_one("#err-archive").get_text()
    assert auditor.get("/audit/stats/20260101-000000-abcdef").status_code == 404
