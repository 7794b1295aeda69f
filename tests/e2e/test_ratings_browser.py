"""好差评 as a new user tries it, in headless Chromium against the real demo server: the
applicant rates a demo case 2 stars through the receipt's QR link, the work order opens,
lead1 records the call-back and the rectification and closes it (销号)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


def test_bad_rating_from_the_receipt_is_worked_to_closed(page_for: Any, browser: Any,
                                                         live_server: str) -> None:
    teller = page_for("teller1")
    teller.goto("/cases/")
    teller.locator("#overdue-table a[href^='/cases/']").first.click()
    teller.locator('#case-notices li[data-kind="receipt"] a').first.click()
    code = teller.locator("#check-code").inner_text().strip()
    rate_url = teller.locator("#receipt-rate-url").inner_text().strip()
    assert rate_url.startswith(live_server + "/rate/")

    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                java_script_enabled=False)  # the QR page needs no JavaScript
    applicant = phone.new_page()
    applicant.goto(rate_url)
    applicant.fill("#check_code", code)
    applicant.check("input[name=stage][value=during]")
    applicant.check("input[name=level][value='2']")
    applicant.click("#rate-form summary")
    applicant.check("input[name=reasons][value=b_wait]")
    applicant.fill("#rating-text", "排队时间太长")
    shot(applicant, "rating-qr-page")
    applicant.click("#rate-form button[type=submit]")
    assert "感谢您的评价" in applicant.locator("#rating-done").inner_text()
    phone.close()

    lead = page_for("lead1")
    lead.goto("/cases/")
    due = lead.locator("#rating-orders-due tr[data-order]")  # loaded by htmx on the home page
    due.first.wait_for()
    lead.goto("/ratings/")
    row = lead.locator("#orders-table tr[data-order]", has_text="实名").filter(
        has_text="待回访").first
    row.locator("a").click()
    assert "排队时间太长" in lead.locator("#order-facts").inner_text()
    lead.check("#form-callback input[name=reached][value=yes]")
    lead.fill("#form-callback textarea[name=note]", "已电话回访申请人，致歉并说明高峰时段安排")
    lead.click("#form-callback button[type=submit]")
    lead.check("#form-rectify input[name=kind][value=rectify]")
    lead.fill("#form-rectify textarea[name=note]", "高峰时段增开一个窗口，增设取号引导")
    lead.click("#form-rectify button[type=submit]")
    lead.click("#form-close button[type=submit]")
    assert lead.locator("#order-state").inner_text() == "已销号"
    assert "高峰时段增开一个窗口" in lead.locator("#step-rectify").inner_text()
    shot(lead, "rating-work-order-closed")


def test_lead_and_center_ratings_pages_have_no_sideways_scroll_at_768(page_for: Any) -> None:
    """A lead on a tablet (768 px wide): the ratings home, a work order and the center's
    list fit the width — tables wrap or scroll inside their own box, never the page."""
    for user, paths in (("lead1", ["/ratings/"]), ("admin", ["/ratings/center/"])):
        page = page_for(user)
        page.set_viewport_size({"width": 768, "height": 1024})
        page.goto(paths[0])
        order = page.locator("a[href^='/ratings/orders/']").first.get_attribute("href")
        for path in [*paths, order]:
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 768, (user, path, width)
