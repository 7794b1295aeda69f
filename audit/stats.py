"""``audit stats``: the published headline figures, recomputed from a verified export alone.

No database and nothing from the rest of the project: the export is verified first
(:func:`audit.verify.verify`; a failing export is refused with the verifier's error), then
``entries.jsonl`` is read once, streamed, and the figures are computed from the entries'
times, actions, outcomes, states and optional fields (``terms``, ``rating``, ``queue``; see
docs/audit.md, "Figures from the log"). Refused attempts (``outcome.result = "refused"``)
never count. The definitions mirror ``outlet/figures`` (the formulas are in its docstrings);
a test checks both give the same numbers on the demo data and on generated data.

Periods are Asia/Shanghai calendar days, inclusive, like the dashboards. Figures that
depend on "today" (差评整改率: which work orders are due) take the export's own day — the
Beijing date of the newest entry its signed checkpoint covers (the checkpoint body carries
no time) — so a recomputation never depends on the auditor's wall clock.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import FormatError
from .verify import verify

CHINA = timedelta(hours=8)
# The action of a canonical leaf (a quote inside a string value is escaped, so this byte
# pattern can only be the "action" key itself).
_ACTION = re.compile(rb'"action":"([a-z0-9_.]+)"')
_TIME = re.compile(rb'"time":"([0-9T:.Z-]{20,32})"')  # the entry time (the only "time" key)
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
    today: date | None = None  # the export's day (set once every entry is read)

    def __post_init__(self) -> None:
        self.t0, self.t1 = _utc_text(self.start), _utc_text(self.end, 1)

    def inside(self, time: str) -> bool:
        return self.t0 <= time < self.t1


@dataclass
class _Cases:
    """Case family (outlet/figures/cases.py)."""

    prefixes = ("case.",)

    n: dict[str, int] = field(default_factory=dict)
    rongque: set[str] = field(default_factory=set)  # accepted 容缺 in the period
    supplied: set[str] = field(default_factory=set)  # 容缺 → 已受理 before the period's end
    due: dict[str, date] = field(default_factory=dict)  # accepted before the end: committed date
    closed: set[str] = field(default_factory=set)  # completed or withdrawn before the end

    def bump(self, key: str, by: int = 1) -> None:
        self.n[key] = self.n.get(key, 0) + by

    def add(self, index: int, e: dict[str, Any], w: _Window) -> None:
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


@dataclass
class _Ratings:
    """好差评 family (outlet/figures/ratings.py). Exclusions, call-backs, closings and the
    rater's view count whenever they happened (the dashboards show the current state)."""

    prefixes = ("rating.", "case.approve", "case.reject", "case.complete_onsite")
    given: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> rating, in period
    completed: set[str] = field(default_factory=set)  # cases completed in the period
    rated: set[int] = field(default_factory=set)  # indexes of ratings naming a case, any time
    case_of: dict[int, str] = field(default_factory=dict)
    excluded: set[int] = field(default_factory=set)
    called: set[int] = field(default_factory=set)
    closed: set[int] = field(default_factory=set)
    view: dict[int, str] = field(default_factory=dict)

    def add(self, index: int, e: dict[str, Any], w: _Window) -> None:
        action, r = e["action"], e.get("rating") or {}
        if action in COMPLETE:
            if w.inside(e["time"]):
                self.completed.add(e["case"])
        elif action == "rating.submit":
            if e["case"] is not None:
                self.case_of[index] = e["case"]
            if w.inside(e["time"]):
                self.given[index] = {"level": r["level"], "real_name": r["real_name"],
                                     "due": (e.get("terms") or {}).get("due")}  # fmt: skip
        elif action == "rating.appeal_decide" and e["state"]["to"] == "upheld":
            self.excluded.add(r["entry"])
        elif action == "rating.callback":
            self.called.add(r["entry"])
        elif action == "rating.close":
            self.closed.add(r["entry"])
        elif action == "rating.feedback" and "view" in r:
            self.view[r["entry"]] = r["view"]

    def result(self, w: _Window) -> dict[str, Value]:
        kept = {i: g for i, g in self.given.items() if i not in self.excluded}
        bad = {i: g for i, g in kept.items() if g["level"] <= 2}
        # 差评整改率 (outlet/figures/ratings.py): closed ÷ due; due (应整改) = closed, or the
        # 整改时限 is before the export's day.
        today = w.today or w.end
        limit = {i: date.fromisoformat(g["due"]) for i, g in bad.items() if g["due"]}
        due = [i for i in bad if i in self.closed or (i in limit and limit[i] < today)]
        closed = [i for i in due if i in self.closed]
        real = [i for i, g in bad.items() if g["real_name"]]
        views = [self.view[i] for i in bad if i in self.view]
        rated_cases = {c for i, c in self.case_of.items() if i not in self.excluded}
        return {
            "ratings": len(kept),
            "active_rate": _rate(len(self.completed & rated_cases), len(self.completed)),
            "good_rate": _rate(sum(1 for g in kept.values() if g["level"] >= 4), len(kept)),
            "bad": len(bad), "excluded": len(self.given) - len(kept),
            "rectify_rate": _rate(len(closed), len(due)),
            "callback_rate": _rate(sum(1 for i in real if i in self.called), len(real)),
            "satisfaction_rate": _rate(sum(1 for v in views if v in ("satisfied", "basic")), len(views)),
        }  # fmt: skip


