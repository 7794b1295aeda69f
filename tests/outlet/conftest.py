"""A small, explicit world for the outlet tests: one bank with two outlets, two matters
(承诺件 and 即办件), an expired grant, outlet staff and center reviewers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from outlet import decisions, intake, review
from outlet.intake import NewCase
from outlet.models import Case, CaseMaterial
from partners.accounts import hash_password
from partners.models import (
    Agreement,
    Grant,
    GrantMatter,
    GrantOutlet,
    Matter,
    MatterVersion,
    Outlet,
    Partner,
    Staff,
)

KEY = b"pseudonym-key-for-tests-0123456789"
PERSON_ID = "11010519491231002X"
USCC = "91350100M000100Y43"
# Monday 2026-09-28 10:00 in Beijing.
AT = datetime(2026, 9, 28, 2, 0)
PASSWORD = "demo-12345"
_HASH: list[str] = []

COMMITTED_CODE = "11370200MB28560001000111700001"
INSTANT_CODE = "11370200MB28560001000111700002"
EXPIRED_CODE = "11370200MB28560001000111700003"

MATERIALS = [
    {"key": "m1", "name": "居民身份证", "form": "纸质", "copies": 1, "necessity": "必要"},
    {"key": "m2", "name": "申请表", "form": "纸质", "copies": 1, "necessity": "必要"},
    {"key": "m3", "name": "参保证明", "form": "纸质", "copies": 1, "necessity": "容缺后补"},
    {"key": "m4", "name": "近期照片", "form": "电子", "copies": 1, "necessity": "非必要"},
]


@dataclass
class World:
    engine: Engine
    outlet_a: Outlet
    outlet_b: Outlet
    committed: Matter  # 承诺件, 5 committed / 20 statutory working days
    instant: Matter  # 即办件, 0 / 5
    expired: Matter  # only an expired grant
    teller_a: Staff
    teller_b: Staff
    reviewer: Staff  # domain 社保
    reviewer_other: Staff  # domain 医保
    auditor: Staff

    def new_case(self, actor: Staff | None = None, matter: Matter | None = None,
                 at: datetime = AT, **kw: Any) -> Case:
        data = NewCase(
            matter_id=(matter or self.committed).id, applicant_kind="person",
            applicant_name="张三", id_number=PERSON_ID, phone="13800138000",
        )
        for k, v in kw.items():
            setattr(data, k, v)
        return intake.create_case(self.engine, actor or self.teller_a, data, pseudonym_key=KEY, at=at)

    def materials(self, number: str) -> dict[str, CaseMaterial]:
        with Session(self.engine) as s:
            case = s.exec(select(Case).where(Case.number == number)).one()
            rows = s.exec(select(CaseMaterial).where(CaseMaterial.case_id == case.id)).all()
            return {m.key: m for m in rows}

    def case(self, number: str) -> Case:
        with Session(self.engine) as s:
            return s.exec(select(Case).where(Case.number == number)).one()

    def receive(self, number: str, *keys: str, actor: Staff | None = None, at: datetime = AT) -> None:
        for key in keys:
            intake.mark_material(self.engine, actor or self.teller_a, number, key, "received", at=at)

    def drive(self, state: str, matter: Matter | None = None, actor: Staff | None = None) -> str:
        """A fresh case brought to ``state`` through the real service functions."""
        teller = actor or self.teller_a
        if state == "revoked":
            return self._drive_revoked(matter or self.committed, teller)
        number = self.new_case(teller, matter).number
        e = self.engine
        if state == "draft":
            return number
        if state == "refused":
            decisions.refuse(e, teller, number, reason="不属于受理范围", at=AT)
            return number
        if state == "withdrawn":
            decisions.withdraw(e, teller, number, reason="申请人撤回", at=AT)
            return number
        if state == "rongque":
            self.receive(number, "m1", "m2", actor=teller)
            decisions.accept_rongque(e, teller, number, deadline=date(2026, 9, 28),
                                     commitment_signed=True, at=AT)
            return number
        self.receive(number, "m1", "m2", "m3", actor=teller)
        decisions.accept(e, teller, number, at=AT)
        if state == "accepted":
            return number
        decisions.forward(e, teller, number, at=AT)
        if state == "forwarded":
            return number
        review.claim(e, self.reviewer, number, at=AT)
        if state == "under_review":
            return number
        if state == "correction":
            review.request_correction(e, self.reviewer, number, items=[("m2", "签名缺失")], at=AT)
            return number
        if state == "rejected":
            review.reject(e, self.reviewer, number, reason="不符合条件", at=AT)
            return number
        review.approve(e, self.reviewer, number, at=AT)
        if state == "approved":
            return number
        decisions.deliver(e, teller, number, at=AT)
        assert state == "delivered", state
        return number


    def _drive_revoked(self, matter: Matter, teller: Staff) -> str:
        """告知承诺: m2 replaced by a promise, approved, checked 不属实, decision revoked."""
        from outlet import promise

        with Session(self.engine) as s, s.begin():
            v = s.exec(select(MatterVersion).where(MatterVersion.matter_id == matter.id)).one()
            v.materials = [{**m, "promise": True} if m["key"] == "m2" else m for m in v.materials]
            s.add(v)
        number = self.new_case(teller, matter).number
        promise.sign_promise(self.engine, teller, number, ["m2"], at=AT)
        self.receive(number, *[k for k, m in self.materials(number).items() if m.status != "received"],
                     actor=teller)
        decisions.accept(self.engine, teller, number, at=AT)
        decisions.forward(self.engine, teller, number, at=AT)
        review.claim(self.engine, self.reviewer, number, at=AT)
        review.approve(self.engine, self.reviewer, number, at=AT)
        promise.check_promise(self.engine, self.reviewer, number, result="不属实", note="不实", at=AT)
        promise.revoke(self.engine, self.reviewer, number, reason="承诺不实", at=AT)
        return number


def _staff(s: Session, username: str, roles: str, outlet: Outlet | None, domain: str | None = None) -> Staff:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    st = Staff(username=username, display_name=username, password_hash=_HASH[0],
               outlet_id=outlet.id if outlet else None, roles=roles, domain=domain)
    s.add(st)
    s.flush()
    return st


def _matter(s: Session, code: str, name: str, kind: str, committed: int, statutory: int,
            materials: list[dict[str, Any]], domain: str = "社保") -> Matter:
    m = Matter(basic_code=code[:12], implementation_code=code)
    s.add(m)
    s.flush()
    assert m.id is not None
    s.add(MatterVersion(
        matter_id=m.id, version=1, name=name, matter_type="20", domain=domain, case_kind=kind,
        statutory_days=statutory, committed_days=committed, materials=materials,
        service_modes=["咨询", "帮办", "收件受理", "代办", "即办"],
    ))
    return m


def _grant(s: Session, agreement: Agreement, scopes: list[str], matters: list[Matter],
           outlets: list[Outlet], valid: tuple[date, date]) -> Grant:
    g = Grant(agreement_id=agreement.id or 0, scopes=scopes, valid_from=valid[0], valid_to=valid[1])
    s.add(g)
    s.flush()
    for m in matters:
        s.add(GrantMatter(grant_id=g.id or 0, matter_id=m.id or 0))
    for o in outlets:
        s.add(GrantOutlet(grant_id=g.id or 0, outlet_id=o.id or 0))
    return g


def build_world(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        p = Partner(code="ICBC-QD", name="工商银行青岛分行", kind="bank")
        s.add(p)
        s.flush()
        ag = Agreement(number="ZY-2026-001", partner_id=p.id or 0, parties="市政务服务中心、工商银行",
                       signed_on=date(2020, 1, 1), valid_from=date(2020, 1, 1),
                       valid_to=date(2035, 12, 31))
        oa = Outlet(code="ICBC-QD-01", partner_id=p.id or 0, name="工行香港中路支行", address="香港中路1号", kind="bank",
                    phone="0532-8000 0001")
        ob = Outlet(code="ICBC-QD-02", partner_id=p.id or 0, name="工行黄岛支行", address="长江路2号", kind="bank")
        s.add_all([ag, oa, ob])
        s.flush()
        committed = _matter(s, COMMITTED_CODE, "城乡居民养老保险参保登记", "承诺件", 5, 20, MATERIALS)
        instant = _matter(s, INSTANT_CODE, "社保卡信息变更", "即办件", 0, 5,
                          [MATERIALS[0], MATERIALS[1], MATERIALS[2]])
        expired = _matter(s, EXPIRED_CODE, "灵活就业人员参保登记", "承诺件", 3, 10, MATERIALS[:2])
        long = (date(2020, 1, 1), date(2035, 12, 31))
        _grant(s, ag, ["收件受理", "代办"], [committed, instant], [oa, ob], long)
        _grant(s, ag, ["收件受理", "即办"], [instant, committed], [oa], long)
        _grant(s, ag, ["收件受理"], [expired], [oa], (date(2020, 1, 1), date(2021, 1, 1)))
        w = World(
            engine=engine, outlet_a=oa, outlet_b=ob, committed=committed, instant=instant,
            expired=expired,
            teller_a=_staff(s, "teller.a", "teller", oa),
            teller_b=_staff(s, "teller.b", "teller", ob),
            reviewer=_staff(s, "reviewer.sb", "reviewer", None, "社保"),
            reviewer_other=_staff(s, "reviewer.yb", "reviewer", None, "医保"),
            auditor=_staff(s, "auditor.x", "auditor", None),
        )
    return w


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@contextmanager
def second_client(client: TestClient) -> Iterator[TestClient]:
    """Another browser on the same running app (its lifespan is already up: entering a
    second lifespan would start the app's background tasks twice)."""
    other = TestClient(client.app, base_url=str(client.base_url))
    try:
        yield other
    finally:
        other.close()


def audit_rows(engine: Engine, action: str | None = None, case: str | None = None) -> list[dict[str, Any]]:
    """Audit entries (parsed leaves, oldest first) through the audit package's search."""
    from audit import search_entries

    with Session(engine) as s:
        page = search_entries(s, action=action, case=case, limit=500, newest_first=False)
        return [v.entry for v in page.entries]

