"""好差评 over HTTP: the QR page (no JavaScript needed), the 评价器, the lead's work order
pages, the center's appeals and settings — messages in Chinese, input kept, right status."""

from __future__ import annotations

import hashlib

from bs4 import BeautifulSoup
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import devices
from outlet.ratings.models import Rating, RatingWorkOrder
from partners.models import utcnow
from tests.conftest import login
from tests.outlet.conftest import audit_rows, second_client
from tests.outlet.ratings.conftest import RatingWorld


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _rate_form(client: TestClient, number: str) -> dict[str, str]:
    page = soup(client.get(f"/rate/{number}").text)
    assert page.select("input[name=level][checked]") == []  # never a pre-selected level
    return {"csrf_token": page.select_one("input[name=csrf_token]")["value"],
            "nonce": page.select_one("input[name=nonce]")["value"]}


def test_web_qr_rating_refusals_keep_input_then_a_2_star_opens_a_work_order(
        rw: RatingWorld, client: TestClient) -> None:
    number = rw.w.drive("accepted")
    code = rw.w.case(number).check_code
    wrong = "000000" if code != "000000" else "111111"
    form = _rate_form(client, number)
    r = client.post(f"/rate/{number}", data={**form, "check_code": code, "stage": "during",
                                             "level": "9", "text": "等了很久"})
    page = soup(r.text)
    assert r.status_code == 422 and "满意程度须为1至5" in page.select_one("#level-field").text
    assert page.select_one("#check_code")["value"] == code
    assert page.select_one("#rating-text").text == "等了很久"
    r = client.post(f"/rate/{number}", data={**form, "check_code": wrong, "stage": "during",
                                             "level": "2"})
    assert r.status_code == 404 and "查询码不正确" in soup(r.text).select_one("#rate-error").text
    assert soup(r.text).select_one("input[name=level][value='2']").has_attr("checked")
    r = client.post(f"/rate/{number}", data={**form, "check_code": code, "stage": "after",
                                             "level": "2"})
    assert r.status_code == 409 and "尚未办结" in soup(r.text).select_one("#rate-error").text
    r = client.post(f"/rate/{number}", data={**form, "check_code": code, "stage": "during",
                                             "level": "2", "reasons": ["b_wait"]})
    assert r.status_code == 200 and "1个工作日内" in soup(r.text).select_one("#rating-done").text
    replay = client.post(f"/rate/{number}", data={**form, "check_code": code, "stage": "during",
                                                  "level": "2"})
    assert replay.status_code == 409 and "请勿重复提交" in replay.text
    again = client.post(f"/rate/{number}", data={**_rate_form(client, number), "check_code": code,
                                                  "stage": "during", "level": "5"})
    assert again.status_code == 409 and "每个阶段只能评价一次" in again.text
    with Session(rw.engine) as s:
        assert [r.level for r in s.exec(select(Rating)).all()] == [2]
        assert s.exec(select(RatingWorkOrder)).one().state == "open"


def test_web_lead_works_the_order_to_closed(rw: RatingWorld, client: TestClient) -> None:
    order = rw.bad_order()
    login(client, "lead.a")
    home = soup(client.get("/ratings/").text)
    assert home.select_one(f"#orders-table tr[data-order='{order.id}']") is not None
    base = f"/ratings/orders/{order.id}"
    r = client.post(f"{base}/close")
    assert r.status_code == 409 and "工单当前为「待回访」" in soup(r.text).select_one("#order-error").text
    r = client.post(f"{base}/callback", data={"reached": "yes", "note": ""})
    assert r.status_code == 422 and "请填写回访情况" in r.text
    for step, data in (("callback", {"reached": "yes", "note": "已致电申请人，了解等候时间过长"}),
                       ("rectify", {"kind": "rectify", "note": "高峰时段增开窗口"}),
                       ("feedback", {"view": "满意"}), ("close", {})):
        r = client.post(f"{base}/{step}", data=data, follow_redirects=False)
        assert r.status_code == 303, (step, r.text)
    page = soup(client.get(base).text)
    assert page.select_one("#order-state").text == "已销号"
    assert "高峰时段增开窗口" in page.select_one("#step-rectify").text
    actions = [e["action"] for e in audit_rows(rw.engine) if e["outcome"]["result"] == "done"]
    assert actions[-4:] == ["rating.callback", "rating.rectify", "rating.feedback", "rating.close"]
    with second_client(client) as teller:
        login(teller, "teller.a")
        assert teller.post(f"{base}/close").status_code == 403