@dataclass
class _Video:
    """视频帮办 / 远程勘验 family (outlet/figures/video.py): the counts that are steps."""

    prefixes = ("assist.request", "assist.accept", "assist.conclude")
    n: dict[str, int] = field(default_factory=dict)

    def add(self, index: int, e: dict[str, Any], w: _Window) -> None:
        if not w.inside(e["time"]):
            return
        key = {"assist.request": "requests", "assist.accept": "answered",
               "assist.conclude": "inspections"}.get(e["action"])  # fmt: skip
        if key is None:
            return
        self.n[key] = self.n.get(key, 0) + 1
        if key == "inspections" and e["state"]["to"] == "passed":
            self.n["passed"] = self.n.get("passed", 0) + 1

    def result(self, w: _Window) -> dict[str, Value]:
        g = self.n.get
        return {"assist_requests": g("requests", 0), "assist_answered": g("answered", 0),
                "inspections": g("inspections", 0),
                "inspection_pass_rate": _rate(g("passed", 0), g("inspections", 0))}  # fmt: skip


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest value; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(9 * len(ordered) + 9) // 10 - 1]


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b[:-1]) - datetime.fromisoformat(a[:-1])).total_seconds()


@dataclass
class _Ticket:
    arrived: str
    first_call: str | None = None
    service: float | None = None
    no_show: bool = False
    serving_since: str | None = None  # time of the ``serve`` that opened the current span


# Steps that take a ticket out of 办理中 (outlet.queue.tickets.LEAVES_SERVING, which a test
# checks equal): a span runs from ``serve`` to the first of them; ``link`` keeps it open.
LEAVES_SERVING = ("transfer", "hold", "done")


@dataclass
class _Queue:
    """Queue family (outlet/figures/queue.py): tickets rebuilt from their steps — the
    outlet, ticket number and arrival time in each entry's ``queue`` field name the ticket."""

    prefixes = ("ticket.", "booking.check_in")
    tickets: dict[tuple[str, str, str], _Ticket] = field(default_factory=dict)

    def add(self, index: int, e: dict[str, Any], w: _Window) -> None:
        q = e.get("queue") or {}
        if not q.get("ticket") or not q.get("arrived"):
            return
        if not (w.start <= local_day(q["arrived"]) <= w.end):
            return
        t = self.tickets.setdefault((e["outlet"], q["ticket"], q["arrived"]), _Ticket(q["arrived"]))
        step, time = ("issue" if e["action"] == "booking.check_in" else e["action"][7:]), e["time"]
        if step == "call" and t.first_call is None:
            t.first_call = time
        if step == "no_show":
            t.no_show = True
        if step == "serve":
            t.serving_since = time
        elif step in LEAVES_SERVING and t.serving_since is not None:
            t.service = (t.service or 0.0) + _seconds(t.serving_since, time)
            t.serving_since = None

    def result(self, w: _Window) -> dict[str, Value]:
        waits = [_seconds(t.arrived, t.first_call) for t in self.tickets.values() if t.first_call]
        services = [t.service for t in self.tickets.values() if t.service is not None]
        called = [t for t in self.tickets.values() if t.first_call]
        return {
            "tickets": len(self.tickets), "wait_avg": _rate(sum(waits), len(waits)),
            "wait_p90": p90(waits), "service_avg": _rate(sum(services), len(services)),
            "service_p90": p90(services),
            "no_show_rate": _rate(sum(1 for t in called if t.no_show), len(called)),
        }  # fmt: skip


