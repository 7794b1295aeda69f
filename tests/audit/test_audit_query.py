"""Search, get_entry and list_checkpoints for the auditor UI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from audit import get_entry, list_checkpoints, search_entries
from audit.log import Checkpointer
from audit.note import Signer
from tests.audit.helpers import ORIGIN

Append = Callable[..., list[int]]


def test_query_search_filters_and_keyset_pages(engine: Engine, appender: Append) -> None:
    appender(engine, 30)
    with Session(engine) as s:
        seen: list[int] = []
        after = None
        while True:
            page = search_entries(s, outlet="OUT2", limit=4, after_index=after)
            seen += [e.index for e in page.entries]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == [i for i in range(29, -1, -1) if i % 3 == 2]
        assert all(e.entry["outlet"] == "OUT2" for e in search_entries(s, outlet="OUT2").entries)
        assert [e.index for e in search_entries(s, actor=101, limit=100).entries] == [29, 22, 15, 8, 1]
        case = get_entry(s, 5)
        assert case is not None
        hits = search_entries(s, case=case.entry["case"]).entries
        assert [e.index for e in hits] == [5]
        assert search_entries(s, matter="113702110000", action="case.accept",
                              date_from=date(2026, 11, 21), date_to=date(2026, 11, 21),
                              limit=1000).entries[0].index == 29  # fmt: skip
        assert search_entries(s, date_from=date(2026, 11, 22)).entries == []
        assert [e.index for e in search_entries(s, limit=3, newest_first=False).entries] == [0, 1, 2]


def test_query_get_entry_returns_leaf_and_integration_state(
    engine: Engine, appender: Append, log_signer: Signer
) -> None:
    appender(engine, 3)
    with Session(engine) as s:
        e = get_entry(s, 1)
        assert e is not None and not e.integrated and e.leaf.startswith(b'{"action"')
        assert get_entry(s, 99) is None
    Checkpointer(ORIGIN, [log_signer]).sign_checkpoint(engine)
    with Session(engine) as s:
        e = get_entry(s, 1)
        assert e is not None and e.integrated


def test_query_list_checkpoints_newest_first(engine: Engine, appender: Append, log_signer: Signer) -> None:
    log = Checkpointer(ORIGIN, [log_signer])
    for i in range(3):
        appender(engine, 2, 2 * i)
        log.sign_checkpoint(engine)
    with Session(engine) as s:
        cps = list_checkpoints(s, limit=2)
        assert [c.size for c in cps] == [6, 4]
        assert [c.size for c in list_checkpoints(s, before_id=cps[-1].id)] == [2]