def test_web_rating_pad_rates_the_paired_teller_and_refuses_a_revoked_token(
        rw: RatingWorld, client: TestClient) -> None:
    device, token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="1号窗口评价器",
                                 counter="1号窗口", staff_id=rw.w.teller_a.id)
    client.get(f"/devices/activate/{token}")
    page = soup(client.get("/rate/pad").text)
    assert page.select_one("#pad-staff").text == "teller.a"
    assert page.select_one("#rating-pad")["data-idle-seconds"] == "120"
    form = {"csrf_token": page.select_one("input[name=csrf_token]")["value"],
            "nonce": page.select_one("input[name=nonce]")["value"], "stage": "during"}
    r = client.post("/rate/pad", data={**form, "level": "5", "reasons": ["b_wait"]})
    assert r.status_code == 422 and "与满意程度不符" in r.text
    r = client.post("/rate/pad", data={**form, "level": "5", "reasons": ["g_polite"]})
    done = soup(r.text)
    assert r.status_code == 200 and done.select_one("#rating-done") is not None
    assert done.select_one("meta[http-equiv=refresh]")["content"] == "30;url=/rate/pad"
    devices.revoke(rw.engine, rw.lead, device.id or 0)
    refused = client.get("/rate/pad")
    assert refused.status_code == 403 and "已停用" in refused.text
    with second_client(client) as stranger:
        assert stranger.get("/rate/pad").status_code == 403
    with Session(rw.engine) as s:
        assert [(r.level, r.staff_id) for r in s.exec(select(Rating)).all()] == [
            (5, rw.w.teller_a.id)]