FAMILIES: tuple[Callable[[], Any], ...] = (_Cases, _Ratings, _Video, _Queue)
# Labels as the dashboards print them (a test checks they equal outlet/figures' labels).
LABELS = {
    "received": "收件数", "accepted": "受理数", "refused": "不予受理数", "notices": "一次性告知数",
    "rongque": "容缺受理数", "rongque_supplied_rate": "容缺补齐率", "forwarded": "转报数",
    "completed": "办结数", "instant_share": "即办件占比", "on_time_rate": "按期办结率",
    "early_rate": "提前办结率", "completed_late": "超期办结数", "overdue_open": "超期未办结数",
    "avg_handling_days": "平均办理时长（工作日）", "corrections_per_case": "平均补正次数",
    "ratings": "评价数", "active_rate": "主动评价率", "good_rate": "好评率", "bad": "差评数",
    "excluded": "申诉剔除数", "rectify_rate": "差评整改率", "callback_rate": "实名差评回访率",
    "satisfaction_rate": "回访整改满意率", "assist_requests": "视频帮办请求数",
    "assist_answered": "专家接听数", "inspections": "远程勘验数", "inspection_pass_rate": "勘验通过率",
    "tickets": "取号数", "wait_avg": "平均等候时长", "wait_p90": "等候时长P90",
    "service_avg": "平均窗口办理时长", "service_p90": "窗口办理时长P90", "no_show_rate": "过号率",
}  # fmt: skip
RATIOS = frozenset({"rongque_supplied_rate", "instant_share", "on_time_rate", "early_rate",
                    "active_rate", "good_rate", "rectify_rate", "callback_rate",
                    "satisfaction_rate", "inspection_pass_rate", "no_show_rate"})  # fmt: skip


@dataclass
class StatsResult:
    """The recomputed figures (key → value, ratios 0..1 or None) and what was read."""

    start: date
    end: date
    outlet: str | None
    entries: int
    figures: dict[str, Value]
    outlets: frozenset[str] = frozenset()  # outlet codes of the figure entries read (any outcome)
    today: date | None = None  # the export's day: "today" of 差评整改率 (None: no entries)


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
    on_progress: Callable[[int], None] | None = None,
) -> StatsResult:
    """Verify the export directory ``path`` (raises the verifier's error) and recompute the
    headline figures for Beijing days ``start``..``end`` (default: the days of the first
    and last entry) and outlet code ``outlet`` (default: all outlets). "Today" for
    差评整改率 is the Beijing day of the newest entry in the export (the module docstring).
    ``on_step`` gets each passed verification step, ``on_progress`` the entries read so far
    (every 50,000)."""
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
    fams = [make() for make in FAMILIES]
    routes: dict[bytes, list[Any]] = {}  # action -> families that read it
    n = 0
    seen: set[str] = set()
    newest = b""
    for index, line in _entries(d):
        n += 1
        if on_progress is not None and n % 50_000 == 0:
            on_progress(n)
        if (t := _TIME.search(line)) is not None and t.group(1) > newest:
            newest = t.group(1)
        m = _ACTION.search(line)
        if m is None:
            continue
        action = m.group(1)
        wanted = routes.get(action)
        if wanted is None:
            name = action.decode()
            wanted = routes[action] = [f for f in fams if name.startswith(f.prefixes)]
        if not wanted:
            continue
        e = json.loads(line.decode("utf-8"))
        seen.add(e.get("outlet") or "")
        if e["outcome"].get("result") != "done" or (outlet is not None and e["outlet"] != outlet):
            continue
        for fam in wanted:
            fam.add(index, e, w)
    w.today = local_day(newest.decode()) if newest else None
    figures: dict[str, Value] = {}
    for fam in fams:
        figures.update(fam.result(w))
    return StatsResult(start, end, outlet, n, figures, frozenset(seen - {""}), w.today)
