"""服务统计 in headless Chromium against the real demo server: the center admin opens the
dashboard (charts render, no console errors — a CSP violation would be one), switches the
period through htmx, clicks a number and lands on the list behind it; the partner manager
sees only its own outlets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def test_center_admin_dashboard_drills_down_and_partner_sees_own_outlets(page_for: Any) -> None:
    admin = page_for("admin")
    problems = _watch(admin)
    admin.click("nav.mainnav a:has-text('服务统计')")
    admin.wait_for_load_state("networkidle")
    assert admin.locator("h1").inner_text() == "服务统计 · 全部网点"
    for chart in ("#chart-trend svg.chart-line", "#chart-bars svg.chart-bar", "#chart-heat svg.chart-heat"):
        box = admin.locator(chart).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 30, chart  # drawn, not collapsed
    assert admin.locator("#chart-trend circle.dot").count() == 30
    assert admin.locator("#chart-heat rect").count() == 7 * 24
    outlets = admin.locator("select[name=outlet] option").count() - 1
    assert outlets >= 9
    shot(admin, "dashboard-center")

    admin.check("input[name=period][value=week]")
    admin.click("#figures-picker button[type=submit]")  # htmx swaps #figures-body
    admin.wait_for_url("**/figures/?period=week*")
    admin.locator("#figures-body .toolbar").filter(has_text="上期").wait_for()
    card = admin.locator('.figure-card[data-key="received"] a.figure-value')
    number = card.inner_text()
    card.click()
    admin.wait_for_url("**/figures/rows/cases?figure=received*")
    assert admin.locator("#rows-title").inner_text().startswith("收件数")
    listed = admin.locator("#figure-rows tbody tr:not(.empty)").count()
    assert listed == min(50, int(number)) or listed == 0  # 0 until the family lists its rows
    assert problems == []

    partner = page_for("partner1")
    problems = _watch(partner)
    assert partner.url.endswith("/figures/")  # the partner manager lands on the dashboard
    names = partner.locator("select[name=outlet] option").all_inner_texts()
    assert names[1:] == ["工商银行海川长江中路支行", "工商银行海川开发区支行（24 小时自助服务区）"]
    bars = partner.locator("#chart-bars details tbody tr:not(.empty) td:first-child").all_text_contents()
    assert set(bars) <= set(names[1:])
    nav = partner.locator("nav.mainnav a").all_inner_texts()
    assert nav == ["服务统计"]
    assert problems == []