def test_web_center_decides_an_appeal_and_admin_edits_reasons(rw: RatingWorld,
                                                             client: TestClient) -> None:
    rating = rw.qr(rw.w.drive("accepted"), 1, at=utcnow())  # appeals: 3 working days from now
    with second_client(client) as teller:
        login(teller, "teller.a")
        mine = soup(teller.get("/ratings/").text)
        assert mine.select_one(f"a[href='/ratings/{rating.id}/appeal']") is not None
        page = soup(teller.get(f"/ratings/{rating.id}/appeal").text)
        assert page.select_one("#appeal-form input[type=file][name=evidence]") is not None
        r = teller.post(f"/ratings/{rating.id}/appeal", data={"reason": "申请人误触"},
                        files={"evidence": ("note.txt", b"just text", "text/plain")})
        assert r.status_code == 415 and "仅支持 PDF、JPEG、PNG" in soup(r.text).select_one("#appeal-error").text
        page = soup(r.text)
        assert page.select_one("textarea[name=reason]").text == "申请人误触"  # input kept
        assert "请重新选择文件" in page.select_one("#evidence-error").text
        png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (8).to_bytes(4, "big") * 2 + b"\x08\x06\x00\x00\x00" + b"\x00" * 4
        r = teller.post(f"/ratings/{rating.id}/appeal", data={"reason": "申请人误触"},
                        files={"evidence": ("shot.png", png, "image/png")}, follow_redirects=False)
        assert r.status_code == 303
        again = png + b"\x00" * 16  # another file: checked first, refused, never stored
        r = teller.post(f"/ratings/{rating.id}/appeal", data={"reason": "再次申诉"},
                        files={"evidence": ("again.png", again, "image/png")})
        assert r.status_code == 409 and "该评价已提出过申诉" in soup(r.text).select_one("#appeal-error").text
        store = client.app.state.settings.file_store()  # type: ignore[attr-defined]
        assert store.path_for(hashlib.sha256(png).hexdigest()).is_file()
        assert not store.path_for(hashlib.sha256(again).hexdigest()).exists()
        assert audit_rows(rw.engine, action="rating.appeal")[-1]["outcome"]["reason"] == "already_appealed"
    login(client, "reviewer.sb")
    center = soup(client.get("/ratings/center/").text)
    form = center.select_one("#pending-appeals form")
    proof = client.get(center.select_one("#pending-appeals a[id^=appeal-evidence]")["href"])
    assert proof.status_code == 200 and proof.content == png
    assert proof.headers["content-type"] == "image/png"
    entry = audit_rows(rw.engine, action="rating.appeal")[-2]  # the last: the refused second appeal
    assert entry["outcome"]["result"] == "done" and entry["digests"] == [
        {"kind": "evidence", "sha256": hashlib.sha256(png).hexdigest()}]
    r = client.post(form["action"], data={"decision": "upheld", "category": "误评",
                                          "note": "核实为误评"}, follow_redirects=False)
    assert r.status_code == 303
    with Session(rw.engine) as s:
        assert s.get(Rating, rating.id).excluded is True  # type: ignore[union-attr]
    assert client.get("/ratings/center/settings").status_code == 403  # admins only
    with second_client(client) as admin:
        login(admin, "admin.x")
        page = soup(admin.get("/ratings/center/settings").text)
        text = page.select_one("textarea[name=reasons]").text + "\nb_noise|环境嘈杂|bad"
        days = {k: "5" for k in ("window_days", "rectify_days", "decide_days")}
        days.update(callback_days="1", appeal_days="3")
        r = admin.post("/ratings/center/settings", data={"reasons": text + "\nbroken", **days})
        assert r.status_code == 422 and "格式应为" in r.text and "b_noise" in r.text
        r = admin.post("/ratings/center/settings", data={"reasons": text, **days})
        assert "第 2 版" in soup(r.text).select_one("#settings-saved").text
    assert audit_rows(rw.engine, action="admin.rating.edit")[-1]["outcome"]["result"] == "done"


def test_web_receipt_and_status_page_link_to_the_rating_page(rw: RatingWorld,
                                                           client: TestClient) -> None:
    number = rw.w.drive("accepted")
    page = soup(client.get(f"/status/{number}").text)
    assert page.select_one("#rate-link")["href"] == f"/rate/{number}"
    login(client, "teller.a")
    case = soup(client.get(f"/cases/{number}").text)
    receipt = soup(client.get(case.select_one('#case-notices li[data-kind="receipt"] a')["href"]).text)
    assert receipt.select_one("#receipt-rate-qr svg") is not None
    assert receipt.select_one("#receipt-rate-url").text.endswith(f"/rate/{number}")


def test_web_order_steps_are_listed_in_the_order_they_happened(rw: RatingWorld, client: TestClient) -> None:
    """The rater could not be reached before the 整改: the call-back recorded afterwards is
    listed after it, and the real-name order still cannot be closed before it."""
    order = rw.bad_order()
    login(client, "lead.a")
    base = f"/ratings/orders/{order.id}"
    assert client.post(f"{base}/rectify", data={"kind": "rectify", "note": "增开窗口"},
                       follow_redirects=False).status_code == 303
    assert client.post(f"{base}/callback", data={"reached": "no", "note": "电话无人接听"},
                       follow_redirects=False).status_code == 303
    ids = [li["id"] for li in soup(client.get(base).text).select("#order-steps li")]
    assert ids == ["step-opened", "step-rectify", "step-callback"]


