"""The queue in headless Chromium against a real server with the demo data: the kiosk takes
a 绿色通道 ticket → teller1 calls it at counter 1 → the hall display shows the call, pushed
through the event hub within 2 s → service starts on a new case, linked to the ticket."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


def _device_links() -> dict[str, str]:
    data = Path(os.environ["SERVICEPOINT_E2E_DATA"])
    rows = (data / "demo-devices.txt").read_text(encoding="utf-8").splitlines()
    return dict(row.split("\t") for row in rows)


def _open_all_day(outlet_name: str) -> None:
    """Tests run at any hour: give the demo outlet no opening hours (= always staffed)."""
    db = Path(os.environ["SERVICEPOINT_E2E_DATA"]) / "servicepoint.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE outlet SET opening_hours = '' WHERE name = ?", (outlet_name,))


def _device_page(browser: Any, live_server: str, path: str, size: dict[str, int]) -> Any:
    ctx = browser.new_context(base_url=live_server, locale="zh-CN", viewport=size)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(path)
    return page


def test_kiosk_ticket_called_shown_on_display_and_served_on_a_new_case(
        browser: Any, live_server: str, page_for: Any) -> None:
    links = _device_links()
    outlet = "工商银行海川长江中路支行"
    _open_all_day(outlet)
    display = _device_page(browser, live_server, links[f"{outlet} · 大厅叫号屏"], {"width": 1920, "height": 1080})
    display.wait_for_selector("body[data-seq]")  # its WebSocket delivered the first board
    kiosk = _device_page(browser, live_server, links[f"{outlet} · 大厅取号机"], {"width": 1080, "height": 1920})
    kiosk.check("input[name=priority][value=elderly]")
    kiosk.click("#line-A")
    number = kiosk.locator("#slip-number").inner_text().strip()
    assert number.startswith("A")
    shot(kiosk, "queue-kiosk-ticket")

    teller = page_for("teller1")
    teller.goto("/queue/")
    teller.select_option("select[name=counter_id]", label="1号窗口")
    teller.click("#queue-sign-in button[type=submit]")
    teller.click("#btn-call")
    teller.wait_for_selector(f"#current-number:text('{number}')")
    called = time.monotonic()
    display.wait_for_selector(f"#calls .num:text('{number}')", timeout=2_000)
    assert time.monotonic() - called < 2.0
    assert display.get_attribute("body", "data-announced") == f"{number}@1"
    shot(display, "queue-hall-display")

    teller.click("#btn-serve")
    teller.wait_for_selector("#new-case")
    teller.click("#new-case")
    teller.fill("#q", "社会保障卡申领")
    row = teller.locator("#matter-results tr[data-matter]", has_text="社会保障卡申领").first
    row.wait_for()
    row.locator("a.button").click()
    teller.fill("#f-applicant_name", "张三")
    teller.fill("#f-id_number", "11010519491231002X")
    teller.fill("#f-phone", "13800138000")
    teller.click("#new-case-form button[type=submit]")
    teller.wait_for_selector("#case-materials")
    case_number = teller.url.rstrip("/").rsplit("/", 1)[-1]
    teller.goto("/queue/")
    assert teller.input_value("#case-link input[name=case_number]") == case_number  # offered to link
    teller.click("#case-link form button[type=submit]")
    teller.wait_for_selector("#linked-case")
    assert teller.locator("#linked-case").inner_text().strip() == case_number
    shot(teller, "queue-counter-panel")
