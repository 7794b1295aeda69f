"""Figures benchmark, printed (never asserted).

Generates a year of work for 50 outlets (≈ 200,000 cases with every step's audit entry,
ratings with their 差评 work orders, queue tickets with their steps) directly into the
database and the audit log (bulk inserts, exactly the rows and leaves the app writes), then
prints (the per-day rollup ``figures_daily``, which the app keeps with every step, is rebuilt
from the bulk-loaded rows once — the only write that bypasses the ORM):

1. ``headline()`` and ``breakdown()`` times (median) for the center, one partner and one
   outlet, for the last 30 days and the whole year, and the dashboard page's whole work
   (``dashboard_context``, goal: median < 500 ms) for the three;
2. the offline side: sign a checkpoint, export the log, ``audit verify`` of the export and
   ``audit stats`` (verification included, and the figure pass alone) in entries per second,
   in the same run — and whether ``audit stats`` equals ``headline()``.

    .venv/bin/python bench/figures_bench.py [--cases 200000] [--outlets 50] [--db URL] [--keep DIR]

``--db postgresql+psycopg://…`` runs against PostgreSQL (an empty database); ``--pg`` starts a
throwaway PostgreSQL server for the run (Debian's postgresql, as the tests do).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

import web.models  # noqa: E402,F401
from audit import Checkpointer, Signer, export  # noqa: E402
from audit.entry import canonical_json, normalize  # noqa: E402
from audit.merkle import leaf_hash  # noqa: E402
from audit.models import entries as audit_entries  # noqa: E402
from audit.stats import stats  # noqa: E402
from audit.verify import verify  # noqa: E402
from outlet.figures import Period, Scope, breakdown, headline  # noqa: E402
from outlet.figures.daily import rebuild  # noqa: E402
from outlet.models import Applicant, Case, CaseEvent  # noqa: E402
from outlet.queue.models import QueueCounter, QueueLine, Ticket, TicketEvent  # noqa: E402
from outlet.ratings.models import Rating, RatingWorkOrder  # noqa: E402
from outlet.workdays import WorkCalendar  # noqa: E402
from partners.models import Matter, MatterVersion, Outlet, Partner, Staff  # noqa: E402
from web.db import make_engine  # noqa: E402

CHINA = timedelta(hours=8)
END = date(2026, 11, 30)  # the bench's "today"
START = END - timedelta(days=364)
ORIGIN = "bench.example.gov.cn/figures"


def utc(day: date, minutes: float) -> datetime:
    """Naive UTC of ``minutes`` after Beijing midnight of ``day``."""
    return datetime.combine(day, dtime()) - CHINA + timedelta(minutes=minutes)


def zt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Writer:
    """Buffers rows per table and audit leaves; flushes with executemany."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.leaves: list[dict[str, Any]] = []
        self.index = 0
        self.written = 0

    def add(self, table: Any, **row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def entry(self, e: dict[str, Any]) -> int:
        n = normalize(e)
        leaf = canonical_json(n)
        m = n["matter"]
        self.leaves.append({"idx": self.index, "leaf": leaf, "leaf_hash": leaf_hash(leaf),
                            "time": datetime.fromisoformat(n["time"][:-1]), "actor_id": n["actor"]["id"],
                            "actor_role": n["actor"]["role"], "outlet": n["outlet"], "partner": n["partner"],
                            "action": n["action"], "case_no": n["case"],
                            "matter_code": m["code"] if m else None})  # fmt: skip
        self.index += 1
        return self.index - 1

    def flush(self, force: bool = False) -> None:
        if not force and len(self.leaves) < 50_000:
            return
        for table in (Case, CaseEvent, Rating, RatingWorkOrder, Ticket, TicketEvent):  # FK order
            rows = self.rows.get(table)
            if rows:
                keys = {k for r in rows for k in r}  # executemany needs the same keys in every row
                rows = [{k: r.get(k) for k in keys} for r in rows]
                self.s.execute(insert(table.__table__), rows)  # type: ignore[attr-defined]
        if self.leaves:
            self.s.execute(insert(audit_entries), self.leaves)
        self.written += len(self.leaves)
        self.rows, self.leaves = {}, []


def world(s: Session, n_outlets: int) -> dict[str, Any]:
    partners = [Partner(code=f"BANK{p:02d}", name=f"银行{p:02d}", kind="bank") for p in range(5)]
    s.add_all(partners)
    s.flush()
    outlets = [Outlet(code=f"BANK{i % 5:02d}-{i:03d}", partner_id=partners[i % 5].id or 0, name=f"网点{i:03d}",
                      address="路1号", kind="bank") for i in range(n_outlets)]  # fmt: skip
    s.add_all(outlets)
    s.flush()
    kinds = [("社保", "承诺件", 5), ("医保", "承诺件", 3), ("公积金", "承诺件", 10), ("商事登记", "承诺件", 7),
             ("社保", "即办件", 0)]  # fmt: skip
    matters = []
    for i, (domain, kind, days) in enumerate(kinds):
        m = Matter(basic_code=f"B{i:011d}", implementation_code=f"1137020000000000000000000{i:05d}")
        s.add(m)
        s.flush()
        v = MatterVersion(matter_id=m.id or 0, version=1, name=f"事项{i}", matter_type="20", domain=domain,
                          case_kind=kind, statutory_days=days * 2, committed_days=days, materials=[])
        s.add(v)
        s.flush()
        matters.append((m, v))
    tellers = {}
    for o in outlets:
        tellers[o.id] = [Staff(username=f"t{o.id}-{k}", display_name="柜员", password_hash="x", outlet_id=o.id,
                               roles="teller") for k in range(2)]  # fmt: skip
        s.add_all(tellers[o.id])
    reviewers = [Staff(username=f"r{k}", display_name="审核", password_hash="x", roles="reviewer") for k in range(5)]
    s.add_all(reviewers)
    applicant = Applicant(kind="person", name="张三", id_number="11010519491231002X",
                          pseudonym="hmac-sha256:" + "A" * 43)
    s.add(applicant)
    s.flush()
    lines, counters = {}, {}
    for o in outlets:
        ln = QueueLine(outlet_id=o.id or 0, prefix="A", name="综合")
        s.add(ln)
        s.flush()
        c = QueueCounter(outlet_id=o.id or 0, number=1, name="1号窗口", line_ids=[ln.id])
        s.add(c)
        s.flush()
        lines[o.id], counters[o.id] = ln, c
    return {"partners": partners, "outlets": outlets, "matters": matters, "tellers": tellers,
            "reviewers": reviewers, "applicant": applicant, "lines": lines, "counters": counters}  # fmt: skip


def generate(engine: Any, n_cases: int, n_outlets: int, seed: int = 13) -> int:
    rnd = random.Random(seed)
    cal = WorkCalendar({})
    due_cache: dict[tuple[date, int], date] = {}
    wd_cache: dict[tuple[date, date], int] = {}

    def due(day: date, n: int) -> date:
        if (day, n) not in due_cache:
            due_cache[day, n] = cal.add_workdays(day, n).day
        return due_cache[day, n]

    def workdays(a: date, b: date) -> int:
        if (a, b) not in wd_cache:
            wd_cache[a, b] = cal.workdays_between(a, b)
        return wd_cache[a, b]

    days = [START + timedelta(days=i) for i in range(365) if cal.is_workday(START + timedelta(days=i))]
    with Session(engine, expire_on_commit=False) as s, s.begin():
        w = world(s, n_outlets)
    outlets, matters = w["outlets"], w["matters"]
    partner_code = {p.id: p.code for p in w["partners"]}
    end_t = utc(END, 24 * 60)
    case_id = rating_id = order_id = ticket_id = 0
    serial: dict[tuple[str, date], int] = {}
    with Session(engine) as s, s.begin():
        wr = Writer(s)
        for n in range(n_cases):
            o = outlets[rnd.randrange(len(outlets))]
            m, v = matters[rnd.choice((0, 0, 1, 2, 3, 4, 4))]
            day = rnd.choice(days)
            teller = rnd.choice(w["tellers"][o.id])
            reviewer = rnd.choice(w["reviewers"])
            t0 = utc(day, rnd.uniform(9 * 60, 16.5 * 60))
            key = (m.implementation_code, day)
            serial[key] = serial.get(key, 0) + 1
            number = f"{m.implementation_code}{day:%Y%m%d}{serial[key]:04d}"
            case_id += 1
            base = {"outlet": o.code, "partner": partner_code[o.partner_id], "case": number,
                    "matter": {"code": m.implementation_code, "version": 1}, "outcome": {"result": "done"},
                    "subject": w["applicant"].pseudonym}  # fmt: skip
            events: list[tuple[str, datetime, Any, str | None, str | None, dict[str, Any] | None]] = []

            def step(action: str, t: datetime, actor: Any, frm: str | None, to: str | None,
                     terms: dict[str, Any] | None = None, events: list[Any] = events) -> None:
                events.append((action, t, actor, frm, to, terms))

            row: dict[str, Any] = dict(id=case_id, number=number, check_code="123456", outlet_id=o.id,
                                       matter_id=m.id, matter_version_id=v.id, applicant_id=w["applicant"].id,
                                       service_mode="收件受理", state="draft", created_by=teller.id, created_at=t0,
                                       updated_at=t0, received_on=day, corrections=0, due_estimated=False,
                                       statutory_due_estimated=False, revision=0)  # fmt: skip
            step("case.create", t0, teller, None, "draft")
            t = t0 + timedelta(minutes=5)
            r = rnd.random()
            if r < 0.08:
                step("case.notice", t, teller, "draft", "draft")
                t += timedelta(minutes=20)
            if r < 0.03:
                step("case.refuse", t, teller, "draft", "refused")
                row["state"] = "refused"
            else:
                due_on = due(day, v.committed_days)
                rongque = rnd.random() < 0.05
                step("case.accept_rongque" if rongque else "case.accept", t, teller, "draft",
                     "rongque" if rongque else "accepted",
                     {"received": day.isoformat(), "due": due_on.isoformat()})
                row.update(accepted_at=t, due_on=due_on, statutory_due_on=due(day, v.statutory_days),
                           state="rongque" if rongque else "accepted")
                if rongque and rnd.random() < 0.8:
                    step("case.supply", t + timedelta(days=2), teller, "rongque", "accepted")
                    row["state"] = "accepted"
                finish: datetime | None = None
                if rnd.random() < 0.02:
                    step("case.withdraw", t + timedelta(days=1), teller, row["state"], "withdrawn")
                    row["state"] = "withdrawn"
                elif v.case_kind == "即办件":
                    finish = t + timedelta(minutes=15)
                    step("case.complete_onsite", finish, teller, "accepted", "approved")
                else:
                    ft = t + timedelta(minutes=10)
                    step("case.forward", ft, teller, row["state"], "forwarded")
                    row["forwarded_at"] = ft
                    ct = ft + timedelta(hours=20)
                    step("case.review_claim", ct, reviewer, "forwarded", "under_review")
                    if rnd.random() < 0.1:
                        step("case.request_correction", ct + timedelta(hours=1), reviewer, "under_review", "correction")
                        row["corrections"] = 1
                        step("case.resubmit", ct + timedelta(days=1), teller, "correction", "forwarded")
                        step("case.review_claim", ct + timedelta(days=1, hours=1), reviewer, "forwarded", "under_review")
                        ct += timedelta(days=1, hours=2)
                    k = rnd.choice(range(1, v.committed_days + 3))
                    finish = utc(due(day, k), rnd.uniform(9 * 60, 17 * 60))
                    finish = max(finish, ct + timedelta(minutes=30))
                    row["state"] = "under_review"
                    if finish <= end_t:
                        step("case.approve" if rnd.random() < 0.95 else "case.reject", finish, reviewer,
                             "under_review", "approved")
                    else:
                        finish = None
                if finish is not None and finish <= end_t:
                    done_day = (finish + CHINA).date()
                    hw = workdays(day, done_day)
                    row.update(state="approved", completed_at=finish, completed_on=done_day, handling_workdays=hw)
                    a, tm, ac, fr, to, _ = events[-1]
                    events[-1] = (a, tm, ac, fr, to, {"accepted": day.isoformat(), "due": due_on.isoformat(),
                                                      "workdays": hw, "corrections": row["corrections"]})
                    if rnd.random() < 0.3:  # rated after completion
                        rt = finish + timedelta(hours=2)
                        level = rnd.choices((5, 4, 3, 2, 1), (70, 15, 8, 4, 3))[0]
                        rating_id += 1
                        e = {**base, "time": zt(rt), "actor": {"id": 0, "role": "applicant"}, "action": "rating.submit",
                             "state": {"from": None, "to": "open" if level <= 2 else None},
                             "rating": {"level": level, "stage": "after", "channel": "qr",
                                        "dimensions": {"overall": level}, "reasons": [], "real_name": True,
                                        "object": "case"}}  # fmt: skip
                        if level <= 2:
                            e["terms"] = {"due": due((rt + CHINA).date(), 5).isoformat()}
                        idx = wr.entry(e)
                        wr.add(Rating, id=rating_id, outlet_id=o.id, case_id=case_id, staff_id=teller.id,
                               object="case", stage="after", channel="qr", level=level, reasons=[],
                               reasons_version=1, real_name=True, dedupe_key=f"{case_id}:after",
                               nonce=secrets.token_hex(8), created_at=rt, audit_index=idx, excluded=False)  # fmt: skip
                        if level <= 2:
                            order_id += 1
                            wo: dict[str, Any] = dict(id=order_id, rating_id=rating_id, outlet_id=o.id, state="open",
                                                      opened_at=rt, callback_due=due((rt + CHINA).date(), 1),
                                                      rectify_due=due((rt + CHINA).date(), 5))  # fmt: skip
                            if rt + timedelta(days=3) < end_t:
                                lead = teller
                                for j, (act, frm, to) in enumerate((("rating.callback", "open", "called_back"),
                                                                    ("rating.rectify", "called_back", "rectified"),
                                                                    ("rating.feedback", "rectified", "feedback"),
                                                                    ("rating.close", "feedback", "closed"))):
                                    st = rt + timedelta(hours=4 * (j + 1))
                                    ref: dict[str, Any] = {"entry": idx}
                                    if act == "rating.feedback":
                                        ref["view"] = "satisfied"
                                    wr.entry({**base, "time": zt(st), "actor": {"id": lead.id, "role": "teller"},
                                              "action": act, "state": {"from": frm, "to": to}, "rating": ref})
                                wo.update(state="closed", callback_at=rt + timedelta(hours=4), callback_reached=True,
                                          feedback_view="满意", closed_at=rt + timedelta(hours=16))
                            wr.add(RatingWorkOrder, **wo)
            wr.add(Case, **row)
            for action, tm, actor, frm, to, terms in events:
                e = {**base, "time": zt(tm), "actor": {"id": actor.id, "role": "reviewer" if actor.outlet_id is None
                                                       else "teller"}, "action": action,
                     "state": {"from": frm, "to": to}}  # fmt: skip
                if terms:
                    e["terms"] = terms
                wr.entry(e)
                wr.add(CaseEvent, case_id=case_id, at=tm, actor_id=actor.id, action=action, from_state=frm,
                       to_state=to)
            if n % 2 == 0:  # half the cases came through the queue: a ticket with its steps
                ticket_id += 1
                skey = (o.code, day)
                serial[skey] = serial.get(skey, 0) + 1
                tnum = f"A{serial[skey]:03d}"
                issued = t0 - timedelta(minutes=rnd.uniform(1, 40))
                called = t0 - timedelta(minutes=0.5)
                counter, line = w["counters"][o.id], w["lines"][o.id]
                q = {"line": "A", "ticket": tnum, "counter": None, "priority": None, "arrived": zt(issued)}
                no_show = rnd.random() < 0.04
                steps_ = [("issue", issued, None, "waiting"), ("call", called, "waiting", "called")]
                if no_show:
                    steps_.append(("no_show", called + timedelta(minutes=3), "called", "no_show"))
                else:
                    steps_ += [("serve", called + timedelta(minutes=1), "called", "serving"),
                               ("done", t0 + timedelta(minutes=rnd.uniform(8, 30)), "serving", "done")]
                wr.add(Ticket, id=ticket_id, outlet_id=o.id, line_id=line.id, day=day, serial=serial[skey],
                       number=tnum, state=steps_[-1][3], counter_id=counter.id, staff_id=teller.id,
                       issued_at=issued, called_at=called, public_code=secrets.token_urlsafe(9))  # fmt: skip
                for kind, tm, frm, to in steps_:
                    actor = {"id": 1, "role": "device"} if kind == "issue" else {"id": teller.id, "role": "teller"}
                    idx = wr.entry({"time": zt(tm), "actor": actor, "outlet": o.code,
                                    "partner": partner_code[o.partner_id], "action": f"ticket.{kind}",
                                    "outcome": {"result": "done"}, "state": {"from": frm, "to": to},
                                    "queue": {**q, "counter": None if kind == "issue" else 1}})  # fmt: skip
                    wr.add(TicketEvent, ticket_id=ticket_id, kind=kind, from_state=frm, to_state=to, at=tm,
                           line_id=line.id, counter_id=None if kind == "issue" else counter.id,
                           staff_id=None if kind == "issue" else teller.id, audit_index=idx)
            wr.flush()
        wr.flush(force=True)
    return wr.written


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    return timed_cpu(fn, repeat)[0], None


def timed_cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of this process (SQLite runs in it; a PostgreSQL
    server's own CPU is not counted) — on a shared machine the wall time is mostly waiting
    for a core, the CPU time is the work."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--outlets", type=int, default=50)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file in a temp folder)")
    ap.add_argument("--pg", action="store_true", help="start a throwaway PostgreSQL (tests/pg_server.py) and use it")
    ap.add_argument("--keep", help="folder for the database and the export (default: temporary)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--generate-only", action="store_true", help="stop after generating (use with --keep)")
    ap.add_argument("--figures-only", action="store_true", help="stop after the page timings (skip export/verify/stats)")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="figures-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    pg = None
    if args.pg:
        from tests import pg_server

        pg = pg_server.start()
        args.db = pg.new_database()
    url = args.db or f"sqlite:///{tmp / 'figures.db'}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    print(f"database: {engine.dialect.name}  ({url if args.db is None else engine.url.render_as_string()})")

    with Session(engine) as s:
        have = s.execute(text("SELECT count(*) FROM audit_entries")).scalar_one()
    t = time.perf_counter()
    n_entries = have or generate(engine, args.cases, args.outlets)  # --keep DIR: reuse its data
    gen = time.perf_counter() - t if not have else float("nan")
    with Session(engine) as s, s.begin():  # the bulk load bypassed the ORM: fold its steps in
        t = time.perf_counter()
        n_daily = rebuild(s) if not s.execute(text("SELECT count(*) FROM figures_daily")).scalar_one() else -1
        if n_daily >= 0:
            print(f"figures_daily rebuilt from the raw rows: {n_daily:,} rows in {time.perf_counter() - t:.1f} s")
    with Session(engine) as s:
        if engine.dialect.name == "sqlite":
            s.execute(text("ANALYZE"))
        else:
            s.connection().execute(text("ANALYZE"))
        s.commit()
        cases = s.execute(text("SELECT count(*) FROM service_case")).scalar_one()
        tickets = s.execute(text("SELECT count(*) FROM queue_ticket")).scalar_one()
        ratings = s.execute(text("SELECT count(*) FROM rating")).scalar_one()
    print(f"{'reused' if have else 'generated'} {cases:,} cases, {tickets:,} tickets, {ratings:,} ratings, "
          f"{n_entries:,} audit entries in {gen:.1f} s ({n_entries / gen:,.0f} entries/s)\n")
    if args.generate_only:
        return

    with Session(engine) as s:
        outlet_ids = [r[0] for r in s.execute(text("SELECT id FROM outlet ORDER BY id")).all()]
        partner_of = dict(s.execute(text("SELECT id, partner_id FROM outlet")).all())
        codes = dict(s.execute(text("SELECT id, code FROM outlet")).all())
    p1 = partner_of[outlet_ids[0]]
    scopes = {"center": Scope(), "partner": Scope(outlet_ids=frozenset(o for o in outlet_ids if partner_of[o] == p1)),
              "outlet": Scope(outlet_ids=frozenset({outlet_ids[0]}))}  # fmt: skip
    periods = {"30 days": Period(END - timedelta(days=29), END), "year": Period(START, END)}
    print(f"{'query':<34}{'center':>12}{'partner':>12}{'outlet':>12}   (median of {args.repeat}, ms)")
    for pname, period in periods.items():
        for what, fn in (("headline", lambda s, sc, p: headline(s, sc, p)),
                         ("breakdown by outlet", lambda s, sc, p: breakdown(s, sc, p, "outlet")),
                         ("breakdown by day", lambda s, sc, p: breakdown(s, sc, p, "day"))):
            cells = []
            for sc in scopes.values():
                with Session(engine) as s:
                    dt, _ = timed(lambda fn=fn, s=s, sc=sc, period=period: fn(s, sc, period), args.repeat if pname == "30 days" else max(1, args.repeat // 2))
                cells.append(f"{dt * 1000:>12.0f}")
            print(f"{what + ' · ' + pname:<34}{''.join(cells)}")

    # The dashboard page's work (web.routes.figures.dashboard_context: headline now and before,
    # the 30-day trend, the bars, the heat map) for the three viewers the goal names.
    from web.routes.figures import Query, dashboard_context

    viewers = {"center": Staff(username="b-admin", display_name="中心", password_hash="x", roles="admin"),
               "partner": Staff(username="b-pm", display_name="合作方", password_hash="x",
                                roles="partner_manager", partner_id=p1),
               "outlet": Staff(username="b-lead", display_name="负责人", password_hash="x",
                               roles="outlet_lead", outlet_id=outlet_ids[0])}  # fmt: skip
    month = Period(END - timedelta(days=29), END)
    for key in ("received", "overdue_open"):
        cells, cpu_cells = [], []
        for actor in viewers.values():
            with Session(engine) as s:
                dt, cpu = timed_cpu(lambda s=s, actor=actor, key=key: dashboard_context(
                    s, actor, Query("month", month, None, "", key), END), args.repeat)
            cells.append(f"{dt * 1000:>12.0f}")
            cpu_cells.append(f"{cpu * 1000:>12.0f}")
        print(f"{'dashboard page · 30 days · ' + key:<34}{''.join(cells)}   (goal < 500 ms)")
        print(f"{'  CPU of this process':<34}{''.join(cpu_cells)}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if args.figures_only:
        return

    log = Checkpointer(ORIGIN, [Signer.generate(ORIGIN)])
    t = time.perf_counter()
    log.sign_checkpoint(engine)
    sign_t = time.perf_counter() - t
    t = time.perf_counter()
    shutil.rmtree(tmp / "export", ignore_errors=True)
    export(engine, tmp / "export", log.policy())
    export_t = time.perf_counter() - t
    t = time.perf_counter()
    verify(tmp / "export", log.policy())
    verify_t = time.perf_counter() - t
    t = time.perf_counter()
    res = stats(tmp / "export", log.policy(), start=START, end=END)
    stats_t = time.perf_counter() - t
    pass_t = stats_t - verify_t
    print(f"\nintegrate + sign checkpoint: {sign_t:.1f} s; export: {export_t:.1f} s ({n_entries:,} entries)")
    print(f"audit verify:                 {verify_t:6.1f} s  {n_entries / verify_t:>10,.0f} entries/s")
    print(f"audit stats (verify + pass):  {stats_t:6.1f} s  {n_entries / stats_t:>10,.0f} entries/s")
    print(f"  figure pass alone (≈):      {pass_t:6.1f} s  {n_entries / max(pass_t, 1e-9):>10,.0f} entries/s")

    def equal(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
        return [k for k in a if not ((a[k] is None and b[k] is None) or (a[k] is not None and b[k] is not None
                and math.isclose(float(a[k]), float(b[k]), rel_tol=1e-9, abs_tol=1e-6)))]  # fmt: skip

    with Session(engine) as s:
        center = headline(s, Scope(), Period(START, END))
        one = headline(s, scopes["outlet"], Period(START, END))
    diff = equal(res.figures, center)
    one_res = stats(tmp / "export", log.policy(), start=START, end=END, outlet=codes[outlet_ids[0]])
    diff_one = equal(one_res.figures, one)
    for k in diff:
        print(f"  {k}: audit stats {res.figures[k]!r} · headline {center[k]!r}")
    print(f"audit stats == headline (year, center): {'yes' if not diff else 'NO: ' + ', '.join(diff)}; "
          f"(year, one outlet): {'yes' if not diff_one else 'NO: ' + ', '.join(diff_one)}")
    print(f"  e.g. 按期办结率 {center['on_time_rate']:.4f}, 超期未办结 {center['overdue_open']}, "
          f"好评率 {center['good_rate']:.4f}, 等候P90 {center['wait_p90']:.0f} s")
    print(f"files kept in {tmp}" if args.keep else "")
    engine.dispose()
    if pg is not None:
        pg.stop()


if __name__ == "__main__":
    main()