def test_web_teller_links_the_case_to_the_pad_it_is_pushed_and_rated_real_name(
        rw: RatingWorld, client: TestClient) -> None:
    number = rw.w.drive("accepted")
    other = rw.w.drive("accepted")
    with second_client(client) as teller:
        login(teller, "teller.a")
        refused = teller.post("/ratings/pad/link", data={"case": number})
        assert refused.status_code == 409 and "没有配对评价器" in refused.text  # no pad yet
        _device, token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="评价器",
                                      counter="1号窗口", staff_id=rw.w.teller_a.id)
        client.get(f"/devices/activate/{token}")
        page = soup(client.get("/rate/pad").text)
        assert page.select_one("#pad-case") is None and page.select_one("input[name=link]") is None
        with client.websocket_connect("/rate/pad/live") as ws:
            assert ws.receive_json() == {"type": "hello"}
            case_page = soup(teller.get(f"/cases/{number}").text)
            assert case_page.select_one("#pad-link-form input[name=case]")["value"] == number
            r = teller.post("/ratings/pad/link", data={"case": number}, follow_redirects=False)
            assert r.status_code == 303
            assert ws.receive_json() == {"type": "linked"}  # pushed through the event hub
        assert "已推送到评价器「1号窗口」" in soup(teller.get(r.headers["location"]).text).select_one(
            "#case-flash").text
        page = soup(client.get("/rate/pad").text)
        assert page.select_one("#pad-case").text.strip().endswith("城乡居民养老保险参保登记")
        assert number not in page.text  # the matter name only, never the case
        form = {"csrf_token": page.select_one("input[name=csrf_token]")["value"],
                "nonce": page.select_one("input[name=nonce]")["value"], "stage": "during",
                "link": page.select_one("input[name=link]")["value"]}
        # the teller moves on to another case before the applicant submits: refused, kept
        assert teller.post("/ratings/pad/link", data={"case": other},
                           follow_redirects=False).status_code == 303
        r = client.post("/rate/pad", data={**form, "level": "4", "text": "讲解清楚"})
        assert r.status_code == 409 and "办件已变更" in soup(r.text).select_one("#rate-error").text
        assert soup(r.text).select_one("#rating-text").text == "讲解清楚"
        page = soup(r.text)
        r = client.post("/rate/pad", data={**form, "nonce": page.select_one("input[name=nonce]")["value"],
                                           "link": page.select_one("input[name=link]")["value"],
                                           "level": "4"})
        assert r.status_code == 200 and soup(r.text).select_one("#rating-done") is not None
        assert soup(client.get("/rate/pad").text).select_one("#pad-case") is None  # used up
    with Session(rw.engine) as s:
        rating = s.exec(select(Rating).where(Rating.level == 4)).one()
    assert (rating.case_id, rating.real_name, rating.object, rating.stage, rating.channel) == (
        rw.w.case(other).id, True, "case", "during", "device")
    entry = [e for e in audit_rows(rw.engine, action="rating.submit")
             if e["outcome"]["result"] == "done"][-1]
    assert entry["case"] == other and entry["subject"] and entry["rating"]["real_name"] is True
    refusal = [e for e in audit_rows(rw.engine, action="rating.submit")
               if e["outcome"]["result"] == "refused"][-1]
    assert refusal["outcome"]["reason"] == "link_changed"


