"""Requests, calls, consent, callbacks and an audited conclusion on a real PostgreSQL server
(row locks with FOR UPDATE, JSON columns, the audit append lock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import web.models  # noqa: F401  (all tables)
from partners.models import utcnow
from remote_assist import inspections, queue, sessions
from remote_assist.config import AssistConfig
from remote_assist.errors import AlreadyTaken
from remote_assist.models import AssistSession
from tests.remote_assist.conftest import audit_entries, new_case, staff
from tests.remote_assist.test_inspections import add_recording, record_all
from web.db import make_engine
from web.settings import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    from partners.demo import seed_demo
    from tests.conftest import new_pg_database

    url = new_pg_database()
    settings = Settings.from_env(data_dir=tmp_path_factory.mktemp("pg-assist"), database_url=url,
                                 secret_key_override="pg")
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    yield engine, settings
    engine.dispose()


def test_postgres_inspection_from_request_to_conclusion(pg: tuple[Engine, Settings]) -> None:
    engine, settings = pg
    case = new_case(engine, settings)
    teller, expert = staff(engine, "teller2"), staff(engine, "expert1")
    req = queue.create_request(engine, teller, kind="inspection", case_id=case.id)
    with Session(engine) as s:
        assert queue.expert_queue(s, expert, utcnow(), AssistConfig())[0].request.id == req.id
    call = queue.accept(engine, expert, req.id)
    with pytest.raises(AlreadyTaken):
        queue.accept(engine, staff(engine, "expert2"), req.id)
    assert call.id is not None
    sessions.record_consent(engine, teller, call.id, name="张三", role="申请人", purpose="远程视频勘验取证",
                            retention_days=1095, confirmed=True)
    sessions.save_stats(engine, teller, call.id, {"rtt_ms_avg": 20})
    record_all(engine, call.id)
    add_recording(engine, call.id)
    inspections.conclude(engine, expert, call.id, conclusion="通过")
    with Session(engine) as s:
        assert inspections.passed_inspection(s, case.id)  # type: ignore[arg-type]
        assert s.get(AssistSession, call.id).stats["teller"]["rtt_ms_avg"] == 20  # type: ignore[union-attr]
    digests = audit_entries(engine, "assist.conclude")[-1]["digests"]
    assert [d["kind"] for d in digests] == ["snapshot", "snapshot", "recording"]


def test_postgres_callback_slots_and_sweep(pg: tuple[Engine, Settings]) -> None:
    engine, settings = pg
    teller = staff(engine, "teller2")
    t0 = utcnow()
    req = queue.create_request(engine, teller, kind="help", case_id=new_case(engine, settings).id, now=t0)
    with Session(engine) as s:
        slot = queue.callback_slots(s, req.domain, t0, AssistConfig())[0][0]
    queue.book_callback(engine, teller, req.id, slot, now=t0)
    other = queue.create_request(engine, teller, kind="help", case_id=new_case(engine, settings).id, now=t0)
    assert "商事登记" in queue.sweep_requests(engine, t0 + timedelta(seconds=245), AssistConfig())
    with Session(engine) as s:
        assert s.get(type(other), other.id).level == "city"  # type: ignore[union-attr]
