"""Working-day arithmetic with the Chinese holiday calendar.

Sources, strongest first:
1. ``HolidayOverride`` rows (the maintained calendar, e.g. next year's schedule once the
   State Council publishes it);
2. the bundled ``chinese_calendar`` package (holidays *and* make-up working days 调休);
3. for years the package does not cover and that have no maintained entries: Monday to
   Friday. Dates computed that way are flagged ``estimated`` so the UI can say so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import chinese_calendar
from sqlmodel import Session, col, select

from outlet.errors import InvalidInput
from outlet.models import HolidayOverride
from partners import refdata

refdata.watch(HolidayOverride)  # the cached calendar (WorkCalendar.cached)

ESTIMATED_NOTE = "该年度节假日安排尚未发布，按周末推算"
DUE_SOON_DAYS = 2


@dataclass(frozen=True)
class DueDate:
    day: date
    estimated: bool  # a year without a published holiday schedule was crossed


@dataclass
class WorkCalendar:
    overrides: Mapping[date, bool] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> WorkCalendar:
        """The maintained calendar from the database (a small table, read whole)."""
        rows = session.exec(select(HolidayOverride.day, HolidayOverride.is_workday)).all()
        return cls({day: bool(is_workday) for day, is_workday in rows})  # columns: no ORM objects

    @classmethod
    def cached(cls, session: Session) -> WorkCalendar:
        """:meth:`load`, kept between the requests of a process until the calendar (or other
        reference data) changes (:mod:`partners.refdata`). For pages; a write that decides
        by the calendar loads it inside its own transaction."""
        return refdata.cached(("calendar",), lambda: cls.load(session))

    def year_published(self, year: int) -> bool:
        """True when the holiday schedule of ``year`` is known (package or maintained)."""
        return any(d.year == year for d in self.overrides) or bundled_covers(year)

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return bool(self.overrides[day])
        return _bundled_workday(day)

    def add_workdays(self, start: date, days: int) -> DueDate:
        """The ``days``-th working day after ``start`` (``start`` itself is not counted;
        ``days == 0`` gives ``start``)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        current = start
        estimated = not self.year_published(start.year)
        remaining = days
        while remaining:
            current += timedelta(days=1)
            if not self.year_published(current.year):
                estimated = True
            if self.is_workday(current):
                remaining -= 1
        return DueDate(current, estimated)

    def workdays_between(self, start: date, end: date, stop: int | None = None) -> int:
        """Working days in (start, end]; negative when ``end`` is before ``start``.
        ``stop``: count no further than ``stop`` + 1 (enough to compare with ``stop``)."""
        if end < start:
            return -self.workdays_between(end, start)
        n = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_workday(current):
                n += 1
                if stop is not None and n > stop:
                    break
        return n

    def estimated(self, start: date, end: date) -> bool:
        """Whether a span crosses a year without a published schedule."""
        return any(not self.year_published(y) for y in range(start.year, end.year + 1))

    def due_soon_cutoff(self, today: date) -> date:
        """The last calendar date still "due soon" seen from ``today`` (the day before the
        (:data:`DUE_SOON_DAYS` + 1)-th working day after it): for SQL filters that must agree
        with :meth:`deadline_status`."""
        return self.add_workdays(today, DUE_SOON_DAYS + 1).day - timedelta(days=1)

    def deadline_status(self, today: date, due: date | None) -> str:
        """"overdue" (red), "due_soon" (yellow, ≤ 2 working days left) or "ok"."""
        if due is None:
            return "ok"
        if today > due:
            return "overdue"
        if self.workdays_between(today, due, stop=DUE_SOON_DAYS) <= DUE_SOON_DAYS:
            return "due_soon"
        return "ok"


DEADLINE_LABELS = {"overdue": "已超期", "due_soon": "即将到期", "ok": ""}


# --- maintaining the calendar (工作日历) ------------------------------------------------
KIND_LABELS = {False: "休", True: "班"}
KIND_TITLES = {False: "休息日", True: "调休上班日"}
KIND_CODES = {False: "holiday", True: "workday"}
KIND_WORDS: dict[str, bool] = {
    **dict.fromkeys(("休", "休息", "休息日", "放假", "假", "holiday", "off"), False),
    **dict.fromkeys(("班", "上班", "调休上班", "调休上班日", "工作日", "workday", "work"), True),
}
MIN_YEAR, MAX_YEAR = 2000, 2099
NAME_MAX = 64
SCHEDULE_MAX_LINES = 366
_DAY_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_SPLIT_RE = re.compile(r"[\s,，、;；\u3000]+")


class ScheduleEntry(NamedTuple):
    """One maintained day: a day off (``is_workday`` False) or a make-up working day."""

    day: date
    is_workday: bool
    name: str


@functools.lru_cache(maxsize=4096)
def _bundled_workday(day: date) -> bool:
    """The bundled package's answer (static data: memoized), Monday-Friday beyond it."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


@functools.lru_cache(maxsize=256)
def bundled_covers(year: int) -> bool:
    """Whether the bundled ``chinese_calendar`` package knows the schedule of ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def parse_day(raw: str) -> date | None:
    """``2027-01-01`` (also ``2027/1/1``, ``2027.1.1``, ``2027年1月1日``) or None."""
    match = _DAY_RE.match(raw.strip())
    if not match:
        return None
    try:
        day = date(*(int(g) for g in match.groups()))
    except ValueError:
        return None
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None


