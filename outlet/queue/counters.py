"""Service lines (业务类型) and counters (窗口) of an outlet, managed by the outlet lead, and
the teller's daily sign-in to one counter.

Every change is a delegated, audited action (``queue.line.edit``, ``queue.counter.edit``,
``queue.sign_in``, ``queue.sign_out``). Center defaults (:mod:`outlet.queue.defaults`, set by
the center admin): the lines a new outlet starts with when the lead presses "use defaults",
and the slot settings of a new line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.clock import local_day
from outlet.intake import checked_text, clean_label
from outlet.queue import defaults
from outlet.queue.errors import QueueError, QueueInputError, QueueNotFound
from outlet.queue.models import CounterSignIn, QueueCounter, QueueLine
from partners.delegation import delegated_action
from partners.models import Outlet, Staff, utcnow
from partners.numbers import ascii_int


@dataclass(frozen=True)
class LineForm:
    """The lead's line form, validated by :func:`LineForm.clean` (raises QueueInputError)."""

    prefix: str
    name: str
    daily_cap: str = "200"
    warn_minutes: str = "30"
    slot_capacity: str = "4"
    bookable: bool = True
    active: bool = True

    def clean(self) -> dict[str, object]:
        values, errors = defaults.clean_line({"prefix": self.prefix, "name": self.name, "daily_cap": self.daily_cap,
                                              "warn_minutes": self.warn_minutes, "slot_capacity": self.slot_capacity})
        if errors:
            raise QueueInputError(errors=errors)
        return {**values, "bookable": self.bookable, "active": self.active}


def lines_of(session: Session, outlet_id: int, *, active_only: bool = False) -> list[QueueLine]:
    q = select(QueueLine).where(QueueLine.outlet_id == outlet_id)
    if active_only:
        q = q.where(col(QueueLine.active))
    return list(session.exec(q.order_by(col(QueueLine.prefix))).all())


def counters_of(session: Session, outlet_id: int) -> list[QueueCounter]:
    return list(session.exec(select(QueueCounter).where(QueueCounter.outlet_id == outlet_id)
                             .order_by(col(QueueCounter.number))).all())


def _outlet(engine: Engine, actor: Staff, outlet_id: int | None = None) -> Outlet:
    """``outlet_id`` (the center admin setting up an outlet) or the actor's own outlet."""
    oid = outlet_id if outlet_id is not None else actor.outlet_id
    with Session(engine) as s:
        outlet = s.get(Outlet, oid) if oid else None
    if outlet is None:
        raise QueueNotFound("仅网点工作人员可以使用排队叫号")
    return outlet


def save_line(engine: Engine, actor: Staff, form: LineForm, *, line_id: int | None = None,
              outlet_id: int | None = None, at: datetime | None = None) -> QueueLine:
    """Create or change a line of the actor's outlet (``queue.line.edit``; the center admin
    names ``outlet_id``). Raises QueueInputError (bad field, prefix taken) or a delegation
    refusal (neither the outlet's lead nor the admin)."""
    values = form.clean()
    outlet = _outlet(engine, actor, outlet_id)
    with delegated_action(engine, actor, "queue.line.edit", outlet=outlet, at=at) as act:
        s = act.session
        taken = s.exec(select(QueueLine).where(QueueLine.outlet_id == outlet.id,
                                               QueueLine.prefix == values["prefix"])).first()
        if taken is not None and taken.id != line_id:
            raise QueueInputError(errors={"prefix": f"号票字母 {values['prefix']} 已被「{taken.name}」使用"})
        line = s.get(QueueLine, line_id) if line_id else QueueLine(
            outlet_id=outlet.id or 0, prefix="", name="", slot_minutes=defaults.load(s).slot_minutes)
        if line is None or line.outlet_id != outlet.id:
            raise QueueNotFound("未找到该业务类型")
        before = "active" if line.id and line.active else None
        for k, v in values.items():
            setattr(line, k, v)
        s.add(line)
        s.flush()
        act.state = (before, "active" if line.active else "stopped")
    return line


