"""Per-day rollup of the case steps (``figures_daily``), kept in the transaction of the change.

One row per (Beijing day, outlet, matter version, staff member who took the step) with the
additive step counts of :func:`outlet.figures.cases.counts` (``NAMES``): how many
``case.create`` / 受理 / 办结 … steps happened that day, and for the completions the counts
that read the case (按期, 提前, 超期办结, working days, 补正 rounds) as they were when the
case was completed — what the completion's audit entry carries in ``terms``, so ``audit
stats`` sees the same values.

Kept by two session events registered for every ORM session: ``before_flush`` notes each new
:class:`CaseEvent` of a counted step, ``before_commit`` adds their counts with one upsert
(``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``, SQLite and PostgreSQL) — after
the action set the case's completion fields, inside the action's own transaction (or group
commit savepoint), so a rolled-back action leaves no count. Rows written without the ORM (the
benchmark's bulk load) are folded in by :func:`rebuild`, which recomputes the table from the
raw rows — the same query the tests compare the maintained table with.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel, col

from outlet.clock import local_day
from outlet.figures.base import local_date, n_if, sum_if
from outlet.models import Case, CaseEvent

ACCEPT = ("case.accept", "case.accept_rongque")
COMPLETE = ("case.approve", "case.reject", "case.complete_onsite")
STEPS = ("case.create", *ACCEPT, "case.refuse", "case.notice", "case.forward", *COMPLETE)
NAMES = ("received", "accepted", "refused", "notices", "rongque", "forwarded", "completed", "onsite",
         "on_time", "early", "completed_late", "sum_workdays", "n_workdays", "sum_corrections")  # fmt: skip
KEYS = ("day", "outlet_id", "matter_version_id", "staff_id")
_PENDING = "figures_daily.pending"


class CaseDaily(SQLModel, table=True):
    """Step counts of one Beijing day × outlet × matter version × staff member (the step's
    actor). ``matter_id`` follows from the version (kept for grouping without a join)."""

    __tablename__ = "figures_daily"

    day: date = Field(primary_key=True)
    outlet_id: int = Field(primary_key=True)
    matter_version_id: int = Field(primary_key=True)
    staff_id: int = Field(primary_key=True)
    matter_id: int
    received: int = 0
    accepted: int = 0
    refused: int = 0
    notices: int = 0
    rongque: int = 0
    forwarded: int = 0
    completed: int = 0
    onsite: int = 0
    on_time: int = 0
    early: int = 0
    completed_late: int = 0
    sum_workdays: int = 0
    n_workdays: int = 0
    sum_corrections: int = 0


def step_counts(action: str, case: Case) -> dict[str, int]:
    """The counts one step adds (``NAMES``; absent = 0). A completion reads the case's
    completion date, committed date, working days and 补正 rounds; a comparison with a
    missing date counts nothing (as SQL's NULL does in :func:`recomputed`)."""
    out = {"received": action == "case.create", "accepted": action in ACCEPT,
           "refused": action == "case.refuse", "notices": action == "case.notice",
           "rongque": action == "case.accept_rongque", "forwarded": action == "case.forward"}
    if action in COMPLETE:
        done, due = case.completed_on, case.due_on
        dated = done is not None and due is not None
        out |= {"completed": True, "onsite": action == "case.complete_onsite",
                "on_time": dated and done <= due, "early": dated and done < due,  # type: ignore[operator]
                "completed_late": dated and done > due,  # type: ignore[operator]
                "n_workdays": case.handling_workdays is not None}
        out["sum_workdays"] = case.handling_workdays or 0
        out["sum_corrections"] = case.corrections or 0
    return {k: int(v) for k, v in out.items() if v}


def _upsert(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        return
    table = CaseDaily.__table__  # type: ignore[attr-defined]
    ins = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    stmt = ins.values([{n: r.get(n, 0) for n in (*KEYS, "matter_id", *NAMES)} for r in rows])
    stmt = stmt.on_conflict_do_update(index_elements=list(KEYS),
                                      set_={n: table.c[n] + stmt.excluded[n] for n in NAMES})
    session.connection().execute(stmt)


def _note_steps(session: OrmSession, flush_context: Any = None, instances: Any = None) -> None:
    new = [o for o in session.new if isinstance(o, CaseEvent) and o.action in STEPS]
    if new:
        pending = session.info.setdefault(_PENDING, {})
        for ev in new:
            pending[id(ev)] = ev


def _roll_up(session: OrmSession) -> None:
    _note_steps(session)
    # a step undone by a savepoint's rollback is no longer in the session: not counted
    pending = [ev for ev in session.info.pop(_PENDING, {}).values() if ev in session]
    if not pending:
        return
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    with session.no_autoflush:
        for ev in pending:
            case = session.get(Case, ev.case_id)
            assert case is not None and case.id is not None
            key = (local_day(ev.at), case.outlet_id, case.matter_version_id, ev.actor_id)
            row = rows.setdefault(key, {**dict(zip(KEYS, key, strict=True)), "matter_id": case.matter_id})
            for n, v in step_counts(ev.action, case).items():
                row[n] = row.get(n, 0) + v
        _upsert(session, rows.values())  # type: ignore[arg-type]


def _forget(session: OrmSession, previous_transaction: Any = None) -> None:
    if previous_transaction is None or previous_transaction.parent is None:  # the whole transaction
        session.info.pop(_PENDING, None)


event.listen(OrmSession, "before_flush", _note_steps)
event.listen(OrmSession, "before_commit", _roll_up)
event.listen(OrmSession, "after_soft_rollback", _forget)


def recomputed(session: Session) -> Any:
    """SELECT of the table's rows recomputed from the raw case history (``caseevent`` joined
    with ``service_case``), columns in ``(*KEYS, "matter_id", *NAMES)`` order."""
    ev, c = CaseEvent, Case
    act = col(ev.action)
    done = act.in_(COMPLETE)
    cols = [
        n_if(act == "case.create"), n_if(act.in_(ACCEPT)), n_if(act == "case.refuse"),
        n_if(act == "case.notice"), n_if(act == "case.accept_rongque"), n_if(act == "case.forward"),
        n_if(done), n_if(act == "case.complete_onsite"),
        n_if(and_(done, col(c.completed_on) <= col(c.due_on))),
        n_if(and_(done, col(c.completed_on) < col(c.due_on))),
        n_if(and_(done, col(c.completed_on) > col(c.due_on))),
        sum_if(and_(done, col(c.handling_workdays).is_not(None)), col(c.handling_workdays)),
        n_if(and_(done, col(c.handling_workdays).is_not(None))),
        sum_if(done, col(c.corrections)),
    ]
    keys = [local_date(session, col(ev.at)), col(c.outlet_id), col(c.matter_version_id), col(ev.actor_id)]
    return (select(*keys, func.min(col(c.matter_id)), *cols).select_from(ev)
            .join(c, col(c.id) == ev.case_id).where(act.in_(STEPS)).group_by(*keys))


def rebuild(session: Session) -> int:
    """Recompute ``figures_daily`` from the raw rows (after a bulk load that bypassed the
    ORM, e.g. the benchmark's generator); returns the number of rows. Runs in the caller's
    transaction."""
    table = CaseDaily.__table__  # type: ignore[attr-defined]
    session.execute(delete(table))
    session.execute(insert(table).from_select([*KEYS, "matter_id", *NAMES], recomputed(session)))
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())
