"""Every refusal reason an audit entry can carry has Chinese words in the auditor's view, and
a code shared by families is worded for the family of the entry's action (a refused
``service.close`` is not "号票状态"). The reason codes are found by scanning the code: an
ActionRefused subclass's ``code = "…"`` or a ``code="…"`` given where a refusal is raised,
and the access reasons of web/refusals.py."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

from web.refusals import REASONS
from web.routes.audit_views import REASON_LABELS, reason_label

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("outlet", "partners", "remote_assist", "web", "audit")
CODE = re.compile(r'(?<![\w.])code\s*=\s*"([a-z][a-z_]*)"')


# Failed logins (web/refusals.py, passed to the tally as plain strings, not ``code=``).
LOGIN_REASONS = {"bad_credentials", "inactive", "throttled"}


def reason_codes() -> set[str]:
    codes = set(REASONS.values()) | LOGIN_REASONS
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            codes.update(CODE.findall(path.read_text(encoding="utf-8")))
    return codes


def test_the_scan_finds_the_known_codes() -> None:
    codes = reason_codes()
    assert {"illegal_transition", "reason_required", "not_promisable", "scope_not_granted",
            "forbidden", "not_found", "slot_full"} <= codes


def test_every_refusal_reason_code_has_a_chinese_label() -> None:
    missing = sorted(c for c in reason_codes() if c not in REASON_LABELS)
    assert missing == [], f"reason codes without a label in web/routes/audit_views.py: {missing}"
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in REASON_LABELS.values())


def test_a_shared_code_is_worded_for_the_family_of_the_action() -> None:
    assert "号票" in reason_label("illegal_transition", "ticket.call")
    for action in ("service.close", "visit.complete", "case.forward", "case.promise"):
        assert "号票" not in reason_label("illegal_transition", action)
    assert "服务记录" in reason_label("illegal_transition", "service.close")
    assert "上门服务" in reason_label("illegal_transition", "visit.arrive")
    assert "办件" in reason_label("illegal_transition", "case.forward")
    assert reason_label("reason_required", "case.return") and reason_label("not_promisable", "case.promise")


def test_the_auditor_sees_a_refused_service_close_in_its_own_words(client, demo) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import login

    login(client, "teller1")
    r = client.post("/services/new", data={"kind": "咨询", "topic": "社保卡怎么补办"}, follow_redirects=False)
    number = r.headers["location"].rstrip("/").split("/")[-1]
    assert client.post(f"/services/{number}/actions/close", data={"outcome": "answered"}).status_code in (200, 303)
    again = client.post(f"/services/{number}/actions/close", data={"outcome": "answered"})
    assert again.status_code == 409 and "已办结，不能" in again.text and "已已" not in again.text
    login(client, "auditor")
    page = BeautifulSoup(client.get("/audit/", params={"action": "service.close"}).text, "html.parser")
    [row] = page.select("#audit-table tr.refused")
    assert "当前服务记录状态下不能执行该操作" in row.get_text() and "号票" not in row.get_text()
