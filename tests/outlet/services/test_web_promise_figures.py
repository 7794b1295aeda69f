"""告知承诺 through the case pages (sign → printable 告知承诺书 → center 核查 不属实 → 撤销)
and the lead's service figures on the home page."""

from __future__ import annotations

from bs4 import BeautifulSoup
from sqlmodel import Session, col, select

from outlet import decisions, review
from outlet.models import CasePromise
from partners.models import Matter, MatterVersion, Staff
from tests.conftest import login
from tests.outlet.conftest import audit_rows, second_client

HX = {"HX-Request": "true"}


def _soup(r) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(r.text, "html.parser")


def test_promise_signed_printed_checked_false_and_revoked(client, demo) -> None:  # type: ignore[no-untyped-def]
    with Session(demo) as s:
        mid = s.exec(select(Matter.id).join(MatterVersion, col(MatterVersion.matter_id) == Matter.id)
                     .where(MatterVersion.name == "住房公积金提取（离休、退休）")).first()
        staff = {u: s.exec(select(Staff).where(Staff.username == u)).one() for u in ("teller1", "reviewer3")}
    login(client, "teller1")
    r = client.post("/cases/new", data={"matter_id": str(mid), "applicant_kind": "person", "applicant_name": "高淑芬",
                                        "id_number": "370211196101150026"}, follow_redirects=False)
    number = r.headers["location"].rsplit("/", 1)[1]
    assert _soup(client.get(f"/cases/{number}")).select_one("#case-promise-slot")
    panel = _soup(client.get(f"/services/promise/{number}", headers=HX))
    boxes = panel.select("#promise-sign-form input[name=keys]")
    assert [b.parent.text.strip() for b in boxes] == ["离退休证明或基本养老金领取证明"]
    empty = client.post(f"/services/promise/{number}/sign", data={})
    assert empty.status_code == 422 and _soup(empty).select_one("#promise-error")
    ok = client.post(f"/services/promise/{number}/sign", data={"keys": boxes[0]["value"]}, follow_redirects=False)
    assert ok.status_code == 303
    panel = _soup(client.get(f"/services/promise/{number}", headers=HX))
    link = panel.select_one("#promise-materials a")["href"]
    printed = _soup(client.get(link))
    assert "告知承诺书" in printed.select_one("h1").text
    assert "撤销" in printed.select_one("#promise-consequence").text
    assert "离退休证明" in printed.select_one("#notice-items").text
    # a line the promise replaced cannot be marked missing: refused, recorded, still replaced
    missing = client.post(f"/cases/{number}/materials/{boxes[0]['value']}", data={"status": "missing"})
    assert missing.status_code == 409 and "已由告知承诺书" in missing.text
    line = _soup(client.get(f"/cases/{number}")).select_one(f'#case-materials tr[data-key="{boxes[0]["value"]}"]')
    assert line["data-status"] == "received" and "告知承诺" in line.text
    assert audit_rows(demo, case=number)[-1]["outcome"] == {"result": "refused", "reason": "promised_material"}
    e, t, rv = demo, staff["teller1"], staff["reviewer3"]
    rows = client.get(f"/cases/{number}")
    for key in [tr["data-key"] for tr in _soup(rows).select("#case-materials tr.material")
                if tr.get("data-status") != "received"]:
        client.post(f"/cases/{number}/materials/{key}", data={"status": "received"})
    decisions.accept(e, t, number)
    decisions.forward(e, t, number)
    review.claim(e, rv, number)
    review.approve(e, rv, number)
    with second_client(client) as center:
        login(center, "reviewer3")
        panel = _soup(center.get(f"/services/promise/{number}", headers=HX))
        assert panel.select_one("#promise-check-form") and not panel.select_one("#promise-revoke-form")
        bad = center.post(f"/services/promise/{number}/check", data={"result": "不属实", "note": ""})
        assert bad.status_code == 422 and _soup(bad).select_one("#err-note")
        center.post(f"/services/promise/{number}/check", data={"result": "不属实", "note": "社保系统无退休记录"})
        panel = _soup(center.get(f"/services/promise/{number}", headers=HX))
        assert panel.select_one("#promise-check").text == "不属实"
        empty = center.post(f"/services/promise/{number}/revoke", data={"reason": " "})
        assert empty.status_code == 422 and "撤销决定的理由" in empty.text
        long = center.post(f"/services/promise/{number}/revoke", data={"reason": "理" * 501})
        assert long.status_code == 422 and "不超过 500 字" in long.text
        assert "理" * 501 in long.text  # the input is kept
        center.post(f"/services/promise/{number}/revoke", data={"reason": "承诺不实，撤销准予决定"})
        page = _soup(center.get(f"/review/{number}"))
        assert page.select_one("#case-number ~ .badge.state-revoked")
    assert client.post(f"/services/promise/{number}/check", data={"result": "属实"}).status_code == 403
    with Session(demo) as s:
        assert s.exec(select(CasePromise)).one().revoke_reason == "承诺不实，撤销准予决定"
    actions = [x["action"] for x in audit_rows(demo, case=number) if x["outcome"]["result"] == "done"]
    assert actions[-2:] == ["case.promise_check", "case.revoke"] and "case.promise" in actions


def test_lead_sees_todays_services_counted_on_the_home_page(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")
    client.post("/services/new", data={"kind": "咨询", "topic": "社保卡补办流程"})
    client.post("/services/new", data={"kind": "咨询", "topic": "公积金提取"})
    with second_client(client) as lead:
        login(lead, "lead1")
        assert _soup(lead.get("/cases/outlet")).select_one("#service-figures-slot[hx-get='/services/figures']")
        fig = _soup(lead.get("/services/figures", headers=HX))
        assert fig.select_one("#figure-total").text == "2"
        assert fig.select_one("#figures-kind tr[data-kind=咨询] td.num").text == "2"
    own = _soup(client.get("/services/figures", headers=HX))  # a teller: her own records only
    assert "本人" in own.select_one("#figure-scope").text and own.select_one("#figure-total").text == "2"
    assert not own.select_one("#figures-outlet")


def test_service_figures_are_scoped_like_every_figure(client, demo) -> None:  # type: ignore[no-untyped-def]
    login(client, "teller1")  # 工商银行长江中路支行
    client.post("/services/new", data={"kind": "咨询", "topic": "社保卡补办流程"})
    with second_client(client) as agent:
        login(agent, "agent1")  # the street point
        agent.post("/services/new", data={"kind": "咨询", "topic": "低保申请条件"})
    seen = {}
    for user in ("admin", "partner1", "lead3", "lead2", "agent1"):
        with second_client(client) as c:
            login(c, user)
            r = c.get("/services/figures", headers=HX)
            assert r.status_code == 200, user
            page = _soup(r)
            seen[user] = (page.select_one("#figure-total").text,
                          [td.text for td in page.select("#figures-outlet tbody td:first-child")])
    assert seen["admin"][0] == "2" and len(seen["admin"][1]) == 2  # the center: every outlet
    assert seen["partner1"][0] == "1"  # 工商银行: its own outlets, not the street point
    assert seen["lead3"][0] == "1" and seen["lead2"][0] == "0"  # a lead: their own outlet
    assert seen["agent1"][0] == "1"
    with second_client(client) as c:
        login(c, "auditor")
        assert c.get("/services/figures").status_code == 403
