from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from outlet.models import HolidayOverride
from outlet.workdays import WorkCalendar


def test_add_workdays_skips_the_2026_national_day_holiday() -> None:
    cal = WorkCalendar()
    # Mon 28 Sep + 3 working days: 29 Sep, 30 Sep, then the holiday 1–7 Oct, then 8 Oct.
    due = cal.add_workdays(date(2026, 9, 28), 3)
    assert due.day == date(2026, 10, 8)
    assert not due.estimated


def test_add_workdays_counts_the_make_up_saturday() -> None:
    cal = WorkCalendar()
    # Sat 10 Oct 2026 is a make-up working day (调休上班): the 5th working day after 28 Sep.
    assert cal.is_workday(date(2026, 10, 10))
    assert cal.add_workdays(date(2026, 9, 28), 5).day == date(2026, 10, 10)
    # …and Sun 20 Sep 2026 is one too.
    assert cal.add_workdays(date(2026, 9, 18), 1).day == date(2026, 9, 20)


def test_add_workdays_zero_is_the_start_day() -> None:
    assert WorkCalendar().add_workdays(date(2026, 9, 28), 0).day == date(2026, 9, 28)


def test_add_workdays_falls_back_to_weekdays_for_2027_and_says_so() -> None:
    cal = WorkCalendar()
    due = cal.add_workdays(date(2026, 12, 28), 5)
    # 29, 30, 31 Dec, Fri 1 Jan 2027 (unknown schedule → Mon–Fri), Mon 4 Jan.
    assert due.day == date(2027, 1, 4)
    assert due.estimated
    assert not cal.year_published(2027)


def test_override_beats_the_package_and_publishes_the_year() -> None:
    cal = WorkCalendar({date(2027, 1, 1): False, date(2026, 9, 29): False})
    due = cal.add_workdays(date(2026, 12, 28), 5)
    assert due.day == date(2027, 1, 5)
    assert not due.estimated
    # an override also changes a year the package covers
    assert cal.add_workdays(date(2026, 9, 28), 1).day == date(2026, 9, 30)


def test_calendar_loads_overrides_from_the_table(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(HolidayOverride(day=date(2026, 9, 30), is_workday=False, name="测试调整"))
    with Session(engine) as s:
        cal = WorkCalendar.load(s)
    assert not cal.is_workday(date(2026, 9, 30))
    assert cal.add_workdays(date(2026, 9, 28), 2).day == date(2026, 10, 8)


@pytest.mark.parametrize(
    ("today", "due", "status"),
    [
        (date(2026, 9, 28), date(2026, 10, 12), "ok"),  # many working days left
        (date(2026, 9, 29), date(2026, 10, 8), "due_soon"),  # 30 Sep, 8 Oct: 2 left
        (date(2026, 9, 28), date(2026, 10, 8), "ok"),  # 3 left
        (date(2026, 10, 8), date(2026, 10, 8), "due_soon"),  # due today
        (date(2026, 10, 9), date(2026, 10, 8), "overdue"),
        (date(2026, 10, 9), None, "ok"),
    ],
)
def test_deadline_status_yellow_and_red(today: date, due: date | None, status: str) -> None:
    assert WorkCalendar().deadline_status(today, due) == status


def test_workdays_between_counts_across_the_holiday() -> None:
    cal = WorkCalendar()
    assert cal.workdays_between(date(2026, 9, 30), date(2026, 10, 9)) == 2
    assert cal.workdays_between(date(2026, 10, 9), date(2026, 9, 30)) == -2
