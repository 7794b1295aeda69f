"""Delegated actions under group commit (audit.group), on a real SQLite file and on the real
PostgreSQL: concurrent actions share one COMMIT with a savepoint each; a failure inside one
action (a refusal, a failed flush) undoes only that action and the refusal is still audited;
an action returns only once committed; committed indexes always form a gap-free prefix and
each writer's indexes grow in the order its actions were acknowledged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

import partners.accounts as accounts
import web.models  # noqa: F401  (all tables)
from audit.group import group_commit
from audit.models import entries
from partners.delegation import delegated_action
from partners.errors import GrantExpired
from partners.models import Outlet, Partner
from tests.partners.conftest import AT, World, audit_entries, build_world
from web.db import make_engine

WAIT = 20.0  # seconds: bounded waits, not speed goals


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gworld(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'group.db'}"
    else:
        from tests.conftest import new_pg_database

        url = new_pg_database()
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
        world = build_world(engine)
    yield world
    engine.dispose()


def _queued(engine: Engine, n: int) -> None:
    group = group_commit(engine)
    deadline = time.monotonic() + WAIT
    while group._waiting < n:  # the actions queue up behind the one in progress
        assert time.monotonic() < deadline, "actions did not queue up"
        time.sleep(0.005)


def _indexes(engine: Engine) -> list[int]:
    with engine.connect() as c:
        return list(c.execute(select(entries.c.idx).order_by(entries.c.idx)).scalars())


def test_failure_inside_a_batch_undoes_only_that_action_and_refusals_are_audited(gworld: World) -> None:
    w, engine = gworld, gworld.engine
    group = group_commit(engine)
    inside, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def holder() -> None:  # A: holds the batch open until the others queued behind it
        with delegated_action(engine, w["teller.o1"], "case.create", matter=w.committed,
                              outlet=w.o1, at=AT, case="A") as act:
            o1 = act.session.get(Outlet, w.o1.id)
            assert o1 is not None
            o1.phone = "0532-1111"
            act.session.add(o1)
            inside.set()
            release.wait(WAIT)
        results["A"] = act.index

    def failing_flush() -> None:  # B: a unique violation at flush, after a valid change
        try:
            with delegated_action(engine, w["teller.o1"], "case.create", matter=w.committed,
                                  outlet=w.o1, at=AT, case="B") as act:
                act.session.add(Partner(code="NEWP", name="新伙伴", kind="bank"))
                act.session.flush()
                act.session.add(Partner(code="BANK1", name="重复", kind="bank"))
                act.session.flush()
        except IntegrityError as exc:
            results["B"] = exc

    def refused() -> None:  # C: refused by authorization (an expired grant)
        try:
            with delegated_action(engine, w["teller.o1"], "case.create", matter=w.expired,
                                  outlet=w.o1, at=AT, case="C"):
                pytest.fail("the block must not run")
        except GrantExpired as exc:
            results["C"] = exc

    def succeeding() -> None:  # D
        with delegated_action(engine, w["teller.o2"], "case.create", matter=w.biz,
                              outlet=w.o2, at=AT, case="D", scope="咨询") as act:
            o2 = act.session.get(Outlet, w.o2.id)
            assert o2 is not None
            o2.phone = "0532-2222"
            act.session.add(o2)
        results["D"] = act.index

    before = group.batches
    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(WAIT)
    others = [threading.Thread(target=f) for f in (failing_flush, refused, succeeding)]
    for t in others:
        t.start()
    _queued(engine, 3)
    release.set()
    for t in [first, *others]:
        t.join(WAIT)
        assert not t.is_alive()

    assert isinstance(results["B"], IntegrityError) and isinstance(results["C"], GrantExpired)
    # A, B, C and D were all queued on A's batch: it committed A and D despite B and C.
    assert 1 <= group.batches - before <= 2
    with Session(engine) as s:
        assert s.get(Outlet, w.o1.id).phone == "0532-1111"  # type: ignore[union-attr]
        assert s.get(Outlet, w.o2.id).phone == "0532-2222"  # type: ignore[union-attr]
        codes = set(s.exec(select(Partner.code)).scalars())  # type: ignore[call-overload]
    assert "NEWP" not in codes and codes == {"BANK1", "POST1"}
    logged = {e["case"]: e["outcome"] for e in audit_entries(engine, action="case.create")}
    assert logged == {"A": {"result": "done"}, "C": {"result": "refused", "reason": "grant_expired"},
                      "D": {"result": "done"}}
    assert _indexes(engine) == list(range(len(_indexes(engine))))
    assert {results["A"], results["D"]} <= set(_indexes(engine))


def test_concurrent_actions_commit_a_gap_free_prefix_in_acknowledgement_order(gworld: World) -> None:
    w, engine = gworld, gworld.engine
    writers, per = 12, 8
    acknowledged: list[list[int]] = [[] for _ in range(writers)]
    seen: list[tuple[int, int | None]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(k: int) -> None:
        try:
            for i in range(per):
                with delegated_action(engine, w["teller.o1"], "case.create", matter=w.committed,
                                      outlet=w.o1, at=AT, case=f"W{k}-{i}") as act:
                    pass
                assert act.index is not None
                # acknowledged: committed, so visible to any other connection now
                with engine.connect() as c:
                    assert c.execute(select(entries.c.idx).where(entries.c.idx == act.index)).first()
                acknowledged[k].append(act.index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def poller() -> None:
        while not stop.is_set():
            with engine.connect() as c:
                seen.append(tuple(c.execute(select(func.count(), func.max(entries.c.idx))).one()))  # type: ignore[arg-type]

    base = len(_indexes(engine))
    watch = threading.Thread(target=poller)
    watch.start()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    watch.join(WAIT)
    assert errors == []
    assert seen, "the poller never read"
    # What any reader saw was always a prefix: no index visible before a smaller one.
    assert all(n == (0 if top is None else top + 1) for n, top in seen)
    for mine in acknowledged:  # one writer's actions: indexes in the order they returned
        assert mine == sorted(mine) and len(mine) == per
    every = sorted(i for mine in acknowledged for i in mine)
    assert every == list(range(base, base + writers * per)) == _indexes(engine)[base:]
