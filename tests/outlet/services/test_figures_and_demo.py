"""Service figures (per kind/staff/matter/day, visits on time, mean visit length) and the
demo week, seeded through the real service functions."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session, select

import audit
from outlet.clock import local_day
from outlet.files import FileStore
from outlet.models import CasePromise
from outlet.services import figures, records, visits
from outlet.services.demo import seed_demo_services
from outlet.services.models import HomeVisit, ServiceRecord, VisitSubmission
from outlet.services.records import NewService
from outlet.services.visits import NewVisit
from tests.outlet.conftest import AT, KEY
from tests.outlet.services.conftest import ServiceWorld, photo, png


def test_figures_count_by_kind_staff_matter_and_visits_on_time(sw: ServiceWorld, tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = sw.w
    for kind, matter in (("咨询", None), ("咨询", w.committed.id), ("帮办", w.committed.id)):
        records.open_service(w.engine, w.teller_a, NewService(kind=kind, matter_id=matter, topic="t"),
                             pseudonym_key=KEY, at=AT)
    records.open_service(w.engine, sw.teller_a2, NewService(kind="陪办", matter_id=w.committed.id, topic="t"),
                         pseudonym_key=KEY, at=AT + timedelta(days=1))
    v = visits.request_visit(w.engine, sw.agent_a, NewVisit(
        kind="帮办", contact_name="王", address="a", reason="年老", assignee_id=sw.agent_a.id), pii_key=KEY, at=AT)
    late = visits.request_visit(w.engine, sw.agent_a, NewVisit(
        kind="帮办", contact_name="李", address="b", reason="重病", assignee_id=sw.agent_a.id), pii_key=KEY, at=AT)
    t0 = AT + timedelta(hours=1)
    stamp = (t0.isoformat() + "Z", (t0 + timedelta(minutes=40)).isoformat() + "Z")
    visits.submit(w.engine, sw.agent_a, v.number, "arrive", "a-00000001",
                  {"phone_time": stamp[0], "arrive_no_gps": "其他"}, at=t0)
    visits.submit(w.engine, sw.agent_a, v.number, "complete", "c-00000001",
                  {"phone_time": stamp[1], "outcome": "done", "leave_no_gps": "其他"},
                  photos=[photo()], signature=png(), store=FileStore(tmp_path),
                  at=t0 + timedelta(minutes=40))
    day = local_day(AT)
    with Session(w.engine) as s:
        kinds = dict(figures.service_counts(s, None, day, day, "kind"))
        assert kinds == {"咨询": 2, "帮办": 2}  # the home visit counts as 帮办
        assert dict(figures.service_counts(s, [w.outlet_b.id or 0], day, day, "kind")) == {}
        week = dict(figures.service_counts(s, None, day, day + timedelta(days=1), "kind"))
        assert week["陪办"] == 1
        staff = dict(figures.service_counts(s, None, day, day, "staff"))
        assert staff == {"teller.a": 3, "agent.a": 1}
        matters = dict(figures.service_counts(s, None, day, day, "matter"))
        assert matters["（未涉及具体事项）"] == 1 + 1 and matters["城乡居民养老保险参保登记"] == 2
        assert figures.service_counts(s, None, day, day + timedelta(days=1), "day")[-1] == (
            (day + timedelta(days=1)).isoformat(), 1)
        vf = figures.visit_figures(s, None, day, day)
        assert (vf.done, vf.on_time, vf.average_minutes) == (1, 1, 40.0)
        due = s.exec(select(HomeVisit).where(HomeVisit.number == late.number)).one().due_on
        assert figures.visit_figures(s, None, day, due + timedelta(days=1)).open_overdue == 1


def test_demo_week_is_seeded_through_the_service_functions(demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    today = date(2026, 11, 27)  # a Friday
    made = seed_demo_services(demo, KEY, tmp_path / "files", today=today, pii_key=KEY)
    assert made > 10
    assert seed_demo_services(demo, KEY, tmp_path / "files", today=today, pii_key=KEY) == 0  # idempotent
    with Session(demo) as s:
        kinds = {r.kind for r in s.exec(select(ServiceRecord))}
        assert kinds == {"咨询", "帮办", "陪办", "代办"}
        done = s.exec(select(HomeVisit).where(HomeVisit.state == "done")).all()
        assert len(done) == 3 and len(s.exec(select(HomeVisit)).all()) == 5
        # a newcomer sees 待派单: teller1's referral to the street point waits for its lead
        [waiting] = s.exec(select(HomeVisit).where(HomeVisit.state == "unassigned")).all()
        assert waiting.assignee_id is None and waiting.requested_outlet_id != waiting.outlet_id
        offline = [v for v in done if v.left_at and v.left_phone_at and v.left_at - v.left_phone_at > timedelta(hours=1)]
        assert len(offline) == 1  # done offline, synced later
        assert len(s.exec(select(VisitSubmission)).all()) == 6
        assert s.exec(select(CasePromise)).one().check_result is None
        page = audit.search_entries(s, action="visit.complete", limit=10)
        assert len(page.entries) == 3
        assert all({d["kind"] for d in e.entry["digests"]} == {"photo", "signature"} for e in page.entries)
