"""``audit stats``: the published headline figures, recomputed from a verified export alone.

No database and nothing from the rest of the project: the export is verified first
(:func:`audit.verify.verify`; a failing export is refused with the verifier's error), then
``entries.jsonl`` is read once, streamed, and the figures are computed from the entries'
times, actions, outcomes, states and optional fields (``terms``, ``rating``, ``queue``; see
docs/audit.md, "Figures from the log"). Refused attempts (``outcome.result = "refused"``)
never count. The definitions mirror ``outlet/figures`` (the formulas are in its docstrings);
a test checks both give the same numbers on the demo data and on generated data.

Periods are Asia/Shanghai calendar days, inclusive, like the dashboards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import FormatError
from .verify import verify

CHINA = timedelta(hours=8)
ACCEPT = ("case.accept", "case.accept_rongque")
COMPLETE = ("case.approve", "case.reject", "case.complete_onsite")
Value = int | float | None


def _rate(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _utc_text(day: date, shift: int = 0) -> str:
    """The canonical entry time of Beijing midnight starting ``day`` (+ ``shift`` days)."""
    t = datetime.combine(day + timedelta(days=shift), datetime.min.time()) - CHINA
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_day(time: str) -> date:
    """Beijing calendar date of an entry time ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return (datetime.fromisoformat(time[:19]) + CHINA).date()


@dataclass
class _Window:
    start: date
    end: date
    t0: str = ""
    t1: str = ""

    def __post_init__(self) -> None:
        self.t0, self.t1 = _utc_text(self.start), _utc_text(self.end, 1)

    def inside(self, time: str) -> bool:
        return self.t0 <= time < self.t1


@dataclass
class _Cases:
    """Case family (outlet/figures/cases.py)."""

    n: dict[str, int] = field(default_factory=dict)
    rongque: set[str] = field(default_factory=set)  # accepted 容缺 in the period
    supplied: set[str] = field(default_factory=set)  # 容缺 → 已受理 before the period's end
    due: dict[str, date] = field(default_factory=dict)  # accepted before the end: committed date
    closed: set[str] = field(default_factory=set)  # completed or withdrawn before the end

    def bump(self, key: str, by: int = 1) -> None:
        self.n[key] = self.n.get(key, 0) + by

    def add(self, e: dict[str, Any], w: _Window) -> None:
        action, time, case = e["action"], e["time"], e["case"]
        if time >= w.t1:
            return
        terms = e.get("terms") or {}
        if action in ACCEPT and "due" in terms:
            self.due[case] = date.fromisoformat(terms["due"])
        elif action in COMPLETE or action == "case.withdraw":
            self.closed.add(case)
        elif action == "case.supply" and e["state"] == {"from": "rongque", "to": "accepted"}:
            self.supplied.add(case)
        if time < w.t0:
            return
        simple = {"case.create": "received", "case.refuse": "refused", "case.notice": "notices",
                  "case.forward": "forwarded", "case.accept_rongque": "rongque"}  # fmt: skip
        if action in simple:
            self.bump(simple[action])
        if action in ACCEPT:
            self.bump("accepted")
        if action == "case.accept_rongque":
            self.rongque.add(case)
        if action in COMPLETE:
            self.bump("completed")
            if action == "case.complete_onsite":
                self.bump("onsite")
            done = local_day(time)
            if "due" in terms:
                due = date.fromisoformat(terms["due"])
                self.bump("on_time", done <= due)
                self.bump("early", done < due)
                self.bump("completed_late", done > due)
            if "workdays" in terms:
                self.bump("sum_workdays", terms["workdays"])
                self.bump("n_workdays")
            self.bump("sum_corrections", terms.get("corrections", 0))

    def result(self, w: _Window) -> dict[str, Value]:
        g = self.n.get
        done = g("completed", 0)
        overdue = sum(1 for c, due in self.due.items() if due < w.end and c not in self.closed)
        return {
            "received": g("received", 0), "accepted": g("accepted", 0), "refused": g("refused", 0),
            "notices": g("notices", 0), "rongque": g("rongque", 0),
            "rongque_supplied_rate": _rate(len(self.rongque & self.supplied), len(self.rongque)),
            "forwarded": g("forwarded", 0), "completed": done,
            "instant_share": _rate(g("onsite", 0), done), "on_time_rate": _rate(g("on_time", 0), done),
            "early_rate": _rate(g("early", 0), done), "completed_late": g("completed_late", 0),
            "overdue_open": overdue,
            "avg_handling_days": _rate(g("sum_workdays", 0), g("n_workdays", 0)),
            "corrections_per_case": _rate(g("sum_corrections", 0), done),
        }  # fmt: skip