def parse_kind(raw: str) -> bool | None:
    """``True`` for a working day (班/上班/workday), ``False`` for a day off, else None."""
    return KIND_WORDS.get(raw.strip().lower())


def _entry_errors(day_raw: str, kind_raw: str, name: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if parse_day(day_raw) is None:
        errors["day"] = f"日期无效：请按 2027-01-01 的格式填写 {MIN_YEAR}–{MAX_YEAR} 年的日期"
    if parse_kind(kind_raw) is None:
        errors["kind"] = "类型无效：请填写“休”（休息日）或“班”（调休上班日）"
    if len(name) > NAME_MAX:
        errors["name"] = f"名称过长（最多 {NAME_MAX} 个字）"
    return errors


def check_entry(day_raw: str, kind_raw: str, name: str = "") -> ScheduleEntry:
    """One override from form fields; ``InvalidInput`` names each bad field."""
    name = name.strip()
    errors = _entry_errors(day_raw, kind_raw, name)
    if errors:
        raise InvalidInput("请检查标出的内容", errors=errors)
    day, kind = parse_day(day_raw), parse_kind(kind_raw)
    assert day is not None and kind is not None
    return ScheduleEntry(day, kind, name)


def parse_schedule(text: str) -> list[ScheduleEntry]:
    """Pasted lines ``日期 休|班 [名称]`` (blank lines and ``#`` comments skipped).

    Every line is checked before anything is returned: ``InvalidInput`` (field
    ``schedule``) names each bad line by its number, so nothing is applied half-way."""
    problems: list[str] = []
    entries: list[ScheduleEntry] = []
    seen: dict[date, int] = {}
    lines = text.splitlines()
    if len(lines) > SCHEDULE_MAX_LINES:
        raise InvalidInput(
            f"一次最多录入 {SCHEDULE_MAX_LINES} 行", errors={"schedule": "内容过多，请分批录入"}
        )
    for number, line in enumerate(lines, start=1):
        text_line = line.strip()
        if not text_line or text_line.startswith("#"):
            continue
        parts = _SPLIT_RE.split(text_line, maxsplit=2)
        if len(parts) < 2:
            problems.append(f"第 {number} 行：缺少类型，应为“日期 休/班 名称”")
            continue
        name = parts[2].strip() if len(parts) > 2 else ""
        day, kind = parse_day(parts[0]), parse_kind(parts[1])
        reasons = [
            why
            for bad, why in (
                (day is None, "日期无效（格式 2027-01-01）"),
                (kind is None, "类型应为“休”或“班”"),
                (len(name) > NAME_MAX, f"名称超过 {NAME_MAX} 个字"),
            )
            if bad
        ]
        if reasons:
            problems.append(f"第 {number} 行「{text_line[:40]}」：{'，'.join(reasons)}")
            continue
        assert day is not None and kind is not None
        if day in seen:
            problems.append(f"第 {number} 行：{day.isoformat()} 与第 {seen[day]} 行日期重复")
            continue
        seen[day] = number
        entries.append(ScheduleEntry(day, kind, name))
    if problems:
        raise InvalidInput("；".join(problems), errors={"schedule": "\n".join(problems)})
    if not entries:
        raise InvalidInput("请至少填写一行", errors={"schedule": "请至少填写一行“日期 休/班 名称”"})
    return entries


def year_overrides(session: Session, year: int) -> list[HolidayOverride]:
    """The maintained entries of ``year``, by date."""
    return list(
        session.exec(
            select(HolidayOverride)
            .where(col(HolidayOverride.day) >= date(year, 1, 1))
            .where(col(HolidayOverride.day) <= date(year, 12, 31))
            .order_by(col(HolidayOverride.day))
        ).all()
    )


def set_override(session: Session, entry: ScheduleEntry) -> ScheduleEntry | None:
    """Insert or replace the entry for ``entry.day``; returns what it replaced, if any."""
    row = session.get(HolidayOverride, entry.day)
    before = ScheduleEntry(row.day, row.is_workday, row.name) if row is not None else None
    if row is None:
        row = HolidayOverride(day=entry.day, is_workday=entry.is_workday, name=entry.name)
    else:
        row.is_workday, row.name = entry.is_workday, entry.name
    session.add(row)
    session.flush()
    return before


def apply_schedule(session: Session, entries: Iterable[ScheduleEntry]) -> int:
    """Insert or replace every entry (inside the caller's transaction); returns the count."""
    n = 0
    for entry in entries:
        set_override(session, entry)
        n += 1
    return n


def remove_override(session: Session, day: date) -> ScheduleEntry | None:
    """Delete the maintained entry of ``day``; returns what was removed (None: nothing)."""
    row = session.get(HolidayOverride, day)
    if row is None:
        return None
    removed = ScheduleEntry(row.day, row.is_workday, row.name)
    session.delete(row)
    session.flush()
    return removed


def audit_state(day: date, is_workday: bool | None) -> str | None:
    """Audit state of one day, e.g. ``calendar:2027-02-07:workday`` (None: no entry)."""
    if is_workday is None:
        return None
    return f"calendar:{day.isoformat()}:{KIND_CODES[is_workday]}"


def schedule_summary(entries: Iterable[ScheduleEntry]) -> str:
    """Audit state of a bulk import, e.g. ``calendar:2027:set-12`` (audit state names are
    ASCII codes: no spaces, ``+`` or Chinese)."""
    items = list(entries)
    years = "/".join(str(y) for y in sorted({e.day.year for e in items}))
    return f"calendar:{years}:set-{len(items)}"
