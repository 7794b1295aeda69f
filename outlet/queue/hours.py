"""Issuing hours from an outlet's opening hours (营业时间), a free-text field such as
``周一至周五 9:00–17:00；周六 9:00–12:00`` or ``周一至周五 9:00–12:00，13:30–17:30``.

Tickets need staff, so the queue issues only while the outlet is staffed; the outlet's
24-hour flag (``self_service_24h``) keeps the no-staff kiosk functions open at night.
Days are Asia/Shanghai calendar days; weekday ranges do not wrap (周六至周一 is refused as
not understood). Text with no recognizable range means "hours not set": always staffed.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from partners.models import Outlet

DAYS = "一二三四五六日"
_DAY = "周([一二三四五六日天])"
_SPAN = r"(\d{1,2})[:：](\d{2})\s*[–—\-~～至到]\s*(\d{1,2})[:：](\d{2})"
_RULE = re.compile(_DAY + r"(?:\s*[至到\-–~～]\s*" + _DAY + r")?\s*((?:" + _SPAN + r"[\s，,、]*)+)")
_SPANS = re.compile(_SPAN)
CHINA = timedelta(hours=8)

Hours = dict[int, list[tuple[time, time]]]  # weekday (0 = Monday) → [start, end) spans


def _weekday(ch: str) -> int:
    return 6 if ch in "日天" else DAYS.index(ch)


def parse_hours(text: str) -> Hours:
    """Staffed spans per weekday; ``{}`` when the text names none."""
    hours: Hours = {}
    for m in _RULE.finditer(text or ""):
        first = _weekday(m.group(1))
        last = _weekday(m.group(2)) if m.group(2) else first
        spans = []
        for s in _SPANS.finditer(m.group(3)):
            h1, m1, h2, m2 = (int(x) for x in s.groups())
            if h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60:
                end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
                spans.append((time(h1, m1), end))
        for day in range(first, last + 1):
            hours.setdefault(day, []).extend(spans)
    return hours


def staffed_at(outlet: Outlet, at: datetime) -> bool:
    """Whether ``outlet`` is staffed at naive-UTC instant ``at`` (its opening hours)."""
    hours = parse_hours(outlet.opening_hours)
    if not hours:
        return True
    local = at + CHINA
    now = local.time()
    return any(a <= now < b for a, b in hours.get(local.weekday(), []))


def hours_label(outlet: Outlet) -> str:
    """The opening hours as shown in refusals ("未设置" when empty)."""
    return outlet.opening_hours or "未设置"


def self_service_open(outlet: Outlet, at: datetime) -> bool:
    """Whether the kiosk's no-staff functions (办件查询, 自助打印, 评价) are offered at ``at``:
    within the opening hours, and at any hour where the outlet has a 24-hour self-service
    area (``self_service_24h``; issue 10 §4 "the outlet's 24-hour flag decides")."""
    return bool(outlet.self_service_24h) or staffed_at(outlet, at)
