"""Working-day arithmetic with the Chinese holiday calendar.

Sources, strongest first:
1. ``HolidayOverride`` rows (the maintained calendar, e.g. next year's schedule once the
   State Council publishes it);
2. the bundled ``chinese_calendar`` package (holidays *and* make-up working days 调休);
3. for years the package does not cover and that have no maintained entries: Monday to
   Friday. Dates computed that way are flagged ``estimated`` so the UI can say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar
from sqlmodel import Session, select

from outlet.models import HolidayOverride

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
        rows = session.exec(select(HolidayOverride)).all()
        return cls({r.day: r.is_workday for r in rows})

    def year_published(self, year: int) -> bool:
        """True when the holiday schedule of ``year`` is known (package or maintained)."""
        if any(d.year == year for d in self.overrides):
            return True
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return bool(self.overrides[day])
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5

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

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.workdays_between(end, start)
        n = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_workday(current):
                n += 1
        return n

    def estimated(self, start: date, end: date) -> bool:
        """Whether a span crosses a year without a published schedule."""
        return any(not self.year_published(y) for y in range(start.year, end.year + 1))

    def deadline_status(self, today: date, due: date | None) -> str:
        """"overdue" (red), "due_soon" (yellow, ≤ 2 working days left) or "ok"."""
        if due is None:
            return "ok"
        if today > due:
            return "overdue"
        if self.workdays_between(today, due) <= DUE_SOON_DAYS:
            return "due_soon"
        return "ok"


DEADLINE_LABELS = {"overdue": "已超期", "due_soon": "即将到期", "ok": ""}
