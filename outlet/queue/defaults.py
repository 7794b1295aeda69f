"""The center admin's 排队叫号默认设置 (``/admin/queue``): what every outlet reads unless its
own line settings say otherwise (issue 10 §1 "the center admin sets defaults").

One row (:class:`outlet.queue.models.QueueDefaults`, id 1); before the first save the
model's field defaults apply. A save is one audited ``admin.queue.edit`` (state: a short
summary of the changed fields, numbers only). The table is watched by
:mod:`partners.refdata`, so a save bumps ``ref_version`` in its transaction and every
process's cached copy is dropped by the next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from outlet.intake import checked_text, clean_label
from outlet.queue.errors import QueueInputError
from outlet.queue.models import QueueDefaults
from partners import refdata
from partners.delegation import delegated_action
from partners.models import Staff
from partners.numbers import ascii_int

refdata.watch(QueueDefaults)

ACTION = "admin.queue.edit"
MAX_CAP = 999  # three-digit serials
PREFIX_RE = re.compile(r"^[A-Z]$")
LINE_ROWS = 8  # rows of the default-lines table on the form (blank rows are ignored)


@dataclass(frozen=True)
class Field:
    label: str
    low: int
    high: int
    unit: str


# form field → (label, allowed range, unit); the unit says what the number counts
FIELDS: dict[str, Field] = {
    "max_recalls": Field("重呼次数上限（之后可过号）", 3, 5, "次"),  # DOMAIN.md: recall up to 3–5 times
    "slot_minutes": Field("预约时段长度（新增业务类型）", 10, 120, "分钟"),
    "slot_capacity": Field("每时段预约名额（新增业务类型）", 0, 100, "人"),
    "book_ahead_days": Field("可预约天数（自明天起）", 1, 30, "个工作日"),
    "cancel_before_hours": Field("取消预约截止（时段开始前）", 0, 48, "小时"),
    "no_show_limit": Field("爽约次数（达到即限制预约）", 1, 10, "次"),
    "no_show_window_days": Field("爽约统计期", 1, 365, "天（自然日）"),
    "block_days": Field("限制预约时长", 1, 365, "天（自然日）"),
    "idle_seconds": Field("自助终端无操作等待", 30, 600, "秒"),
    "countdown_seconds": Field("清空前倒计时", 5, 60, "秒"),
}


def load(session: Session) -> QueueDefaults:
    """The defaults in force (the saved row, else the built-in values), read in ``session``
    (inside a write transaction: the value that transaction decides by)."""
    return session.get(QueueDefaults, 1) or QueueDefaults()


def for_page(session: Session) -> QueueDefaults:
    """:func:`load`, kept between the requests of a process until reference data changes
    (:mod:`partners.refdata`; outside a logged-in request it reads the database). Read-only."""
    return refdata.cached(("queue_defaults",), lambda: load(session))


def read(engine: Engine) -> QueueDefaults:
    """:func:`for_page` in a session of its own (kiosk pages, the booking page)."""
    with Session(engine) as s:
        return for_page(s)


def form_values(row: QueueDefaults) -> dict[str, Any]:
    """The form's text values of ``row``: each number field, and ``lines`` as
    ``LINE_ROWS`` dicts of text (blank rows at the end)."""
    values: dict[str, Any] = {k: str(getattr(row, k)) for k in FIELDS}
    lines = [{k: str(v) for k, v in ln.items()} for ln in row.lines]
    blank = {"prefix": "", "name": "", "daily_cap": "", "warn_minutes": ""}
    values["lines"] = (lines + [dict(blank) for _ in range(LINE_ROWS)])[:max(LINE_ROWS, len(lines))]
    return values


# the numbers of a line (form field, label, range): the lead's line form and the default lines
LINE_NUMBERS = (("daily_cap", "每日限号", 1, MAX_CAP), ("warn_minutes", "等候预警时长", 1, 600),
                ("slot_capacity", "每时段预约名额", 0, 100))


def clean_line(raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Check one line's ``prefix``, ``name`` and those of :data:`LINE_NUMBERS` present in
    ``raw`` (text). Returns (clean values, field → Chinese message)."""
    errors: dict[str, str] = {}
    typed, name = raw.get("prefix", "").strip(), raw.get("name", "").strip()
    prefix = typed.upper() if typed.isascii() else typed  # "ı".upper() is "I": refused, not changed
    if not PREFIX_RE.match(prefix):
        errors["prefix"] = "号票字母须为一个英文大写字母（A–Z）"
    name = checked_text(name, clean_label, errors, "name", "请填写业务类型名称（32字以内）")
    values: dict[str, Any] = {"prefix": prefix, "name": name}
    for key, label, low, high in LINE_NUMBERS:
        if key in raw:
            values[key] = ascii_int(raw[key].strip(), low=low, high=high)
            if values[key] is None:
                errors[key] = f"{label}须为 {low}–{high} 的整数"
    return values, errors


def _clean_lines(rows: list[dict[str, str]], errors: dict[str, str]) -> list[dict[str, Any]]:
    """Validate the default-lines rows (blank rows skipped); errors keyed ``lines.<i>.<field>``."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        raw = {k: str(row.get(k, "")) for k in ("prefix", "name", "daily_cap", "warn_minutes")}
        if not any(v.strip() for v in raw.values()):
            continue
        values, bad = clean_line(raw)
        if "prefix" not in bad and values["prefix"] in seen:
            bad["prefix"] = f"号票字母 {values['prefix']} 重复"
        seen.add(values["prefix"])
        errors.update({f"lines.{i}.{k}": v for k, v in bad.items()})
        out.append(values)
    if not out:
        errors["lines"] = "请至少填写一个默认业务类型"
    return out


def save(engine: Engine, actor: Staff, values: dict[str, Any], *, at: datetime | None = None) -> QueueDefaults:
    """Validate ``values`` (``form_values`` shape: text) and store them (``admin.queue.edit``,
    center admin only). Raises :class:`QueueInputError` (422, every bad field named in
    Chinese, nothing stored) or a delegation refusal (audited)."""
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for key, f in FIELDS.items():
        number = ascii_int(str(values.get(key, "")).strip(), low=f.low, high=f.high)
        if number is None:
            errors[key] = f"{f.label}须为 {f.low}–{f.high} 的整数（{f.unit}）"
        else:
            numbers[key] = number
    lines = _clean_lines(list(values.get("lines", [])), errors)
    if errors:
        raise QueueInputError("排队叫号默认设置未保存：请修改标出的项目", errors=errors)
    with delegated_action(engine, actor, ACTION, at=at) as act:
        s = act.session
        row = s.get(QueueDefaults, 1)
        before = load(s)
        changed = sorted(k for k, v in numbers.items() if getattr(before, k) != v)
        if lines != before.lines:
            changed.append("lines")
        row = row or QueueDefaults(id=1)
        for key, value in numbers.items():
            setattr(row, key, value)
        row.lines, row.updated_at, row.updated_by = lines, act.at, actor.id
        s.add(row)
        act.state = (None, "/".join(changed) or "unchanged")
    return row
