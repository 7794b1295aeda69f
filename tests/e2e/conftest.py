"""Browser tests: a real server process (``servicepoint demo`` + ``serve``) and Debian's
headless Chromium driven by Playwright, with a fake camera and microphone."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


SHOTS = os.environ.get("SERVICEPOINT_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    """Save a screenshot for docs/ when SERVICEPOINT_SCREENSHOTS names a folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli() -> list[str]:
    return [sys.executable, "-c", "from web.cli import main; main()"]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server started the way ``make run`` starts it, on a free port, with demo data."""
    data = tmp_path_factory.mktemp("live-var")
    port = _free_port()
    # printed links and QR codes point at this server, as SERVICEPOINT_PUBLIC_URL would in production
    # the kiosk's ID-card reader bridge: a fake one is started there by the tests that need it
    bridge_port = _free_port()
    env = {**os.environ, "SERVICEPOINT_DATA": str(data), "SERVICEPOINT_CHECKPOINT_INTERVAL": "1",
           "SERVICEPOINT_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "SERVICEPOINT_IDCARD_BRIDGE": f"ws://127.0.0.1:{bridge_port}/idcard"}
    env.pop("SERVICEPOINT_DATABASE_URL", None)
    subprocess.run([*_cli(), "demo"], env=env, check=True, capture_output=True, timeout=120)
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen([*_cli(), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + Path(data / "server.log").read_text())
        time.sleep(0.2)
    os.environ["SERVICEPOINT_E2E_DATA"] = str(data)
    os.environ["SERVICEPOINT_E2E_IDCARD_PORT"] = str(bridge_port)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("SERVICEPOINT_REQUIRE_BROWSER") == "1":
            raise RuntimeError("Chromium is required (SERVICEPOINT_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Debian chromium not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page_for(browser: object, live_server: str) -> Iterator[object]:
    """``page_for(username)`` → a logged-in page in its own browser context."""
    contexts = []

    def _open(username: str, password: str = "demo-12345") -> object:
        ctx = browser.new_context(base_url=live_server, locale="zh-CN",  # type: ignore[attr-defined]
                                  permissions=["camera", "microphone"], viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "/login" not in page.url, f"login of {username} failed"
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
