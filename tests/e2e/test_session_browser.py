"""A session that ends while the user is typing: the htmx submit leads to the login page and
back, and what was typed is put back into the form (web/static/js/session.js)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

TYPED = "2027-10-09 班 国庆调休（会话过期前填写）"


def end_all_sessions() -> None:
    """What a security admin's "结束全部会话" (or the idle timeout) does, from outside."""
    db = Path(os.environ["SERVICEPOINT_E2E_DATA"]) / "servicepoint.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE login_session SET ended_at = last_seen, ended_reason = 'admin' WHERE ended_at IS NULL")


@pytest.mark.timeout(120)
def test_typed_input_survives_an_ended_session(page_for: Any) -> None:
    page = page_for("admin")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/admin/calendar?year=2027")
    page.fill("#f-schedule", TYPED)
    end_all_sessions()
    page.click("#calendar-bulk-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" in url)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "demo-12345")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/admin/calendar?year=2027"))
    assert page.input_value("#f-schedule") == TYPED
    assert page.locator("#calendar-bulk-form .draft-restored").is_visible()
    # a later visit starts clean: the draft was for that one return only
    page.goto("/admin/")
    page.goto("/admin/calendar?year=2027")
    assert page.input_value("#f-schedule").strip() == ""
    assert errors == []


@pytest.mark.timeout(120)
def test_drafts_never_keep_phone_or_id_numbers(page_for: Any) -> None:
    """What is typed is kept for a re-login, but not personal numbers (session.js personal())."""
    page = page_for("teller1")
    page.goto("/cases/new")
    page.click("#matter-results a.button")
    page.fill("#new-case-form [name=applicant_name]", "李草稿")
    page.fill("#new-case-form [name=id_number]", "370211195804120021")
    page.fill("#new-case-form [name=phone]", "13800138000")
    stored = page.evaluate("JSON.stringify(Object.entries(sessionStorage))")
    assert "李草稿" in stored
    assert "370211195804120021" not in stored and "13800138000" not in stored
    # a search box is never drafted (查找办件 takes ID numbers), nor a number typed into free text
    page.goto("/cases/")
    page.fill("#case-q", "37021119580412")
    page.fill("#case-q", "370211195804120021")
    stored = page.evaluate("JSON.stringify(Object.entries(sessionStorage))")
    assert "3702111958" not in stored and "/cases/search" not in stored


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("username", "paths"), [
    ("teller1", ["/cases/", "/figures/"]), ("auditor", ["/audit/?action=case.accept", "/audit/checkpoints"]),
    ("admin", ["/admin/outlets", "/figures/"]),
])
def test_tables_never_widen_the_page_at_375_px(page_for: Any, username: str, paths: list[str]) -> None:
    """Measured on the document (what the user scrolls), with every <details> open; the
    /audit/ list holds case numbers whose full form is an absolutely positioned sr-only span."""
    page = page_for(username)
    page.set_viewport_size({"width": 375, "height": 800})
    for path in paths:
        page.goto(path)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.locator("main table").count() > 0, path
        if path.startswith("/audit/?"):
            assert page.locator("main table .sr-only").count() > 0  # what escaped the scroll container
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, path
