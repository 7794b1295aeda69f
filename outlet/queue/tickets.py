"""Tickets (取号, 叫号): issue, and the steps of a ticket at a counter.

States and steps (one table, :data:`STEPS`; the spec is issue 10 §2 and DOMAIN.md "Queue")::

    issue     → waiting
    call      waiting → called            (呼叫下一位: the next ticket, atomically)
    recall    called  → called            (重呼, at most max_recalls times: the center's default, 3)
    no_show   called  → no_show           (过号/弃号, only after max_recalls recalls)
    serve     called | hold → serving     (开始办理; from hold = back from fetching a paper)
    transfer  serving → waiting           (转移 to a line and/or counter; arrival time kept)
    hold      serving → hold              (挂起)
    done      serving → done              (完成)
    cancel    waiting → cancelled         (取消)

Every step appends a :class:`TicketEvent` (durations come only from those), writes one audit
entry ``ticket.<step>`` — outlet, line prefix, counter number, ticket number, priority code,
arrival time; no name or phone — and publishes ``queue.outlet.<id>`` on the event hub, all in
the same transaction. Refusals are audited too.

Two counters calling at once never get the same ticket: on PostgreSQL the candidate row is
taken with ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite every write transaction is
``BEGIN IMMEDIATE`` (one writer at a time).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.clock import local_day
from outlet.events import Hub
from outlet.queue import defaults
from outlet.queue.counters import signed_in_counter
from outlet.queue.errors import (
    CounterBusy,
    IssuingClosed,
    NoOneWaiting,
    NotSignedIn,
    QueueInputError,
    QueueNotFound,
    TicketTransitionRefused,
)
from outlet.queue.hours import hours_label, staffed_at
from outlet.queue.models import QueueCounter, QueueLine, Ticket, TicketEvent, TicketSerial
from partners.delegation import ActionContext, delegated_action, unattended_action
from partners.models import Outlet, Staff

PRIORITY_LABELS = {"elderly": "老年人", "disabled": "残疾人", "pregnant": "孕产妇", "military": "军人",
                   "booked": "预约"}
WALK_IN_PRIORITIES = ("elderly", "disabled", "pregnant", "military")  # 绿色通道 reason codes
STATE_LABELS = {"waiting": "等候中", "called": "已呼叫", "serving": "办理中", "hold": "挂起",
                "done": "已办结", "no_show": "已过号", "cancelled": "已取消"}
ACTIVE = ("called", "serving")
STEPS: dict[str, tuple[frozenset[str], str]] = {
    "call": (frozenset({"waiting"}), "called"),
    "recall": (frozenset({"called"}), "called"),
    "no_show": (frozenset({"called"}), "no_show"),
    "serve": (frozenset({"called", "hold"}), "serving"),
    "transfer": (frozenset({"serving"}), "waiting"),
    "hold": (frozenset({"serving"}), "hold"),
    "done": (frozenset({"serving"}), "done"),
    "cancel": (frozenset({"waiting"}), "cancelled"),
    "link": (frozenset({"serving"}), "serving"),  # 关联办件 (outlet.queue.casework)
}
# Steps that take a ticket out of 办理中: a serving span (the service time) runs from ``serve`` to
# the first of these; serving → serving steps (``link``) keep it open. audit/stats.py repeats the
# tuple (the offline verifier imports nothing of outlet/; a test checks both agree).
LEAVES_SERVING = tuple(k for k, (src, to) in STEPS.items() if "serving" in src and to != "serving")
STEP_LABELS = {"issue": "取号", "call": "呼叫", "recall": "重呼", "no_show": "过号", "serve": "开始办理",
               "transfer": "转移", "hold": "挂起", "done": "完成", "cancel": "取消", "link": "关联办件"}


def call_order() -> tuple[Any, ...]:
    """The calling order: 绿色通道 and booked tickets first, then arrival time (a
    transferred ticket keeps its own), then issue order."""
    return (case((col(Ticket.priority) == "", 1), else_=0), col(Ticket.issued_at), col(Ticket.id))


def served_by(counter: QueueCounter) -> Any:
    """Waiting tickets ``counter`` may call: sent to it, or of one of its lines and not sent
    to another counter."""
    return or_(col(Ticket.for_counter_id) == counter.id,
               and_(col(Ticket.for_counter_id).is_(None), col(Ticket.line_id).in_(counter.line_ids or [0])))


def topic(outlet_id: int) -> str:
    """The hub topic of an outlet's queue (counter panels, hall displays, kiosks)."""
    return f"queue.outlet.{outlet_id}"


