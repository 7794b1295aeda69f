"""Demo queue, made through the real functions (authorized, audited, pushed like any other
step): default lines and counters for every outlet, one day of tickets in every state at
teller1's outlet, and a kiosk and a hall display for that outlet and the 24-hour outlet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet import devices
from outlet.queue import bookings, counters, defaults, tickets
from outlet.queue.hours import parse_hours
from outlet.queue.models import QueueCounter, QueueLine, Ticket
from outlet.workdays import WorkCalendar
from partners.models import Outlet, Staff

LOCAL = ZoneInfo("Asia/Shanghai")
DEMO_OUTLET = "HC-ICBC-01"  # teller1's
H24_OUTLET = "HC-ICBC-02"  # the 24-hour self-service outlet


def _staff(s: Session, username: str) -> Staff:
    return s.exec(select(Staff).where(Staff.username == username)).one()


def demo_day(outlet: Outlet, now: datetime) -> date:
    """Today when the outlet was open from 9:00 to 11:00 today already, else the last day
    it was (so every demo step lies in the past and inside opening hours)."""
    hours = parse_hours(outlet.opening_hours)
    local = now.replace(tzinfo=UTC).astimezone(LOCAL)
    day = local.date() if local.time() >= time(11, 0) else local.date() - timedelta(days=1)
    for _ in range(8):
        if not hours or any(a <= time(9, 0) and b >= time(11, 0) for a, b in hours.get(day.weekday(), [])):
            return day
        day -= timedelta(days=1)
    return day


def seed_demo_queue(engine: Engine, pseudonym_key: bytes, now: datetime | None = None) -> list[tuple[str, str]]:
    """Seed once (nothing when lines exist). Returns (device label, activation path) of the
    paired demo devices — the only time their tokens exist in clear."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    with Session(engine, expire_on_commit=False) as s:
        if s.exec(select(QueueLine.id)).first() is not None:
            return []
        admin, lead1, lead2, teller1 = (_staff(s, u) for u in ("admin", "lead1", "lead2", "teller1"))
        outlets = list(s.exec(select(Outlet).order_by(col(Outlet.id))).all())
    home = next(o for o in outlets if o.code == DEMO_OUTLET)
    h24 = next(o for o in outlets if o.code == H24_OUTLET)
    for o in outlets:
        counters.use_defaults(engine, admin, outlet_id=o.id, n_counters=3 if o.id == home.id else 2)
    links = []
    for lead, outlet in ((lead1, home), (lead2, h24)):
        for kind, label in (("kiosk", "大厅取号机"), ("hall_display", "大厅叫号屏")):
            _d, token = devices.pair(engine, lead, kind=kind, label=label, outlet_id=outlet.id)
            links.append((f"{outlet.name} · {label}", f"/devices/activate/{token}"))
    _tickets(engine, home, teller1, lead1, demo_day(home, now))
    _bookings(engine, home, now, pseudonym_key)
    return links


