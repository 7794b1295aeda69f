"""Fixtures for the audit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from audit.models import create_tables
from audit.note import ALG_COSIGNATURE_V1, Signer
from tests.audit.helpers import ORIGIN, append, fixed_signer, sqlite_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = sqlite_engine(tmp_path / "audit.db")
    create_tables(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def log_signer() -> Signer:
    return fixed_signer(ORIGIN, "log key 1")


@pytest.fixture
def witness_signer() -> Signer:
    return fixed_signer("witness.bank.example/w1", "witness key 1", ALG_COSIGNATURE_V1)


@pytest.fixture
def appender() -> Callable[..., list[int]]:
    return append