def utc_text(t: datetime | None) -> str | None:
    return t.isoformat(timespec="microseconds") + "Z" if t else None


def leaf(t: Ticket, line: QueueLine, counter: QueueCounter | None, **more: Any) -> dict[str, Any]:
    """The ``queue`` field of a ticket step's audit entry (codes and times only)."""
    return {"queue": {"line": line.prefix, "ticket": t.number, "counter": counter.number if counter else None,
                      "priority": t.priority or None, "arrived": utc_text(t.issued_at), **more}}


def record(act: ActionContext, hub: Hub | None, t: Ticket, kind: str, line: QueueLine,
           counter: QueueCounter | None, *, to_state: str, staff_id: int | None = None,
           device_id: int | None = None, note: str = "", **more: Any) -> None:
    """Move ``t`` to ``to_state``: event row, audit fields and hub event (same transaction)."""
    s = act.session
    before = t.state if kind != "issue" else None
    t.state = to_state
    s.add(t)
    s.flush()
    assert t.id is not None and line.id is not None
    event = TicketEvent(ticket_id=t.id, kind=kind, from_state=before, to_state=to_state, at=act.at,
                        line_id=line.id, counter_id=counter.id if counter else None, staff_id=staff_id,
                        device_id=device_id, case_id=t.case_id, note=note[:200])
    s.add(event)

    def remember(index: int) -> None:  # the entry's log index, known right after the append
        event.audit_index = index
        s.add(event)

    act.on_recorded.append(remember)
    act.state = (before, to_state)
    act.extra = leaf(t, line, counter, **{k: v for k, v in more.items() if v is not None})
    if hub is not None:
        hub.publish_in(s, topic(t.outlet_id), {
            "step": kind, "ticket": t.number, "line": line.prefix, "state": to_state,
            "counter": counter.number if counter else None, "counter_name": counter.name if counter else None})


def _serial(s: Session, outlet_id: int, prefix: str, day_key: str) -> int:
    """Next serial of (outlet, prefix, day): one atomic upsert on SQLite and PostgreSQL."""
    table = TicketSerial.__table__  # type: ignore[attr-defined]
    ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (ins(table).values(outlet_id=outlet_id, prefix=prefix, day=day_key, last=1)
            .on_conflict_do_update(index_elements=["outlet_id", "prefix", "day"], set_={"last": table.c.last + 1})
            .returning(table.c.last))
    return int(s.connection().execute(stmt).scalar_one())


def issue(engine: Engine, *, outlet_id: int, line_id: int, priority: str = "", hub: Hub | None,
          staff: Staff | None = None, device_id: int | None = None, channel: str = "kiosk",
          booking_id: int | None = None, at: datetime | None = None) -> Ticket:
    """Issue a ticket of ``line_id`` at ``outlet_id`` — by a staff member (delegated
    ``ticket.issue``) or by a kiosk (``device_id``; audited as role "device").

    ``priority``: "" or a 绿色通道 reason code (:data:`WALK_IN_PRIORITIES`; "booked" only for
    booking check-ins). Numbers are the line's prefix + a serial per Asia/Shanghai business
    day. Raises :class:`IssuingClosed` outside the outlet's opening hours, past the line's
    daily cap or for a stopped line; :class:`QueueInputError` for an unknown priority."""
    allowed = ("", *WALK_IN_PRIORITIES, *(("booked",) if channel == "booking" else ()))
    if priority not in allowed:
        raise QueueInputError(errors={"priority": "请选择有效的绿色通道类别"})
    with Session(engine) as s0:
        outlet = s0.get(Outlet, outlet_id)
    if outlet is None:
        raise QueueNotFound("未找到该网点")
    if staff is not None:
        ctx = delegated_action(engine, staff, "ticket.issue", outlet=outlet, at=at)
    else:
        ctx = unattended_action(engine, actor_id=device_id or 0, role="device" if device_id else "applicant",
                                action="ticket.issue", outlet=outlet, at=at)
    with ctx as act:
        t = issue_in(act, hub, outlet, line_id, priority=priority, channel=channel, booking_id=booking_id,
                     staff_id=staff.id if staff else None, device_id=device_id)
    return t


