"""Local (Beijing) dates for a naive-UTC clock. China has no daylight saving time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

CHINA_OFFSET = timedelta(hours=8)


def local_day(at: datetime) -> date:
    """The Beijing calendar date of a naive-UTC timestamp."""
    return (at + CHINA_OFFSET).date()


def utc_bounds(day: date) -> tuple[datetime, datetime]:
    """Naive-UTC [start, end) of a Beijing calendar day."""
    start = datetime.combine(day, time.min) - CHINA_OFFSET
    return start, start + timedelta(days=1)