FAMILIES: dict[str, Callable[[], Any]] = {"case.": _Cases}
# Labels as the dashboards print them (a test checks they equal outlet/figures' labels).
LABELS = {
    "received": "收件数", "accepted": "受理数", "refused": "不予受理数", "notices": "一次性告知数",
    "rongque": "容缺受理数", "rongque_supplied_rate": "容缺补齐率", "forwarded": "转报数",
    "completed": "办结数", "instant_share": "即办件占比", "on_time_rate": "按期办结率",
    "early_rate": "提前办结率", "completed_late": "超期办结数", "overdue_open": "超期未办结数",
    "avg_handling_days": "平均办理时长（工作日）", "corrections_per_case": "平均补正次数",
}  # fmt: skip
RATIOS = frozenset({"rongque_supplied_rate", "instant_share", "on_time_rate", "early_rate"})


@dataclass
class StatsResult:
    """The recomputed figures (key → value, ratios 0..1 or None) and what was read."""

    start: date
    end: date
    outlet: str | None
    entries: int
    figures: dict[str, Value]


def _entries(d: Path) -> Iterator[tuple[int, bytes]]:
    """(log index, leaf bytes) of every exported entry."""
    idx_path = d / "indexes"
    indexes: Iterator[int] | None = None
    if idx_path.exists():
        indexes = (int(x) for x in idx_path.read_text("ascii").split())
    with open(d / "entries.jsonl", "rb") as f:
        for n, line in enumerate(f):
            yield (next(indexes) if indexes is not None else n), line.rstrip(b"\n")


def stats(
    path: str | os.PathLike[str], policy: object = None, *, start: date | None = None,
    end: date | None = None, outlet: str | None = None, on_step: Callable[[str], None] | None = None,
) -> StatsResult:
    """Verify the export directory ``path`` (raises the verifier's error) and recompute the
    headline figures for Beijing days ``start``..``end`` (default: the days of the first
    and last entry) and outlet code ``outlet`` (default: all outlets)."""
    d = Path(path)
    if not d.is_dir():
        raise FormatError(f"{d}: audit stats needs an export directory")
    verify(d, policy, on_step=on_step)  # type: ignore[arg-type]
    if start is None or end is None:
        first = last = None
        for _i, line in _entries(d):
            t = json.loads(line)["time"]
            first = first or t
            last = t
        today = date.today()
        start = start or (local_day(first) if first else today)
        end = end or (local_day(last) if last else today)
    if end < start:
        raise FormatError("--to is before --from")
    w = _Window(start, end)
    fams = {prefix: make() for prefix, make in FAMILIES.items()}
    marks = tuple(f'"action":"{p}'.encode() for p in fams)
    n = 0
    for _index, line in _entries(d):
        n += 1
        if not any(m in line for m in marks):
            continue
        e = json.loads(line)
        if e["outcome"].get("result") != "done" or (outlet is not None and e["outlet"] != outlet):
            continue
        for prefix, fam in fams.items():
            if e["action"].startswith(prefix):
                fam.add(e, w)
    figures: dict[str, Value] = {}
    for fam in fams.values():
        figures.update(fam.result(w))
    return StatsResult(start, end, outlet, n, figures)