def save_counter(engine: Engine, actor: Staff, *, number: str, name: str, line_ids: list[int],
                 is_open: bool = True, counter_id: int | None = None, outlet_id: int | None = None,
                 at: datetime | None = None) -> QueueCounter:
    """Create or change a counter of the actor's outlet (``queue.counter.edit``)."""
    raw = ascii_int(number, low=1, high=99)
    name = name.strip() or (f"{raw}号窗口" if raw is not None else "")
    errors: dict[str, str] = {}
    if raw is None:
        errors["number"] = "窗口号须为 1–99 的整数"
    name = checked_text(name, clean_label, errors, "name", "请填写窗口名称", "窗口名称不超过 32 字")
    if not line_ids:
        errors["line_ids"] = "请至少选择一个业务类型"
    if errors or raw is None:
        raise QueueInputError(errors=errors)
    outlet = _outlet(engine, actor, outlet_id)
    with delegated_action(engine, actor, "queue.counter.edit", outlet=outlet, at=at) as act:
        s = act.session
        own = {ln.id for ln in lines_of(s, outlet.id or 0)}
        if not set(line_ids) <= own:
            raise QueueInputError(errors={"line_ids": "所选业务类型不属于本网点"})
        taken = s.exec(select(QueueCounter).where(QueueCounter.outlet_id == outlet.id,
                                                  QueueCounter.number == int(raw))).first()
        if taken is not None and taken.id != counter_id:
            raise QueueInputError(errors={"number": f"{raw}号窗口已存在"})
        counter = s.get(QueueCounter, counter_id) if counter_id else QueueCounter(outlet_id=outlet.id or 0, number=0, name="")
        if counter is None or counter.outlet_id != outlet.id:
            raise QueueNotFound("未找到该窗口")
        before = ("open" if counter.open else "closed") if counter.id else None
        counter.number, counter.name, counter.line_ids, counter.open = int(raw), name, sorted(line_ids), is_open
        s.add(counter)
        s.flush()
        act.state = (before, "open" if is_open else "closed")
    return counter


def use_defaults(engine: Engine, actor: Staff, *, outlet_id: int | None = None, n_counters: int = 1,
                 at: datetime | None = None) -> list[QueueLine]:
    """Create the center's default lines (:mod:`outlet.queue.defaults`; those whose prefix is
    still free) and, when the outlet has no counter, ``n_counters`` counters serving all of them."""
    oid = _outlet(engine, actor, outlet_id).id or 0
    with Session(engine) as s:
        have = {ln.prefix for ln in lines_of(s, oid)}
        center = defaults.load(s)
    made = [save_line(engine, actor, LineForm(d["prefix"], d["name"], str(d["daily_cap"]), str(d["warn_minutes"]),
                                              str(center.slot_capacity)), outlet_id=oid, at=at)
            for d in center.lines if d["prefix"] not in have]
    with Session(engine) as s:  # closed before the writes below (SQLite: one writer at a time)
        ids = [] if counters_of(s, oid) else [ln.id or 0 for ln in lines_of(s, oid)]
    for n in range(1, n_counters + 1 if ids else 1):
        save_counter(engine, actor, number=str(n), name=f"{n}号窗口", line_ids=ids, outlet_id=oid, at=at)
    return made


def signed_in_counter(session: Session, staff_id: int, at: datetime | None = None) -> QueueCounter | None:
    """The counter ``staff_id`` is signed in to today (Asia/Shanghai), or None."""
    day = local_day(at or utcnow())
    row = session.exec(
        select(QueueCounter).join(CounterSignIn, col(CounterSignIn.counter_id) == QueueCounter.id)
        .where(CounterSignIn.staff_id == staff_id, CounterSignIn.day == day,
               col(CounterSignIn.ended_at).is_(None))
    ).first()
    return row


def sign_in(engine: Engine, actor: Staff, counter_id: int, *, at: datetime | None = None) -> QueueCounter:
    """Sign ``actor`` in to a counter of their outlet for today (``queue.sign_in``). Ends
    the actor's other sign-in; refuses a counter another teller holds or a closed one."""
    outlet = _outlet(engine, actor)
    with delegated_action(engine, actor, "queue.sign_in", outlet=outlet, at=at) as act:
        s, day = act.session, local_day(act.at)
        counter = s.get(QueueCounter, counter_id)
        if counter is None or counter.outlet_id != outlet.id:
            raise QueueNotFound("未找到该窗口")
        if not counter.open:
            raise QueueError(f"{counter.name}已关闭，请选择其他窗口")
        rows = s.exec(select(CounterSignIn).where(CounterSignIn.day == day, col(CounterSignIn.ended_at).is_(None))
                      .where((CounterSignIn.staff_id == actor.id) | (CounterSignIn.counter_id == counter_id))
                      .with_for_update()).all()
        for row in rows:
            if row.counter_id == counter_id and row.staff_id != actor.id:
                raise QueueError(f"{counter.name}已有其他工作人员签到")
        for row in rows:
            row.ended_at = act.at
            s.add(row)
        s.add(CounterSignIn(counter_id=counter_id, staff_id=actor.id or 0, day=day, started_at=act.at))
        act.state = (None, "signed_in")
        act.extra = {"queue": {"line": None, "ticket": None, "counter": counter.number,
                               "priority": None, "arrived": None}}
    return counter


def sign_out(engine: Engine, actor: Staff, *, at: datetime | None = None) -> None:
    """End the actor's sign-in of today (``queue.sign_out``); nothing to end is fine."""
    outlet = _outlet(engine, actor)
    with delegated_action(engine, actor, "queue.sign_out", outlet=outlet, at=at) as act:
        rows = act.session.exec(select(CounterSignIn).where(
            CounterSignIn.staff_id == actor.id, col(CounterSignIn.ended_at).is_(None))).all()
        for row in rows:
            row.ended_at = act.at
            act.session.add(row)
        act.state = ("signed_in", "signed_out")
