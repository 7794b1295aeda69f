"""The checkpointer: signing, refusing inconsistent checkpoints, key rotation, run loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from audit import merkle, store
from audit.checkpoint import open_checkpoint
from audit.errors import ConsistencyError, KeyFileError, LogStateError, UnknownKeyError
from audit.log import Checkpointer, latest_checkpoint
from audit.models import entries, nodes, tree
from audit.note import Signer
from audit.policy import Policy
from tests.audit.helpers import ORIGIN, fixed_signer

Append = Callable[..., list[int]]


def test_log_signs_a_c2sp_checkpoint_of_the_rfc_root(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    appender(engine, 6)
    cp = Checkpointer(ORIGIN, [log_signer]).sign_checkpoint(engine)
    with engine.connect() as c:
        leaves = list(store.leaves(c, 0, 6))
    assert cp.size == 6 and cp.root == merkle.MemoryTree.from_leaves(leaves).root()
    opened = open_checkpoint(cp.text(), Policy.build([log_signer.vkey]))
    assert opened.checkpoint.origin == ORIGIN and opened.checkpoint.size == 6
    text = cp.text().decode()
    assert text.startswith(f"{ORIGIN}\n6\n") and f"\n\n\u2014 {ORIGIN} " in text


def test_log_does_not_resign_without_new_entries(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    log = Checkpointer(ORIGIN, [log_signer])
    appender(engine, 2)
    first = log.sign_checkpoint(engine)
    assert log.sign_checkpoint(engine).id == first.id
    appender(engine, 1, 2)
    assert log.sign_checkpoint(engine).size == 3


def test_log_refuses_to_sign_a_checkpoint_inconsistent_with_the_last(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    log = Checkpointer(ORIGIN, [log_signer])
    appender(engine, 4)
    log.sign_checkpoint(engine)
    # Someone rewrites history: entry 1's hash and the stored subtree above it change.
    with engine.begin() as c:
        c.execute(update(entries).where(entries.c.idx == 1).values(leaf_hash=b"\x01" * 32))
        c.execute(update(nodes).values(hash=b"\x02" * 32))
    appender(engine, 1, 4)
    with pytest.raises(ConsistencyError, match="refusing to sign"):
        log.sign_checkpoint(engine)


def test_log_refuses_to_sign_when_the_tree_shrank(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    log = Checkpointer(ORIGIN, [log_signer])
    appender(engine, 4)
    log.sign_checkpoint(engine)
    with engine.begin() as c:
        c.execute(update(tree).values(size=2))
        c.execute(entries.delete().where(entries.c.idx >= 2))
    with pytest.raises(LogStateError, match="backup"):
        log.sign_checkpoint(engine, force=True)


def test_log_key_rotation_both_keys_sign_and_either_verifies(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    new_key = fixed_signer(ORIGIN, "log key 2")
    appender(engine, 3)
    cp = Checkpointer(ORIGIN, [log_signer, new_key]).sign_checkpoint(engine)
    for key in (log_signer, new_key):
        open_checkpoint(cp.text(), Policy.build([key.vkey]))
    stranger = fixed_signer(ORIGIN, "someone else")
    with pytest.raises(UnknownKeyError):
        open_checkpoint(cp.text(), Policy.build([stranger.vkey]))


def test_log_rejects_signers_not_named_after_the_origin(log_signer: Signer) -> None:
    with pytest.raises(KeyFileError):
        Checkpointer("other.example/log", [log_signer])
    assert Checkpointer(ORIGIN, [log_signer]).vkeys() == [log_signer.vkey]


def test_log_run_loop_signs_new_entries_in_the_background(
    engine: Engine, log_signer: Signer, appender: Append
) -> None:
    log = Checkpointer(ORIGIN, [log_signer])

    async def scenario() -> int:
        task = asyncio.create_task(log.run(engine, interval=0.02))
        appender(engine, 3)
        for _ in range(200):
            await asyncio.sleep(0.02)
            with engine.connect() as c:
                cp = latest_checkpoint(c)
            if cp is not None and cp.size == 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cp2 = await log.sign_now(engine)
        return cp2.size

    assert asyncio.run(scenario()) == 3