def test_web_pad_never_sticks_on_an_already_rated_case(rw: RatingWorld, client: TestClient) -> None:
    """A case whose 办理中 rating exists cannot be linked (clear reason); a linked case
    rated meanwhile through the QR code leaves the pad on the plain rating, so the next
    applicant is not refused; the teller can withdraw a link."""
    rated, later, third = (rw.w.drive("accepted") for _ in range(3))
    rw.qr(rated, 5, at=utcnow())
    _device, token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="评价器",
                                  counter="1号窗口", staff_id=rw.w.teller_a.id)
    client.get(f"/devices/activate/{token}")
    with second_client(client) as teller:
        login(teller, "teller.a")
        r = teller.post("/ratings/pad/link", data={"case": rated})
        assert r.status_code == 409 and "办理中评价已提交" in r.text
        assert soup(client.get("/rate/pad").text).select_one("#pad-case") is None
        assert teller.post("/ratings/pad/link", data={"case": later},
                           follow_redirects=False).status_code == 303
        assert soup(client.get("/rate/pad").text).select_one("#pad-case") is not None
        rw.qr(later, 4, at=utcnow())  # the applicant rated on their phone instead
        for level in ("5", "4"):  # two applicants in a row: neither is refused
            page = soup(client.get("/rate/pad").text)
            assert page.select_one("#pad-case") is None and page.select_one("input[name=link]") is None
            r = client.post("/rate/pad", data={
                "csrf_token": page.select_one("input[name=csrf_token]")["value"],
                "nonce": page.select_one("input[name=nonce]")["value"], "stage": "during",
                "level": level})
            assert r.status_code == 200 and soup(r.text).select_one("#rating-done") is not None
        assert teller.post("/ratings/pad/link", data={"case": third},
                           follow_redirects=False).status_code == 303
        assert soup(client.get("/rate/pad").text).select_one("#pad-case") is not None
        r = teller.post("/ratings/pad/unlink", data={"case": third}, follow_redirects=False)
        assert r.status_code == 303
        assert "已从评价器撤回" in soup(teller.get(r.headers["location"]).text).select_one(
            "#case-flash").text
        assert soup(client.get("/rate/pad").text).select_one("#pad-case") is None
    with Session(rw.engine) as s:
        anonymous = s.exec(select(Rating).where(Rating.channel == "device")).all()
    assert [(r.real_name, r.object) for r in anonymous] == [(False, "staff")] * 2
    # linking and withdrawing are the teller's audited actions, the refusal with its reason
    pad = [(e["action"], e["case"], e["actor"]["id"], e["outcome"].get("reason"), e["state"])
           for e in audit_rows(rw.engine) if e["action"].startswith("rating.pad_")]
    teller_id = rw.w.teller_a.id
    assert pad == [
        ("rating.pad_link", rated, teller_id, "pad_link_refused", {"from": None, "to": None}),
        ("rating.pad_link", later, teller_id, None, {"from": None, "to": "linked"}),
        ("rating.pad_link", third, teller_id, None, {"from": None, "to": "linked"}),
        ("rating.pad_unlink", third, teller_id, None, {"from": "linked", "to": None})]


def test_web_missing_choices_are_422_and_refusals_keep_the_form(rw: RatingWorld,
                                                               client: TestClient) -> None:
    """A required radio choice left out is never taken as a default (no 申诉不成立, no
    未联系上); a refused step re-shows the form with the reason, the choice and the note."""
    rating = rw.qr(rw.w.drive("accepted"), 1, at=utcnow())
    with second_client(client) as teller:
        login(teller, "teller.a")
        assert teller.post(f"/ratings/{rating.id}/appeal", data={"reason": "申请人误触"},
                           follow_redirects=False).status_code == 303
    login(client, "reviewer.sb")
    action = soup(client.get("/ratings/center/").text).select_one("#pending-appeals form")["action"]
    r = client.post(action, data={"note": "核实中"})
    page = soup(r.text)
    assert r.status_code == 422 and "请选择复核结论" in page.select_one("[id^=decide-error]").text
    assert page.select_one(f"form[action='{action}'] input[name=note]")["value"] == "核实中"
    r = client.post(action, data={"decision": "upheld", "note": "核实为误评"})
    page = soup(r.text)
    assert r.status_code == 422 and "认定类别" in page.select_one("[id^=decide-error]").text
    assert page.select_one(f"form[action='{action}'] input[value=upheld]").has_attr("checked")
    assert page.select_one(f"form[action='{action}'] input[name=note]")["value"] == "核实为误评"
    with Session(rw.engine) as s:
        from outlet.ratings.models import RatingAppeal
        assert s.exec(select(RatingAppeal)).one().state == "pending"  # nothing decided
        order = s.exec(select(RatingWorkOrder)).one()
    with second_client(client) as lead:
        login(lead, "lead.a")
        base = f"/ratings/orders/{order.id}"
        r = lead.post(f"{base}/callback", data={"note": "已致电"})
        assert r.status_code == 422 and "请选择是否已联系上" in soup(r.text).select_one("#order-error").text
        assert soup(r.text).select_one("#form-callback textarea").text == "已致电"
        assert rw.order(order.id or 0).callback_at is None  # not stored as 未联系上
        assert lead.post(f"{base}/callback", data={"reached": "yes", "note": "已致电"},
                         follow_redirects=False).status_code == 303
        page = soup(lead.get(base).text)
        assert page.select_one("#form-rectify textarea")["maxlength"] == "500"  # = NOTE_MAX
        r = lead.post(f"{base}/rectify", data={"kind": "explain", "note": "x" * 501})
        page = soup(r.text)
        assert r.status_code == 422 and "不超过500字" in page.select_one("#order-error").text
        assert page.select_one("#form-rectify input[value=explain]").has_attr("checked")