def issue_in(act: ActionContext, hub: Hub | None, outlet: Outlet, line_id: int, *, priority: str,
             channel: str, booking_id: int | None, staff_id: int | None, device_id: int | None) -> Ticket:
    """Issue inside an open audited action (see :func:`issue`; also used by booking
    check-in, which issues its priority ticket in the same transaction)."""
    s = act.session
    line = s.get(QueueLine, line_id)
    if line is None or line.outlet_id != outlet.id:
        raise QueueNotFound("未找到该业务类型")
    if not line.active:
        raise IssuingClosed(f"「{line.name}」暂停取号")
    if not outlet.active or not staffed_at(outlet, act.at):
        raise IssuingClosed(f"当前不在取号时间（营业时间：{hours_label(outlet)}）")
    day = local_day(act.at)
    serial = _serial(s, outlet.id or 0, line.prefix, day.strftime("%Y%m%d"))
    if serial > line.daily_cap:
        raise IssuingClosed(f"「{line.name}」今日号票已发完（每日限 {line.daily_cap} 号），请明日再来或预约办理")
    t = Ticket(outlet_id=outlet.id or 0, line_id=line_id, day=day, serial=serial,
               number=f"{line.prefix}{serial:03d}", priority=priority, channel=channel,
               booking_id=booking_id, issued_at=act.at, public_code=secrets.token_urlsafe(9))
    record(act, hub, t, "issue", line, None, to_state="waiting", staff_id=staff_id, device_id=device_id,
           booking=booking_id)
    return t


@contextmanager
def at_counter(engine: Engine, actor: Staff, step: str, *, at: datetime | None = None,
               case: str | None = None) -> Iterator[tuple[ActionContext, QueueCounter]]:
    """A delegated ``ticket.<step>`` by ``actor`` at the counter they are signed in to."""
    with Session(engine) as s0:
        outlet = s0.get(Outlet, actor.outlet_id) if actor.outlet_id else None
    if outlet is None:
        raise NotSignedIn("仅网点工作人员可以叫号")
    with delegated_action(engine, actor, f"ticket.{step}", outlet=outlet, at=at, case=case) as act:
        counter = signed_in_counter(act.session, actor.id or 0, act.at)
        if counter is None:
            raise NotSignedIn()
        yield act, counter


def _own_ticket(s: Session, counter: QueueCounter, ticket_id: int, step: str) -> tuple[Ticket, QueueLine]:
    """The ticket for ``step`` at ``counter`` (locked), or a refusal saying why not."""
    t = s.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
    if t is None or t.outlet_id != counter.outlet_id:
        raise QueueNotFound()
    allowed, _to = STEPS[step]
    if t.state not in allowed:
        raise TicketTransitionRefused(
            f"{t.number} 当前{STATE_LABELS.get(t.state, t.state)}，不能{STEP_LABELS[step]}")
    if t.state != "waiting" and t.counter_id != counter.id:
        raise TicketTransitionRefused(f"{t.number} 不在本窗口办理")
    line = s.get(QueueLine, t.line_id)
    assert line is not None
    return t, line


def _counter_busy(s: Session, counter: QueueCounter, day: Any) -> None:
    busy = s.exec(select(Ticket.number).where(Ticket.counter_id == counter.id, Ticket.day == day,
                                              col(Ticket.state).in_(ACTIVE))).first()
    if busy is not None:
        raise CounterBusy(f"本窗口的 {busy} 尚未办结，请先完成当前号")


