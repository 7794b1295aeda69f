"""The admin UI over HTTP: pages, audited changes, 403 for others, 422 keeping input."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from partners.models import Grant, Matter, MatterVersion, Partner
from tests.conftest import login
from tests.partners.conftest import audit_entries

PAGES = [
    "/admin/", "/admin/partners", "/admin/partners/new", "/admin/agreements",
    "/admin/agreements/new", "/admin/outlets", "/admin/outlets/new", "/admin/catalog", "/admin/catalog/new", "/admin/grants",
    "/admin/grants/new",
]  # fmt: skip


@pytest.fixture
def admin(fast_hashes: None, client: TestClient, demo: Engine) -> TestClient:
    return login(client, "admin")


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def one(engine: Engine, model: Any, **where: Any) -> Any:
    with Session(engine) as s:
        stmt = select(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return s.exec(stmt).one()


@pytest.mark.parametrize("url", PAGES)
def test_admin_pages_render(admin: TestClient, url: str) -> None:
    response = admin.get(url)
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one("nav.subnav a[aria-current=page]") is not None
    assert len(response.content) < 100_000


@pytest.mark.parametrize("url", ["/admin/", "/admin/grants", "/admin/catalog/1"])
def test_admin_refuses_other_roles(
    fast_hashes: None, client: TestClient, demo: Engine, url: str
) -> None:
    login(client, "teller1")
    assert client.get(url).status_code == 403


def test_admin_refuses_post_from_non_admin(
    fast_hashes: None, client: TestClient, demo: Engine
) -> None:
    login(client, "reviewer1")
    response = client.post(
        "/admin/partners/new", data={"code": "EVIL", "name": "x", "kind": "bank"}
    )
    assert response.status_code == 403
    with Session(demo) as s:
        assert s.exec(select(Partner).where(Partner.code == "EVIL")).first() is None


def test_admin_requires_login(client: TestClient, demo: Engine) -> None:
    response = client.get("/admin/partners", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_admin_partner_create_is_audited(admin: TestClient, demo: Engine) -> None:
    response = admin.post(
        "/admin/partners/new",
        data={
            "code": "cmb-hc",
            "name": "招商银行海川分行",
            "kind": "bank",
            "contact": "0532-1",
            "active": "1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    partner = one(demo, Partner, code="CMB-HC")
    page = soup(admin.get(response.headers["location"]))
    assert page.select_one("#admin-flash").get_text() == "合作机构已保存"
    assert page.select_one("#f-name")["value"] == "招商银行海川分行"
    entry = audit_entries(demo, "admin.partner.edit")[-1]
    assert entry["partner"] == "CMB-HC" and entry["state"] == {"from": None, "to": "active"}
    assert entry["actor"]["role"] == "admin" and partner.active


def test_admin_failed_form_keeps_input_with_422(admin: TestClient, demo: Engine) -> None:
    response = admin.post(
        "/admin/outlets/new",
        data={
            "partner_id": "1",
            "code": "bad code!",
            "name": "新网点",
            "address": "",
            "kind": "bank",
            "latitude": "north",
            "opening_hours": "9:00–17:00",
        },
    )
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#f-code")["value"] == "bad code!"
    assert page.select_one("#f-code")["aria-invalid"] == "true"
    assert page.select_one("#f-name")["value"] == "新网点"
    assert page.select_one("#f-opening_hours")["value"] == "9:00–17:00"
    assert "网点编码" in page.select_one("#err-code").get_text()
    assert "纬度" in page.select_one("#err-latitude").get_text()
    assert page.select_one("#err-address") is not None
    assert page.select_one("#f-partner_id option[selected]")["value"] == "1"


def test_admin_catalog_edit_makes_a_new_version(admin: TestClient, demo: Engine) -> None:
    matter = one(demo, Matter, current_version=1, basic_code="000122103000")  # 公积金提取（离退休）
    form = soup(admin.get(f"/admin/catalog/{matter.id}/edit")).select_one("#matter-form")
    data = form_data(form)
    data["committed_days"] = "2"
    response = admin.post(f"/admin/catalog/{matter.id}/edit", data=data, follow_redirects=False)
    assert response.status_code == 303
    page = soup(admin.get(response.headers["location"]))
    assert "第 2 版" in page.select_one("#shown-version").get_text()
    assert len(page.select("#matter-versions li")) == 2
    with Session(demo) as s:
        versions = s.exec(
            select(MatterVersion)
            .where(MatterVersion.matter_id == matter.id)
            .order_by(MatterVersion.version)
        ).all()
        assert [v.committed_days for v in versions] == [1, 2]
        assert versions[1].materials == versions[0].materials  # unchanged rows keep their keys
    entry = audit_entries(demo, "admin.catalog.edit")[-1]
    assert entry["matter"] == {"code": matter.implementation_code, "version": 2}
    # The old version is still viewable.
    old = soup(admin.get(f"/admin/catalog/{matter.id}/v/1"))
    assert "历史" in old.select_one("#shown-version").get_text()


def test_admin_catalog_invalid_edit_keeps_input(admin: TestClient, demo: Engine) -> None:
    matter = one(demo, Matter, basic_code="000122103000")
    data = form_data(soup(admin.get(f"/admin/catalog/{matter.id}/edit")).select_one("#matter-form"))
    data["committed_days"] = "9"  # longer than the statutory 3
    data["name"] = "住房公积金提取（离退休）改"
    response = admin.post(f"/admin/catalog/{matter.id}/edit", data=data)
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#f-committed_days")["value"] == "9"
    assert page.select_one("#f-name")["value"] == "住房公积金提取（离退休）改"
    assert "法定" in page.select_one("#err-committed_days").get_text()
    names = [i["value"] for i in page.select("input[name=material_name]") if i.get("value")]
    assert names == ["居民身份证", "离退休证明或基本养老金领取证明", "本人一类银行借记卡"]
    assert one(demo, Matter, id=matter.id).current_version == 1


def test_admin_grant_create_and_revoke(admin: TestClient, demo: Engine) -> None:
    new = soup(admin.get("/admin/grants/new"))
    agreement = new.select_one("#f-agreement_id option[value]:not([value=''])")["value"]
    with Session(demo) as s:
        from partners.models import Agreement, Outlet

        ag = s.get(Agreement, int(agreement))
        outlet = s.exec(select(Outlet).where(Outlet.partner_id == ag.partner_id)).first()
        matter = s.exec(select(Matter).where(Matter.basic_code == "000120101000")).one()
    response = admin.post(
        "/admin/grants/new",
        data={
            "agreement_id": agreement,
            "valid_from": ag.valid_from.isoformat(),
            "valid_to": ag.valid_to.isoformat(),
            "scopes": ["咨询", "收件受理"],
            "outlet_ids": [str(outlet.id)],
            "matter_ids": [str(matter.id)],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    url = response.headers["location"]
    page = soup(admin.get(url))
    assert page.select_one("h1 .badge").get_text() == "生效中"
    # Revoking needs a reason: 422 with the message next to the field.
    refused = admin.post(url + "/revoke", data={"reason": " "})
    assert refused.status_code == 422
    assert soup(refused).select_one("#err-reason") is not None
    done = admin.post(url + "/revoke", data={"reason": "合作调整"}, follow_redirects=False)
    assert done.status_code == 303
    page = soup(admin.get(url))
    assert page.select_one("h1 .badge").get_text() == "已撤销"
    assert "合作调整" in page.select_one("#grant-state-reason").get_text()
    assert page.select_one("#grant-revoke") is None
    gid = int(url.rsplit("/", 1)[1])
    assert [e["grant"] for e in audit_entries(demo, "admin.grant.revoke")] == [gid]
    assert one(demo, Grant, id=gid).revoked_reason == "合作调整"


def test_admin_grant_form_422_keeps_selection(admin: TestClient, demo: Engine) -> None:
    response = admin.post(
        "/admin/grants/new",
        data={
            "agreement_id": "1",
            "valid_from": "2020-01-01",
            "valid_to": "2020-12-31",
            "scopes": ["代办"],
            "outlet_ids": ["1"],
            "matter_ids": [],
        },
    )
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#fs-scopes input[value=代办]").has_attr("checked")
    assert page.select_one("#fs-outlet_ids input[value='1']").has_attr("checked")
    assert page.select_one("#err-matter_ids") is not None
    assert page.select_one("#f-valid_from")["value"] == "2020-01-01"


def test_admin_grant_list_filters_and_fragment(admin: TestClient) -> None:
    page = soup(admin.get("/admin/grants?status=expired"))
    assert [r["data-status"] for r in page.select("#admin-list tbody tr[data-status]")] == [
        "expired"
    ]
    fragment = admin.get(
        "/admin/grants?status=revoked", headers={"HX-Request": "true", "HX-Target": "admin-list"}
    )
    assert "HX-Request" in fragment.headers["vary"]
    assert "<html" not in fragment.text
    assert [r["data-status"] for r in soup(fragment).select("tr[data-status]")] == ["revoked"]


def test_admin_lists_paginate(admin: TestClient, demo: Engine) -> None:
    with Session(demo) as s, s.begin():
        for n in range(25):
            s.add(Partner(code=f"P{n:03d}", name=f"测试机构{n}", kind="mall"))
    first = soup(admin.get("/admin/partners"))
    assert len(first.select("#admin-list tbody tr[data-id]")) == 20
    assert first.select_one("#admin-list a[rel=next]")["href"] == "/admin/partners?page=2"
    second = soup(admin.get("/admin/partners?page=2"))
    assert len(second.select("#admin-list tbody tr[data-id]")) == 33 - 20
    assert second.select_one("#admin-list a[rel=next]") is None


def form_data(form: Any) -> dict[str, Any]:
    """What a browser would submit for ``form`` (repeated names become lists)."""
    data: dict[str, Any] = {}

    def add(name: str, value: str) -> None:
        if name in data:
            data[name] = (
                [*data[name], value] if isinstance(data[name], list) else [data[name], value]
            )
        else:
            data[name] = value

    for field in form.select("input, select, textarea"):
        name = field.get("name")
        if not name:
            continue
        if field.name == "select":
            chosen = field.select_one("option[selected]") or field.select_one("option")
            add(name, chosen.get("value", chosen.get_text()) if chosen else "")
        elif field.name == "textarea":
            add(name, field.get_text())
        elif field.get("type") == "checkbox":
            if field.has_attr("checked"):
                add(name, field["value"])
        else:
            add(name, field.get("value", ""))
    return data
