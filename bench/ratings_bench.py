"""好差评 benchmark, printed (never asserted):

1. rating submissions per second at the 评价器 through the full app (session, CSRF, device
   token, validation, rating row, audit append, SQLite WAL) against a plain Starlette form
   endpoint in the same process and run;
2. the time to compute a month's figures (``outlet.figures.ratings.cards``, what the center's
   ratings page shows: per outlet and the total) for 50 outlets with
   100,000 ratings, 60,000 completed cases and the 差评 work orders (goal: < 300 ms on
   SQLite). The data set is bulk-inserted (it measures the read side only);
3. on the same data (~5,000 work orders, all past their deadlines): the center's three
   work-order lists as paged now (one page of 50 + an SQL count each, ``views.orders_page``)
   against the old single cut list (``views.orders(limit=200)``) in the same run.

Each figure is printed as wall time and as CPU time of this process (``process_time``): on
a shared, busy machine the wall time mostly measures waiting for a core, the CPU time what
the code costs.

    .venv/bin/python bench/ratings_bench.py [--ratings 300] [--figure-ratings 100000]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Using `httpx`")

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session, SQLModel, select  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import web.models  # noqa: E402,F401
from bench.intake_bench import plain_app  # noqa: E402
from outlet import devices  # noqa: E402
from outlet.figures import Period, Scope  # noqa: E402
from outlet.figures import ratings as rating_figures  # noqa: E402
from outlet.models import Applicant, Case  # noqa: E402
from outlet.ratings import views  # noqa: E402
from outlet.ratings.models import Rating, RatingWorkOrder  # noqa: E402
from partners.demo import seed_demo  # noqa: E402
from partners.models import Matter, MatterVersion, Outlet, Partner, Staff  # noqa: E402
from web.app import create_app  # noqa: E402
from web.db import make_engine  # noqa: E402
from web.settings import Settings  # noqa: E402

Timings = tuple[list[float], list[float]]  # (wall seconds, CPU seconds) per request


def bench_plain(n: int) -> Timings:
    times, cpu = [], []
    with TestClient(plain_app()) as client:
        for i in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.post("/echo", data={"name": f"张三{i}"})
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert r.status_code == 200
    return times, cpu


def bench_submit(n: int, tmp: Path) -> Timings:
    settings = Settings.from_env(data_dir=tmp / "var", database_url=f"sqlite:///{tmp / 'r.db'}",
                                 secret_key_override="bench")
    engine = make_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    seed_demo(engine)
    with Session(engine) as s:
        lead = s.exec(select(Staff).where(Staff.username == "lead1")).one()
        teller = s.exec(select(Staff).where(Staff.username == "teller1")).one()
    _device, token = devices.pair(engine, lead, kind="rating_pad", label="bench",
                                  staff_id=teller.id)
    times, cpu = [], []
    with TestClient(create_app(settings)) as client:
        client.get(f"/devices/activate/{token}")
        page = client.get("/rate/pad").text
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        for i in range(n):
            data = {"csrf_token": csrf, "nonce": secrets.token_urlsafe(16), "stage": "during",
                    "level": str(5 - i % 3), "reasons": ["g_fast"] if i % 3 < 2 else []}
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.post("/rate/pad", data=data)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert r.status_code == 200 and "感谢您的评价" in r.text, r.text[:300]
    engine.dispose()
    return times, cpu


def build_figures_db(tmp: Path, n_ratings: int, n_outlets: int = 50) -> tuple[object, date]:
    engine = make_engine(f"sqlite:///{tmp / 'f.db'}")
    SQLModel.metadata.create_all(engine)
    rnd = random.Random(7)
    start = date(2026, 10, 1)
    with Session(engine) as s, s.begin():
        p = Partner(code="P", name="bench", kind="bank")
        s.add(p)
        s.flush()
        outlets = [Outlet(code=f"O{i}", partner_id=p.id or 0, name=f"网点{i}", address="-",
                          kind="bank") for i in range(n_outlets)]
        s.add_all(outlets)
        m = Matter(basic_code="B", implementation_code="I")
        s.add(m)
        s.flush()
        v = MatterVersion(matter_id=m.id or 0, version=1, name="x", matter_type="20", domain="社保",
                          case_kind="承诺件", statutory_days=5, committed_days=5)
        st = Staff(username="t", display_name="t", password_hash="-", roles="teller")
        a = Applicant(kind="person", name="x", id_number="x", pseudonym="p")
        s.add_all([v, st, a])
        s.flush()
        ids = [o.id for o in outlets]

        def when() -> datetime:
            return datetime(2026, 9, 30, 16) + timedelta(seconds=rnd.randrange(31 * 86400))

        cases = [{"number": f"N{i}", "check_code": "000000", "outlet_id": rnd.choice(ids),
                  "matter_id": m.id, "matter_version_id": v.id, "applicant_id": a.id,
                  "service_mode": "收件受理", "state": "delivered", "created_by": st.id,
                  "completed_at": when(), "created_at": when(), "updated_at": when()}
                 for i in range(int(n_ratings * 0.6))]
        s.execute(insert(Case), cases)
        case_ids = list(s.exec(select(Case.id, Case.outlet_id)).all())
        ratings = []
        for i in range(n_ratings):
            cid, oid = case_ids[i] if i < len(case_ids) * 0.7 else (None, rnd.choice(ids))
            level = rnd.choices([5, 4, 3, 2, 1], weights=[70, 18, 7, 3, 2])[0]
            ratings.append({"outlet_id": oid, "case_id": cid, "object": "case", "stage": "during",
                            "channel": "qr", "level": level, "reasons": [], "reasons_version": 1,
                            "real_name": cid is not None, "created_at": when(),
                            "efficiency": level if i % 4 == 0 else None, "excluded": i % 97 == 0,
                            "nonce": f"n{i}", "dedupe_key": f"c{i}"})
        s.execute(insert(Rating), ratings)
        bad = s.exec(select(Rating.id, Rating.outlet_id).where(Rating.level <= 2)).all()
        s.execute(insert(RatingWorkOrder), [
            {"rating_id": rid, "outlet_id": oid, "state": rnd.choice(["open", "closed"]),
             "opened_at": datetime(2026, 10, 5), "callback_due": date(2026, 10, 6),
             "rectify_due": date(2026, 10, 12), "feedback_view": rnd.choice([None, "满意"])}
            for rid, oid in bad])
    return engine, start


def bench_lists(engine: object) -> tuple[list[float], list[float], int]:
    """Wall times of the center's paged lists and of the old cut list (baseline), and the
    number of escalated orders the count reports."""
    admin = Staff(id=1, username="adm", display_name="adm", password_hash="-", roles="admin")
    today = date(2026, 11, 2)
    paged, cut, total = [], [], 0
    for _ in range(7):
        with Session(engine) as s:  # type: ignore[arg-type]
            t0 = time.perf_counter()
            views.orders_page(s, admin, today, 1, 50)
            total = views.orders_page(s, admin, today, 1, 50, overdue=True).total
            views.orders_page(s, admin, today, 1, 50, unit="outlet", unfinished=True)
            paged.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            views.orders(s, admin, today, limit=200)
            cut.append(time.perf_counter() - t0)
    return paged, cut, total


def bench_figures(tmp: Path, n_ratings: int) -> tuple[list[float], list[float], int,
                                                      tuple[list[float], list[float], int]]:
    engine, start = build_figures_db(tmp, n_ratings)
    period = Period(start, (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
    times, cpu = [], []
    outlets = 0
    for _ in range(7):
        with Session(engine) as s:  # type: ignore[arg-type]
            t0, c0 = time.perf_counter(), time.process_time()
            per, _total = rating_figures.cards(s, Scope(), period, "outlet")
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            outlets = len(per)
    lists = bench_lists(engine)
    engine.dispose()  # type: ignore[attr-defined]
    return times, cpu, outlets, lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ratings", type=int, default=300)
    parser.add_argument("--figure-ratings", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        plain, plain_cpu = bench_plain(args.ratings)
        full, full_cpu = bench_submit(args.ratings, Path(d))
        fig, fig_cpu, outlets, (paged, cut, overdue) = bench_figures(Path(d), args.figure_ratings)
    med = statistics.median
    mp, mf = med(plain) * 1000, med(full) * 1000
    cp, cf = med(plain_cpu) * 1000, med(full_cpu) * 1000
    print(f"plain Starlette form POST : median {mp:.2f} ms wall, {cp:.2f} ms CPU "
          f"({len(plain) / sum(plain):.0f} req/s)")
    print(f"评价器 rating POST (full app + audit append): median {mf:.2f} ms wall, {cf:.2f} ms CPU, "
          f"p90 {statistics.quantiles(full, n=10)[-1] * 1000:.2f} ms "
          f"({len(full) / sum(full):.0f} ratings/s)")
    print(f"ratio rating / plain: {mf / mp:.1f}x wall, {cf / cp:.1f}x CPU")
    print(f"month figures, {outlets} outlets, {args.figure_ratings} ratings: median "
          f"{med(fig) * 1000:.0f} ms wall, {med(fig_cpu) * 1000:.0f} ms CPU, max "
          f"{max(fig) * 1000:.0f} ms (goal < 300 ms)")
    print(f"center work-order lists, 3 pages of 50 + 3 SQL counts ({overdue} overdue counted): "
          f"median {med(paged) * 1000:.1f} ms wall; old single list limit=200: "
          f"{med(cut) * 1000:.1f} ms; ratio {med(paged) / med(cut):.2f}x")


if __name__ == "__main__":
    main()