def test_web_out_of_scope_ids_answer_404_alike_for_get_and_post(rw: RatingWorld,
                                                                client: TestClient) -> None:
    """Walk every ratings route with an id of outlet A as staff of outlet B: each answers
    404 for GET and POST alike and names neither outlet A nor its staff."""
    from remote_assist.models import AssistRequest, AssistSession
    from tests.outlet.conftest import _staff

    rating = rw.qr(rw.w.drive("accepted"), 1, at=utcnow())
    with Session(rw.engine, expire_on_commit=False) as s, s.begin():
        _staff(s, "lead.b2", "outlet_lead", rw.w.outlet_b)  # a lead of B, nobody's backup
        order = s.exec(select(RatingWorkOrder)).one()
        req = AssistRequest(kind="help", case_id=rating.case_id, outlet_id=rw.w.outlet_a.id or 0,
                            domain="社保", requested_by=rw.w.teller_a.id or 0, status="ended")
        s.add(req)
        s.flush()
        sess = AssistSession(request_id=req.id or 0, teller_id=rw.w.teller_a.id or 0,
                             expert_id=rw.w.reviewer.id or 0, ended_at=utcnow())
        s.add(sess)
        s.flush()
    secret = rw.w.outlet_a.name
    walks = {"lead.b2": [("GET", f"/ratings/orders/{order.id}")] + [
                 ("POST", f"/ratings/orders/{order.id}/{step}")
                 for step in ("callback", "rectify", "feedback", "close")],
             "teller.b": [("GET", f"/ratings/{rating.id}/appeal"),
                          ("POST", f"/ratings/{rating.id}/appeal"),
                          ("GET", f"/ratings/assist/{sess.id}"), ("POST", f"/ratings/assist/{sess.id}"),
                          ("GET", "/ratings/assist/99999"), ("POST", "/ratings/assist/99999"),
                          ("POST", "/ratings/pad/link"), ("POST", "/ratings/pad/unlink")]}
    with Session(rw.engine) as s:
        from outlet.models import Case
        number = s.get(Case, rating.case_id).number  # type: ignore[union-attr]
    for user, calls in walks.items():
        with second_client(client) as c:
            login(c, user)
            for method, url in calls:
                data = {"case": number, "reached": "yes", "note": "x", "kind": "rectify",
                        "view": "满意", "reason": "x", "level": "3", "stage": "after"}
                r = c.get(url) if method == "GET" else c.post(url, data=data)
                assert r.status_code == 404, (user, method, url, r.status_code)
                assert secret not in r.text and "teller.a" not in r.text, (method, url)
    assert rw.order(order.id or 0).callback_at is None