def call_next(engine: Engine, actor: Staff, *, hub: Hub | None, at: datetime | None = None) -> Ticket:
    """呼叫下一位: the next waiting ticket this counter serves — 绿色通道 and booked tickets
    first, then by arrival time — called to the actor's counter. Raises
    :class:`NoOneWaiting`, :class:`CounterBusy` or :class:`NotSignedIn`."""
    with at_counter(engine, actor, "call", at=at) as (act, counter):
        s, day = act.session, local_day(act.at)
        _counter_busy(s, counter, day)
        q = (select(Ticket).where(Ticket.outlet_id == counter.outlet_id, Ticket.day == day,
                                  Ticket.state == "waiting", served_by(counter))
             .order_by(*call_order()).limit(1).with_for_update(skip_locked=True))
        t = s.exec(q).first()
        if t is None:
            raise NoOneWaiting()
        line = s.get(QueueLine, t.line_id)
        assert line is not None
        t.counter_id, t.for_counter_id, t.staff_id, t.called_at, t.recalls = counter.id, None, actor.id, act.at, 0
        record(act, hub, t, "call", line, counter, to_state="called", staff_id=actor.id)
    return t


def step(engine: Engine, actor: Staff, ticket_id: int, name: str, *, hub: Hub | None,
         at: datetime | None = None, note: str = "") -> Ticket:
    """One of recall, no_show, serve, hold, done, cancel on a ticket at the actor's counter.
    Raises :class:`TicketTransitionRefused` when the ticket's state does not allow it."""
    if name not in STEPS or name in ("call", "transfer", "link"):
        raise ValueError(f"unknown step {name!r}")
    with at_counter(engine, actor, name, at=at) as (act, counter):
        s = act.session
        t, line = _own_ticket(s, counter, ticket_id, name)
        more: dict[str, Any] = {}
        max_recalls = defaults.load(s).max_recalls if name in ("recall", "no_show") else 0
        if name == "recall":
            if t.recalls >= max_recalls:
                raise TicketTransitionRefused(f"{t.number} 已重呼 {max_recalls} 次，请过号")
            t.recalls += 1
            t.called_at = act.at
            more["recalls"] = t.recalls
        elif name == "no_show" and t.recalls < max_recalls:
            raise TicketTransitionRefused(f"{t.number} 须重呼 {max_recalls} 次无人应答后才能过号（已重呼 {t.recalls} 次）")
        elif name == "serve" and t.state == "hold":
            _counter_busy(s, counter, t.day)
        if name == "cancel":
            t.for_counter_id = None
        act.case = _case_number(s, t)
        record(act, hub, t, name, line, counter, to_state=STEPS[name][1], staff_id=actor.id, note=note, **more)
    return t


MAX_NOTE = 64  # characters of a transfer's comment (the panel's field has the same maxlength)


def transfer(engine: Engine, actor: Staff, ticket_id: int, *, hub: Hub | None, line_id: int | None = None,
             counter_id: int | None = None, note: str = "", at: datetime | None = None) -> Ticket:
    """转移: a serving ticket goes back to waiting for another line and/or counter of the
    outlet, keeping its number and arrival time (so it is called ahead of later arrivals)."""
    if line_id is None and counter_id is None:
        raise QueueInputError(errors={"line_id": "请选择转往的业务类型或窗口"})
    if len(note.strip()) > MAX_NOTE:
        raise QueueInputError(errors={"note": f"转移说明不超过 {MAX_NOTE} 字（现为 {len(note.strip())} 字）"})
    with at_counter(engine, actor, "transfer", at=at) as (act, counter):
        s = act.session
        t, line = _own_ticket(s, counter, ticket_id, "transfer")
        new_line = s.get(QueueLine, line_id) if line_id else line
        target = s.get(QueueCounter, counter_id) if counter_id else None
        if new_line is None or new_line.outlet_id != t.outlet_id or not new_line.active:
            raise QueueInputError(errors={"line_id": "转往的业务类型无效"})
        if counter_id and (target is None or target.outlet_id != t.outlet_id or target.id == counter.id):
            raise QueueInputError(errors={"counter_id": "转往的窗口无效"})
        t.line_id, t.for_counter_id, t.counter_id, t.staff_id, t.recalls = new_line.id or 0, counter_id, None, None, 0
        act.case = _case_number(s, t)
        record(act, hub, t, "transfer", line, counter, to_state="waiting", staff_id=actor.id, note=note,
               to_line=new_line.prefix, to_counter=target.number if target else None)
    return t


def _case_number(s: Session, t: Ticket) -> str | None:
    from outlet.models import Case

    if t.case_id is None:
        return None
    c = s.get(Case, t.case_id)
    return c.number if c else None
