"""Shared fixtures: a real SQLite file per test, a real PostgreSQL server per run."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from starlette.applications import Starlette
from starlette.testclient import TestClient

import web.models  # noqa: F401  (all tables)
from tests import pg_server
from web.app import create_app
from web.db import make_engine
from web.settings import Settings

ASSETS = Path(__file__).parent / "assets"
_PG: pg_server.PgServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Start PostgreSQL once for the run; tests marked ``postgres`` use it.

    ``SERVICEPOINT_REQUIRE_PG=1`` (set by ``make test``) turns a missing server into an error
    instead of a skip, so CI can never silently skip the PostgreSQL suite.
    """
    global _PG
    if os.environ.get("SERVICEPOINT_TEST_PG_URL"):
        return
    if not pg_server.available():
        if os.environ.get("SERVICEPOINT_REQUIRE_PG") == "1":
            raise pytest.UsageError("PostgreSQL is required (SERVICEPOINT_REQUIRE_PG=1) but not installed")
        return
    if getattr(config, "workerinput", None) is None and _PG is None:
        _PG = pg_server.start()
        os.environ["SERVICEPOINT_TEST_PG_URL"] = _PG.new_database()
        os.environ["SERVICEPOINT_TEST_PG_ADMIN"] = f"{_PG.port}:{_PG.user}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running on the main
    thread for as long as its browser lives, which would break asyncio.run() elsewhere."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))


def pytest_unconfigure(config: pytest.Config) -> None:
    global _PG
    if _PG is not None:
        _PG.stop()
        _PG = None


def new_pg_database() -> str:
    """A fresh, empty PostgreSQL database URL on the run's server."""
    admin = os.environ.get("SERVICEPOINT_TEST_PG_ADMIN")
    if not admin:
        pytest.skip("PostgreSQL server not available (install Debian's postgresql or run make test)")
    port, user = admin.split(":", 1)
    server = pg_server.PgServer(base=Path("/nonexistent"), port=int(port), user=user)
    return server.new_database()


@pytest.fixture
def pg_url() -> str:
    return new_pg_database()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'servicepoint.db'}",
        secret_key_override="test-secret-key-not-for-production",
    )


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data set seeded once per run (argon2 hashing of the demo logins is slow);
    tests that use ``demo`` get a fresh copy of the file."""
    from partners.demo import seed_demo

    path = tmp_path_factory.mktemp("demo-template") / "demo.db"
    eng = make_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(eng)
    seed_demo(eng)
    eng.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def engine(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A real SQLite file: the demo data set when the test uses ``demo``, else empty tables."""
    if "demo" in request.fixturenames:
        target = Path(settings.database_url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("seeded_template"), target)
        eng = make_engine(settings.database_url)
    else:
        eng = make_engine(settings.database_url)
        SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Starlette:
    return create_app(settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def demo(engine: Engine) -> Engine:
    """The demo data set (partners, outlets, matters, grants, one user per role)."""
    return engine


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: TestClient, username: str, password: str = "demo-12345") -> TestClient:
    """Log ``client`` in through the real login form; sets the CSRF header for later posts."""
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, f"login of {username} failed: {response.status_code}"
    home = client.get(response.headers["location"])
    client.headers["X-CSRF-Token"] = csrf_from(home.text) if 'name="csrf_token"' in home.text else token
    return client


@pytest.fixture
def asset() -> object:
    def _asset(name: str) -> Path:
        return ASSETS / name

    return _asset
