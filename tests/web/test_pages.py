"""Every page a demo user can reach by following links renders without a server error,
carries the strict CSP, stays under 100 KB, and has no inline script."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from outlet.demo import seed_demo_cases
from tests.conftest import login

USERS = ["teller1", "lead1", "agent1", "reviewer1", "expert1", "admin", "secadmin", "auditor", "partner1"]
SKIP_PREFIXES = ("/logout", "/static/", "/audit/exports/")


def _links(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for a in soup.select("a[href]"):
        href = str(a["href"])
        url = urlparse(href)
        if url.scheme or url.netloc or not href.startswith("/") or href.startswith(SKIP_PREFIXES):
            continue
        if "/files/" in href or href.endswith("/proof"):
            continue
        found.append(href.split("#")[0])
    return found


@pytest.mark.parametrize("username", USERS)
def test_pages_reachable_by_role_render_cleanly(username: str, demo, client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    seed_demo_cases(demo, settings.pseudonym_key())
    login(client, username)
    queue, seen = ["/"], set()
    while queue and len(seen) < 60:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code in (200, 403, 404), f"{username} GET {path}: {response.status_code}"
        if response.status_code != 200 or not response.headers["content-type"].startswith("text/html"):
            continue
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert len(response.content) < 100 * 1024, f"{path} is {len(response.content)} bytes"
        soup = BeautifulSoup(response.text, "html.parser")
        assert all(s.get("src") for s in soup.find_all("script")), f"inline script on {path}"
        assert not soup.find_all("style"), f"inline <style> on {path}"
        assert not soup.select("[style]"), f"inline style attribute on {path}"
        escaped = [f"{t.name}[{k}]" for t in soup.find_all(True) for k, v in t.attrs.items()
                   if isinstance(v, str) and len(v) > 1 and v[0] == v[-1] and v[0] in "\"'"]
        assert not escaped, f"attributes rendered as escaped text on {path}: {escaped}"
        queue.extend(_links(response.text))
    assert len(seen) >= 2, f"{username} reached only {seen}"