def test_web_qr_rating_and_status_page_take_full_width_check_code_digits(
        rw: RatingWorld, client: TestClient) -> None:
    """A Chinese IME types "１２３４５６": the same code; "²" and other look-alikes stay refused."""
    number = rw.w.drive("accepted")
    code = rw.w.case(number).check_code
    wide = code.translate({0x30 + i: 0xFF10 + i for i in range(10)})
    assert wide != code
    form = _rate_form(client, number)
    r = client.post(f"/rate/{number}", data={**form, "check_code": f"\u3000{wide}", "stage": "during",
                                             "level": "4"})
    assert r.status_code == 200 and soup(r.text).select_one("#rating-done") is not None
    status = client.post(f"/status/{number}", data={"csrf_token": form["csrf_token"], "check_code": wide})
    assert status.status_code == 200 and "查询码不正确" not in status.text
    bad = client.post(f"/status/{number}", data={"csrf_token": form["csrf_token"],
                                                  "check_code": "²" + code[1:]})
    assert bad.status_code == 422


def test_web_order_page_badge_stands_by_the_running_deadline_and_estimates_say_so(
        rw: RatingWorld, client: TestClient) -> None:
    """已超期 stands by 回访时限 until the call-back, then by 整改时限; a 整改时限 in a year
    whose holidays are not yet published (2027) says it is estimated."""
    from datetime import datetime

    order = rw.bad_order()  # Sep 30: both deadlines long past
    login(client, "lead.a")
    page = soup(client.get(f"/ratings/orders/{order.id}").text)
    assert page.select_one("#callback-due #deadline-badge").text == "已超期"
    assert page.select_one("#rectify-due #deadline-badge") is None
    r = client.post(f"/ratings/orders/{order.id}/callback", data={"reached": "yes", "note": "已联系"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = soup(client.get(f"/ratings/orders/{order.id}").text)
    assert page.select_one("#callback-due #deadline-badge") is None
    assert page.select_one("#rectify-due #deadline-badge").text == "已超期"
    assert page.select_one("#rectify-due .estimated") is None  # 2026 is published
    late = rw.bad_order(at=datetime(2026, 12, 28, 2, 0))  # Mon Dec 28: 整改 due in January 2027
    page = soup(client.get(f"/ratings/orders/{late.id}").text)
    assert late.rectify_due.year == 2027 and late.callback_due.year == 2026
    assert "尚未发布" in page.select_one("#rectify-due .estimated").text
    assert page.select_one("#callback-due .estimated") is None


def test_web_pad_offers_the_before_stage_about_the_waiting_and_the_place(
        rw: RatingWorld, client: TestClient) -> None:
    """办事前 (on arrival: the waiting and the place) is offered at the 评价器 beside the
    办理中 rating; it rates the outlet, never the teller, and nothing is pre-selected."""
    _device, token = devices.pair(rw.engine, rw.lead, kind="rating_pad", label="1号窗口评价器",
                                  counter="1号窗口", staff_id=rw.w.teller_a.id)
    client.get(f"/devices/activate/{token}")
    during = soup(client.get("/rate/pad").text)
    assert during.select_one("#pad-stage")["data-stage"] == "during"
    switch = during.select_one("#pad-stage-switch")
    assert switch["href"] == "/rate/pad?stage=before" and "办事前" in switch.text
    page = soup(client.get(switch["href"]).text)
    assert "等候和办事环境" in page.select_one("#pad-stage").text
    assert page.select_one("input[name=stage]")["value"] == "before"
    assert page.select("input[name=level][checked]") == []
    form = {"csrf_token": page.select_one("input[name=csrf_token]")["value"],
            "nonce": page.select_one("input[name=nonce]")["value"], "stage": "before"}
    r = client.post("/rate/pad", data={**form, "level": "3"})
    assert r.status_code == 200 and soup(r.text).select_one("#rating-done") is not None
    with Session(rw.engine) as s:
        rating = s.exec(select(Rating)).one()
    assert (rating.stage, rating.object, rating.staff_id, rating.real_name) == ("before", "outlet", None, False)
    entry = [e for e in audit_rows(rw.engine, action="rating.submit")][-1]
    assert entry["rating"]["stage"] == "before" and entry["rating"]["object"] == "outlet"
