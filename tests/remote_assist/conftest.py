"""Fixtures for remote help: the demo world, a 食品经营许可 case at the CCB outlet (teller2),
staff lookup and audit entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Self

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import audit
from outlet.intake import NewCase, create_case
from outlet.models import Case
from partners.models import Matter, MatterVersion, Staff
from web.settings import Settings

FOOD_MATTER = "食品经营许可（新办）"
PENSION_MATTER = "城乡居民基本养老保险参保登记"
# A valid resident ID (GB 11643 check digit) and a USCC for the demo applicant.
APPLICANT_ID = "11010519491231002X"


def staff(engine: Engine, username: str) -> Staff:
    with Session(engine, expire_on_commit=False) as s:
        user = s.exec(select(Staff).where(Staff.username == username)).one()
    return user


def matter_named(engine: Engine, name: str) -> Matter:
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(
            select(Matter).join(MatterVersion, MatterVersion.matter_id == Matter.id)  # type: ignore[arg-type]
            .where(MatterVersion.name == name, MatterVersion.version == Matter.current_version)
        ).one()


def new_case(engine: Engine, settings: Settings, username: str = "teller2", matter: str = FOOD_MATTER) -> Case:
    actor = staff(engine, username)
    m = matter_named(engine, matter)
    return create_case(
        engine, actor,
        NewCase(matter_id=m.id, applicant_kind="person", applicant_name="张三", id_number=APPLICANT_ID,
                phone="13800138000"),
        pseudonym_key=settings.pseudonym_key(),
    )


def audit_entries(engine: Engine, action: str | None = None) -> list[dict[str, Any]]:
    with Session(engine) as s:
        page = audit.search_entries(s, action=action, limit=500, newest_first=False)
    return [v.entry for v in page.entries]


@pytest.fixture
def food_case(demo: Engine, settings: Settings) -> Case:
    return new_case(demo, settings)


@pytest.fixture(autouse=True)
def demo(engine: Engine) -> Engine:
    """Every remote-help test runs in the demo world (a fresh copy per test)."""
    return engine


class LiveServer:
    """The app served by uvicorn in a thread on a free loopback port (WebSockets included)."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws="websockets-sansio", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def __enter__(self) -> Self:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def rtc_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Media on loopback only (aioice skips 127.0.0.1 by default) and a fast sweep."""
    from remote_assist.rtc import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    yield
    restrict_host_addresses(None)


@pytest.fixture
def live(settings: Settings, engine: Engine, rtc_env: None) -> Iterator[LiveServer]:
    from web.app import create_app

    loopback = dataclasses.replace(settings, assist_rtc_hosts=("127.0.0.1",), assist_tick_seconds=1.0)
    with LiveServer(create_app(loopback)) as server:
        yield server


@pytest.fixture
def coturn() -> Iterator[Any]:
    from tests.remote_assist.coturn import Coturn

    server = Coturn().start()
    yield server
    server.stop()
