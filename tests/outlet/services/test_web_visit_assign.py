"""上门办 across outlets (issue 12): teller1 at a bank outlet refers a resident to the street
point that serves them (海韵社区); the request waits unassigned (待派单) until that point's
lead (lead3) or the center assigns one of the point's block agents; reassigning is allowed
until the agent arrives. Every step and refusal is audited; other outlets see nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet.services.models import HomeVisit
from partners.models import Outlet, Staff
from tests.conftest import login
from tests.outlet.conftest import _staff, audit_rows, second_client

REFERRAL = {"kind": "帮办", "contact_name": "周大娘", "contact_phone": "13912345678",
            "address": "海韵路 30 号 2 单元 402", "reason": "年老", "channel": "窗口", "preferred": "周四上午"}


def _soup(r) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(r.text, "html.parser")


def _id(engine: Engine, model: type, **where: str) -> int:
    with Session(engine) as s:
        row = s.exec(select(model).where(*(getattr(model, k) == v for k, v in where.items()))).one()
        return int(row.id)


def _point(engine: Engine) -> int:
    return _id(engine, Outlet, code="HC-LYW-01")


def _refer(client: TestClient, demo: Engine, **extra: str) -> str:
    """teller1 (工商银行长江中路支行) refers a resident to 海韵社区; returns the visit number."""
    login(client, "teller1")
    r = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": str(_point(demo)), **extra},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    with Session(demo) as s:
        return s.exec(select(HomeVisit.number).order_by(HomeVisit.id.desc())).first()  # type: ignore[union-attr]


def _row(page: BeautifulSoup, number: str):  # type: ignore[no-untyped-def]
    return page.select_one(f'tr[data-visit="{number}"]')


def test_teller_refers_a_visit_the_points_lead_assigns_it_and_the_teller_sees_the_state(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    form = _soup(client.get("/services/visits/")).select_one("#new-visit-form")
    points = [o.text for o in form.select("select[name=outlet_id] option")]
    assert "琅琊湾街道海韵社区便民服务站" in points
    assert not any("工商银行" in p for p in points)  # a bank outlet has no block agents
    assert form.select_one("select[name=assignee_id]") is None  # the point's lead assigns
    number = _refer(client, demo)
    with Session(demo) as s:
        visit = s.exec(select(HomeVisit).where(HomeVisit.number == number)).one()
        teller_outlet = s.exec(select(Staff).where(Staff.username == "teller1")).one().outlet_id
    assert visit.outlet_id == _point(demo) and visit.requested_outlet_id == teller_outlet
    assert visit.assignee_id is None and visit.state == "unassigned"
    [entry] = audit_rows(demo, "visit.request")
    assert entry["outlet"] == "HC-LYW-01" and entry["state"] == {"from": None, "to": "unassigned"}
    assert entry["outcome"] == {"result": "done"} and entry["actor"]["role"] == "teller"
    row = _row(_soup(client.get("/services/visits/")), number)
    assert row.select_one("[data-state]").text == "待派单" and row.select_one("form") is None

    with second_client(client) as agent:  # nothing on the agent's phone before 派单
        login(agent, "agent1")
        assert _soup(agent.get("/services/visits/today")).select_one(f'a[data-visit="{number}"]') is None
        with second_client(client) as lead:
            login(lead, "lead3")  # the point's lead: 网点概况 says what waits, the queue has it
            waiting = _soup(lead.get("/services/figures", headers={"HX-Request": "true"}))
            assert waiting.select_one("#figure-unassigned").text == "待派单 1 件"
            row = _row(_soup(lead.get("/services/visits/")), number)
            assert row.select_one("[data-state]").text == "待派单"
            option = [o for o in row.select("form select[name=assignee_id] option") if o.text == "李秀兰"][0]
            r = lead.post(f"/services/visits/{number}/assign", data={"assignee_id": option["value"]},
                          follow_redirects=False)
            assert r.status_code == 303
            assert "已派给李秀兰" in _soup(lead.get("/services/visits/")).select_one("#flash").text
            after = _soup(lead.get("/services/figures", headers={"HX-Request": "true"}))
            assert after.select_one("#figure-unassigned") is None
        assert _soup(agent.get("/services/visits/today")).select_one(f'a[data-visit="{number}"]')
    [assigned] = audit_rows(demo, "visit.assign")
    assert assigned["state"] == {"from": "unassigned", "to": "assigned"} and assigned["case"] == number
    assert assigned["actor"]["role"] == "outlet_lead" and assigned["outcome"] == {"result": "done"}
    row = _row(_soup(client.get("/services/visits/")), number)  # teller1 follows the request
    assert row.select_one("[data-state]").text == "待上门" and "李秀兰" in row.select_one(".visit-agent").text
    page = _soup(client.get(f"/services/visits/{number}"))
    assert "网格员 李秀兰" in page.select_one("#visit-agent").text
    assert page.select_one("#contact-phone").text == "139****5678"  # masked for the teller


def test_reassign_before_the_visit_starts_is_audited_and_refused_once_the_agent_arrived(client, demo) -> None:  # type: ignore[no-untyped-def]
    with Session(demo, expire_on_commit=False) as s, s.begin():
        agent2 = _staff(s, "agent2", "block_agent", s.get(Outlet, _point(demo)))
    number = _refer(client, demo)
    agent1 = _id(demo, Staff, username="agent1")
    with second_client(client) as lead:
        login(lead, "lead3")
        assert lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent1)},
                         follow_redirects=False).status_code == 303
        same = lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent1)})
        assert same.status_code == 422 and "无需改派" in _soup(same).select_one("#assign-error").text
        r = lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent2.id)},
                      follow_redirects=False)
        assert r.status_code == 303
        with second_client(client) as phone:
            login(phone, "agent2")
            now = datetime.now(UTC).isoformat()
            arrived = phone.post(f"/services/visits/{number}/submit", data={
                "kind": "arrive", "client_id": "arrive-reassigned", "phone_time": now, "arrive_no_gps": "其他"})
            assert arrived.status_code == 200, arrived.text
        late = lead.post(f"/services/visits/{number}/assign", data={"assignee_id": str(agent1)})
        assert late.status_code == 409
        assert "不能改派" in _soup(late).select_one("#visit-assign-error").text
        assert _soup(late).select_one(f"#assign-{number}") is None  # arrived: no 改派 form any more
    with Session(demo) as s:
        visit = s.exec(select(HomeVisit).where(HomeVisit.number == number)).one()
    assert visit.assignee_id == agent2.id and visit.state == "arrived"
    steps = [(e["state"]["from"], e["state"]["to"], e["outcome"]["result"]) for e in audit_rows(demo, "visit.assign")]
    assert steps == [("unassigned", "assigned", "done"), ("assigned", "assigned", "done"),
                     ("arrived", "arrived", "refused")]
    assert audit_rows(demo, "visit.assign")[-1]["outcome"]["reason"] == "illegal_transition"


def test_assign_refusals_and_scoping(client, demo) -> None:  # type: ignore[no-untyped-def]
    with Session(demo, expire_on_commit=False) as s, s.begin():
        h = s.get(Outlet, _point(demo))
        assert h is not None
        other = Outlet(code="HC-TEST-02", partner_id=h.partner_id, name="琅琊湾街道另一社区服务站",
                       address="海川市西岸新区琅琊湾路 1 号", kind="block")
        s.add(other)
        s.flush()
        _staff(s, "lead9", "outlet_lead", other)
    number = _refer(client, demo)
    agent1 = str(_id(demo, Staff, username="agent1"))
    # a teller elsewhere cannot name the point's agent: the point's lead assigns (input kept)
    named = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": str(_point(demo)),
                                                      "assignee_id": agent1, "contact_name": "钱大爷"})
    assert named.status_code == 422 and "由该站负责人派单" in named.text
    assert _soup(named).select_one("input[name=contact_name]")["value"] == "钱大爷"
    # a matter the point holds no grant for is refused at the point, and recorded
    with Session(demo) as s:
        from partners.models import Matter, MatterVersion
        card = s.exec(select(Matter.id).join(MatterVersion, MatterVersion.matter_id == Matter.id)  # type: ignore[arg-type]
                      .where(MatterVersion.name == "社会保障卡申领")).first()
    refused = client.post("/services/visits/new", data={**REFERRAL, "outlet_id": str(_point(demo)),
                                                        "matter_id": str(card)})
    assert refused.status_code == 403 and "海韵社区" in _soup(refused).select_one("#visit-error").text
    assert [e["outcome"]["result"] for e in audit_rows(demo, "visit.request")] == ["done", "refused"]
    # teller1 follows the request but does not dispatch it (no form; a forged post is 404)
    assert _row(_soup(client.get("/services/visits/")), number).select_one("form") is None
    assert client.post(f"/services/visits/{number}/assign", data={"assignee_id": agent1}).status_code == 404
    with second_client(client) as c:
        login(c, "agent1")  # a block agent of the point does not dispatch: audited refusal
        r = c.post(f"/services/visits/{number}/assign", data={"assignee_id": agent1})
        assert r.status_code == 403 and "无权" in _soup(r).select_one("#visit-assign-error").text
        # nor may they work a visit nobody was given
        arrive = c.post(f"/services/visits/{number}/submit", data={
            "kind": "arrive", "client_id": "arrive-unassigned", "phone_time": datetime.now(UTC).isoformat(),
            "arrive_no_gps": "其他"})
        assert arrive.status_code == 403 and "尚未派单" in arrive.json()["error"]
    with second_client(client) as c:
        login(c, "lead9")  # another street point's lead: the visit does not exist for them
        assert c.post(f"/services/visits/{number}/assign", data={"assignee_id": agent1}).status_code == 404
        assert c.get(f"/services/visits/{number}").status_code == 404
        assert _row(_soup(c.get("/services/visits/")), number) is None
    with second_client(client) as c:
        login(c, "lead1")  # the requesting bank's lead follows it but does not dispatch it
        assert c.get(f"/services/visits/{number}").status_code == 200
        assert c.post(f"/services/visits/{number}/assign", data={"assignee_id": agent1}).status_code == 404
    with second_client(client) as c:
        login(c, "lead3")  # only the point's own block agents
        teller = str(_id(demo, Staff, username="teller1"))
        bad = c.post(f"/services/visits/{number}/assign", data={"assignee_id": teller})
        assert bad.status_code == 422 and "在岗的网格帮办代办员" in bad.text
    refusals = [e for e in audit_rows(demo, "visit.assign") if e["outcome"]["result"] == "refused"]
    assert [e["outcome"]["reason"] for e in refusals] == ["role_lacks_action"]
    with Session(demo) as s:
        visit = s.exec(select(HomeVisit).where(HomeVisit.number == number)).one()
    assert visit.state == "unassigned" and visit.assignee_id is None


def test_the_center_assigns_a_referred_visit(client, demo) -> None:  # type: ignore[no-untyped-def]
    number = _refer(client, demo)
    with second_client(client) as admin:
        login(admin, "admin")
        row = _row(_soup(admin.get("/services/visits/")), number)
        assert row.select_one("[data-state]").text == "待派单" and row.select_one("form")
        agent1 = str(_id(demo, Staff, username="agent1"))
        assert admin.post(f"/services/visits/{number}/assign", data={"assignee_id": agent1},
                          follow_redirects=False).status_code == 303
    [entry] = audit_rows(demo, "visit.assign")
    assert entry["actor"]["role"] == "admin" and entry["state"]["to"] == "assigned"
