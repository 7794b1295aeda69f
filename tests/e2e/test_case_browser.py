"""The two paths a new user tries first, in headless Chromium against a real server:
teller intake (one-time notice → upload → 受理 → receipt with QR → public status page) and
center review (reviewer approves → the teller sees the case completed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import shot
from tests.outlet.samples import PDF

pytestmark = pytest.mark.e2e
def intake_until_forwarded(page, scan: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Teller takes in a 社保 matter with one material missing, prints the one-time notice,
    uploads the rest, accepts, checks the receipt, forwards. Returns (number, check code)."""
    shot(page, "teller-home")
    page.goto("/cases/new")
    page.fill("#q", "社会保障卡申领")
    row = page.locator("#matter-results tr[data-matter]", has_text="社会保障卡申领").first
    row.wait_for()
    row.locator("a.button").click()
    page.fill("#f-applicant_name", "张三")
    page.fill("#f-id_number", "11010519491231002X")
    page.fill("#f-phone", "13800138000")
    page.click("#new-case-form button[type=submit]")
    page.wait_for_selector("#case-materials tr.material")
    keys = page.locator("#case-materials tr.material").evaluate_all("rs => rs.map(r => r.dataset.key)")
    assert len(keys) >= 2, "the matter should list several materials"

    # One material missing → the one-time notice lists it; accepting is refused meanwhile.
    page.locator(f"#material-{keys[0]} button[value=received]").click()
    page.wait_for_selector(f"#material-{keys[0]}[data-status=received]")
    page.locator(f"#material-{keys[1]} button[value=missing]").click()
    page.wait_for_selector(f"#material-{keys[1]}[data-status=missing]")
    missing = page.locator(f"#material-{keys[1]} td").first.inner_text().strip()
    page.locator("#action-notice button").click()
    notice = page.locator('#case-notices li[data-kind="one_time"] a')
    notice.wait_for()
    with page.expect_navigation():
        notice.click()
    assert "一次性告知" in page.locator("body").inner_text()
    assert missing.split()[0] in page.locator("#notice-items").inner_text()
    shot(page, "one-time-notice")
    page.go_back()
    page.locator("#action-accept button").click()
    page.wait_for_selector("#case-error")
    assert page.locator("#case-error").inner_text().strip()

    # Upload every material still missing (a real PDF) → 受理.
    for key in keys:
        row = page.locator(f"#material-{key}")
        if row.get_attribute("data-status") != "received":
            row.locator("input[type=file]").set_input_files(str(scan))
            row.locator("form.upload button").click()
            page.wait_for_selector(f"#material-{key}[data-status=received]")
    page.locator("#action-accept button").click()
    page.wait_for_selector("#case-number ~ .badge.state-accepted")
    shot(page, "case-accepted")

    # The receipt carries a QR code and the check code for the public status page.
    page.locator('#case-notices li[data-kind="receipt"] a').click()
    page.wait_for_selector("#receipt-qr svg")
    code = page.locator("#check-code").inner_text().strip()
    number = page.locator("#notice-number").inner_text().split("-")[0].strip()
    assert len(code) == 6 and code.isdigit()
    shot(page, "receipt")
    page.goto(f"/cases/{number}")
    page.locator("#action-forward button").click()
    page.wait_for_selector("#case-number ~ .badge.state-forwarded")
    return number, code


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "身份证明.pdf"
    path.write_bytes(PDF)
    return path


def test_teller_intake_notice_receipt_and_status_page(page_for, browser, live_server, scan) -> None:  # type: ignore[no-untyped-def]
    teller = page_for("teller1")
    number, code = intake_until_forwarded(teller, scan)

    # The applicant's public status page: needs the check code, shows no personal data.
    anon = browser.new_context(base_url=live_server).new_page()
    anon.goto(f"/status/{number}")
    anon.fill("#check_code", code)
    anon.click("#status-form button")
    anon.wait_for_selector("#status-state")
    text = anon.locator("body").inner_text()
    assert "已转报" in anon.locator("#status-state").inner_text()
    assert "张三" not in text and "11010519491231002X" not in text and "13800138000" not in text
    shot(anon, "public-status")
    anon.context.close()


def test_reviewer_approves_and_teller_sees_completed(page_for, scan) -> None:  # type: ignore[no-untyped-def]
    teller = page_for("teller1")
    number, _ = intake_until_forwarded(teller, scan)

    reviewer = page_for("reviewer1")
    reviewer.goto("/review/")
    shot(reviewer, "review-queue")
    reviewer.locator(f'tr[data-case="{number}"] a').first.click()
    reviewer.locator("#action-claim button").click()
    reviewer.wait_for_selector("#action-approve")
    reviewer.locator("#action-approve button").click()
    reviewer.wait_for_selector("#case-number ~ .badge.state-approved")

    teller.goto(f"/cases/{number}")
    assert "办结" in teller.locator("#case-number ~ .badge.state").first.inner_text()

    lead = page_for("lead1")  # lands on the outlet's overview, not the teller's desk
    lead.wait_for_selector("#outlet-figures")
    assert lead.locator(f'#outlet-table tr[data-case="{number}"]').count() == 1
    shot(lead, "outlet-overview")