def _tickets(engine: Engine, outlet: Outlet, teller: Staff, lead: Staff, day: date) -> None:
    """One morning: every state and step, two staff at three counters; teller1 signs out at
    the end so the demo user signs in to counter 1 afresh."""
    clock = [datetime.combine(day, time(9, 0), LOCAL).astimezone(UTC).replace(tzinfo=None)]

    def at(minutes: float = 3) -> datetime:
        clock[0] += timedelta(minutes=minutes)
        return clock[0]

    with Session(engine) as s:
        lines = {ln.prefix: ln.id or 0 for ln in counters.lines_of(s, outlet.id or 0)}
        ctrs = {c.number: c.id or 0 for c in s.exec(select(QueueCounter).where(QueueCounter.outlet_id == outlet.id))}
        kiosk = s.exec(select(devices.Device).where(devices.Device.outlet_id == outlet.id,
                                                    devices.Device.kind == "kiosk")).first()
    kiosk_id = kiosk.id if kiosk else None
    counters.sign_in(engine, teller, ctrs[1], at=at(0))
    counters.sign_in(engine, lead, ctrs[2], at=at(1))

    def take(prefix: str, priority: str = "") -> Ticket:
        return tickets.issue(engine, outlet_id=outlet.id or 0, line_id=lines[prefix], priority=priority,
                             hub=None, device_id=kiosk_id, at=at(2))

    def steps(who: Staff, t: Ticket, *names: str) -> None:
        for name in names:
            tickets.step(engine, who, t.id or 0, name, hub=None, at=at(4 if name == "done" else 1))

    call: Callable[[Staff], Ticket] = lambda who: tickets.call_next(engine, who, hub=None, at=at(1))  # noqa: E731
    a1, a2, b1 = take("A"), take("A", "elderly"), take("B")
    assert call(teller).id == a2.id  # 绿色通道 first
    steps(teller, a2, "serve", "done")
    assert call(teller).id == a1.id
    steps(teller, a1, "serve", "hold", "serve", "done")
    assert call(lead).id == b1.id
    steps(lead, b1, "recall", "recall", "recall", "no_show")
    b2, c1 = take("B"), take("C")
    assert call(teller).id == b2.id
    steps(teller, b2, "serve")
    tickets.transfer(engine, teller, b2.id or 0, hub=None, line_id=lines["A"], counter_id=ctrs[2],
                     note="需办理社保业务", at=at())
    steps(teller, c1, "cancel")
    assert call(lead).id == b2.id  # transferred, kept its arrival time
    steps(lead, b2, "serve", "done")
    a3, a4, a5 = take("A"), take("A", "military"), take("A")
    assert call(lead).id == a4.id
    steps(lead, a4, "serve", "hold")  # left on hold: fetching a paper
    assert call(lead).id == a3.id
    steps(lead, a3, "serve")  # left serving at counter 2
    counters.sign_in(engine, lead, ctrs[3], at=at())  # the lead moves to counter 3
    assert call(lead).id == a5.id  # left called at counter 3
    take("A"), take("B"), take("C")  # left waiting
    counters.sign_out(engine, teller, at=at())


# invented people (the phone numbers are in no real numbering plan block in use here)
BOOKERS = [("周丽", "13700000001"), ("吴强", "13700000002"), ("郑敏", "13700000003"), ("冯刚", "13700000004"),
           ("陈红", "13700000005"), ("褚伟", "13700000006")]
BLOCKED_PHONE = "13700000099"


def _bookings(engine: Engine, outlet: Outlet, now: datetime, key: bytes) -> None:
    """The last week: bookings checked in, cancelled, and two no-shows of one phone (now
    blocked); the coming week: a few bookings a day."""
    with Session(engine) as s:
        cal, ahead = WorkCalendar.load(s), defaults.load(s).book_ahead_days
        line = s.exec(select(QueueLine).where(QueueLine.outlet_id == outlet.id, QueueLine.prefix == "A")).one()
        fresh = s.get(Outlet, outlet.id)
        assert fresh is not None
    today = (now + timedelta(hours=8)).date()
    past: list[date] = []
    day = today - timedelta(days=1)
    while len(past) < 5 and day > today - timedelta(days=20):
        with Session(engine) as s:
            if bookings.slots(s, fresh, line, day):
                past.append(day)
        day -= timedelta(days=1)

    def book(day: date, i: int, name: str, phone: str, at: datetime) -> bookings.Booking:
        with Session(engine) as s:
            slot = bookings.slots(s, fresh, line, day)[i]
        return bookings.create(engine, outlet_id=outlet.id or 0, line_id=line.id or 0, slot_start=slot.start,
                               name=name, phone=phone, pseudonym_key=key, at=at)

    for n, day in enumerate(reversed(past)):
        booked_at = datetime.combine(day - timedelta(days=1), time(2, 0))  # the day before, 10:00 Beijing
        done = book(day, 2, *BOOKERS[n % len(BOOKERS)], at=booked_at)
        bookings.check_in(engine, outlet_id=outlet.id or 0, code=done.code, hub=None, pseudonym_key=key,
                          at=done.slot_start - timedelta(minutes=5))
        if n < 2:
            book(day, 4, "钱多多", BLOCKED_PHONE, at=booked_at)  # never comes: two no-shows
        else:
            gone = book(day, 5, *BOOKERS[(n + 1) % len(BOOKERS)], at=booked_at)
            bookings.cancel(engine, gone.code, gone.phone[-4:], pseudonym_key=key, at=booked_at + timedelta(hours=1))
    bookings.sweep_no_shows(engine, pseudonym_key=key, at=now)
    for n, day in enumerate(bookings.bookable_days(cal, today, ahead)):
        for i in range(3):
            name, phone = BOOKERS[(n * 3 + i) % len(BOOKERS)]
            book(day, 2 * i + 1, name, phone, at=now)
