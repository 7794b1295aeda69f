"""Log side of tlog-witness: push, store cosignatures, backoff, per-witness status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from audit.checkpoint import open_checkpoint
from audit.log import Checkpointer, latest_checkpoint
from audit.note import ALG_COSIGNATURE_V1, Signer
from audit.push import WitnessConfig, witness_status
from audit.witness import Witness, create_app
from tests.audit.helpers import ORIGIN, fixed_signer

Append = Callable[..., list[int]]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """An httpx-like client whose witness can be switched off."""

    def __init__(self, client: TestClient) -> None:
        self.client, self.up, self.calls = client, True, 0

    def post(self, url: str, content: bytes) -> Any:
        self.calls += 1
        if not self.up:
            raise httpx.ConnectError("connection refused")
        return self.client.post(url, content=content)


def status(engine: Engine, *args: Any, **kw: Any) -> list[Any]:
    with engine.connect() as c:
        return witness_status(c, *args, **kw)


def make(tmp_path: Path, log_signer: Signer, witness_signer: Signer) -> tuple[Checkpointer, Flaky, Clock, Witness]:
    clock = Clock()
    w = Witness(witness_signer, [(ORIGIN, log_signer.vkey)], tmp_path / "w.db", clock)
    http = Flaky(TestClient(create_app(w), base_url="http://witness.test"))
    cfg = WitnessConfig(url="http://witness.test", vkey=witness_signer.vkey, name="bank")
    return Checkpointer(ORIGIN, [log_signer], [cfg], http_client=http, clock=clock), http, clock, w  # type: ignore[arg-type]


def test_push_stores_cosignatures_that_meet_the_quorum(
    tmp_path: Path, engine: Engine, log_signer: Signer, witness_signer: Signer, appender: Append
) -> None:
    log, _, _, w = make(tmp_path, log_signer, witness_signer)
    appender(engine, 5)
    log.tick(engine)
    appender(engine, 3, 5)
    log.tick(engine)
    with engine.connect() as c:
        cp = latest_checkpoint(c)
    assert cp is not None and [x.witness for x in cp.cosignatures] == ["bank"]
    opened = open_checkpoint(cp.text(), log.policy("all"))
    assert set(opened.cosigned) == {"bank"}
    assert w.seen(ORIGIN)[0] == 8
    (st,) = status(engine)
    assert (st.name, st.last_cosigned_size, st.lag_entries, st.last_error) == ("bank", 8, 0, None)


def test_push_down_witness_does_not_block_signing_and_backs_off(
    tmp_path: Path, engine: Engine, log_signer: Signer, witness_signer: Signer, appender: Append
) -> None:
    log, http, clock, _ = make(tmp_path, log_signer, witness_signer)
    http.up = False
    appender(engine, 4)
    assert log.tick(engine) is not None  # signed despite the witness being down
    (st,) = status(engine, log.witnesses)
    assert st.failures == 1 and "ConnectError" in (st.last_error or "")
    assert st.lag_entries == 4
    calls = http.calls
    log.tick(engine)  # within the backoff window: no new attempt
    assert http.calls == calls
    http.up = True
    clock.now += 3600
    appender(engine, 2, 4)
    log.tick(engine)
    (st,) = status(engine, now=None)
    assert (st.last_cosigned_size, st.failures, st.last_error) == (6, 0, None)


def test_push_recovers_from_409_using_the_witness_size(
    tmp_path: Path, engine: Engine, log_signer: Signer, witness_signer: Signer, appender: Append
) -> None:
    log, http, _, w = make(tmp_path, log_signer, witness_signer)
    appender(engine, 3)
    log.tick(engine)
    # The log forgets what the witness saw (e.g. its status table was reset).
    from audit.models import witness_push

    with engine.begin() as c:
        c.execute(witness_push.delete())
    appender(engine, 2, 3)
    log.tick(engine)
    assert w.seen(ORIGIN)[0] == 5


def test_push_status_reports_lag_in_seconds(
    tmp_path: Path, engine: Engine, log_signer: Signer, witness_signer: Signer, appender: Append
) -> None:
    log, http, clock, _ = make(tmp_path, log_signer, witness_signer)
    http.up = False
    appender(engine, 2)
    log.tick(engine)
    with engine.connect() as c:
        cp = latest_checkpoint(c)
        assert cp is not None
        (st,) = witness_status(c, now=cp.created_at + timedelta(seconds=42))
    assert st.lag_seconds == 42 and st.lag_entries == 2


def test_push_ignores_cosignatures_from_unknown_witness_keys(
    tmp_path: Path, engine: Engine, log_signer: Signer, appender: Append
) -> None:
    real = fixed_signer("witness.bank.example/w1", "real", ALG_COSIGNATURE_V1)
    impostor = fixed_signer("witness.bank.example/w1", "impostor", ALG_COSIGNATURE_V1)
    log, _, _, _ = make(tmp_path, log_signer, impostor)
    log.witnesses = [WitnessConfig(url="http://witness.test", vkey=real.vkey, name="bank")]
    appender(engine, 2)
    log.tick(engine)
    (st,) = status(engine)
    assert st.last_cosigned_size == 0 and "no cosignature" in (st.last_error or "")
