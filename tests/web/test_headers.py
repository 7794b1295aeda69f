"""Security headers on every response — a 500 too (Starlette sends it outside the middleware
stack) — and HSTS only behind TLS."""

from __future__ import annotations

import dataclasses

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from web.app import create_app
from web.settings import Settings


async def _boom(request: Request) -> None:
    raise RuntimeError("unexpected")


def _client(settings: Settings) -> TestClient:
    app = create_app(settings)
    app.router.routes.append(Route("/boom", _boom))
    return TestClient(app, base_url="http://testserver", raise_server_exceptions=False)


def test_server_error_carries_the_security_headers(settings: Settings, engine: Engine) -> None:
    with _client(settings) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "unexpected" not in response.text and "Traceback" not in response.text
    assert "strict-transport-security" not in response.headers


def test_hsts_only_when_https_is_set(settings: Settings, engine: Engine) -> None:
    with _client(dataclasses.replace(settings, https=True)) as c:
        page, error = c.get("/login"), c.get("/boom")
    for response in (page, error):
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
