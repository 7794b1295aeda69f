"""Static files are referenced by content-versioned URLs and cached for a year, immutable;
pages with personal data stay ``no-store``."""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

from bs4 import BeautifulSoup
from starlette.testclient import TestClient

from tests.conftest import login


def _assets(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    urls = [str(x["href"]) for x in soup.select("link[rel=stylesheet][href]")]
    return urls + [str(x["src"]) for x in soup.select("script[src]")]


def test_pages_reference_versioned_assets_served_immutable(demo, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    page = client.get("/cases/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"  # the teller's cases: personal data
    assets = _assets(page.text)
    assert any("htmx" in u for u in assets) and any(u.endswith(".css") or ".css?" in u for u in assets)
    for url in assets:
        parts = urlparse(url)
        assert parts.path.startswith("/static/") and parts.query.startswith("v="), url
        got = client.get(url)
        assert got.status_code == 200, url
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable", url
        assert hashlib.sha256(got.content).hexdigest().startswith(parts.query[2:]), url


def test_unversioned_or_stale_asset_urls_are_revalidated_not_pinned(client: TestClient) -> None:
    for url in ("/static/css/app.css", "/static/css/app.css?v=000000000000"):
        got = client.get(url)
        assert got.status_code == 200
        assert got.headers["cache-control"] == "no-cache", url
        again = client.get(url, headers={"If-None-Match": got.headers["etag"]})
        assert again.status_code == 304
    assert client.get("/static/css/nope.css").status_code == 404


def test_templates_link_static_files_through_the_versioned_helper() -> None:
    """A literal ``/static/…`` link would be revalidated on every page view: use static()."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "web" / "templates"
    literal = re.compile(r'(?:href|src)="/static/')
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.html") if literal.search(p.read_text())]
    assert not offenders, f"use {{{{ static('…') }}}} in: {offenders}"
