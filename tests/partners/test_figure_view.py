"""Who sees which figures (issue 13 §2): the partner manager role and :func:`figure_view`."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partners.accounts import create_staff, update_staff
from partners.authorize import figure_view
from partners.errors import DutyRuleRefused, InvalidFields, RoleLacksAction
from partners.models import Outlet, Partner, Staff, utcnow


def _staff(s: Session, username: str) -> Staff:
    return s.exec(select(Staff).where(Staff.username == username)).one()


def _outlets_of(s: Session, partner_code: str) -> frozenset[int]:
    partner = s.exec(select(Partner).where(Partner.code == partner_code)).one()
    return frozenset(o.id for o in s.exec(select(Outlet).where(Outlet.partner_id == partner.id)).all())


def test_figure_view_by_role_on_the_demo(demo: Engine) -> None:
    now = utcnow()
    with Session(demo) as s:
        assert figure_view(s, _staff(s, "admin"), now).outlet_ids is None
        icbc = _outlets_of(s, "ICBC-HC")
        assert len(icbc) == 2
        partner = figure_view(s, _staff(s, "partner1"), now)
        assert partner.outlet_ids == icbc and partner.staff_id is None
        assert partner.label == "中国工商银行股份有限公司海川分行"
        lead = _staff(s, "lead1")
        assert figure_view(s, lead, now).outlet_ids == frozenset({lead.outlet_id})
        assert figure_view(s, lead, now).staff_id is None
        teller = _staff(s, "teller1")
        view = figure_view(s, teller, now)
        assert (view.outlet_ids, view.staff_id) == (frozenset({teller.outlet_id}), teller.id)
        # teller3 covers teller2's outlet as AB角 today: both outlets, still own figures
        teller3, teller2 = _staff(s, "teller3"), _staff(s, "teller2")
        assert figure_view(s, teller3, now).outlet_ids == frozenset({teller3.outlet_id, teller2.outlet_id})
        expert = _staff(s, "expert1")
        assert (figure_view(s, expert, now).outlet_ids, figure_view(s, expert, now).staff_id) == (None, expert.id)
        for username in ("reviewer1", "secadmin", "auditor"):
            with pytest.raises(RoleLacksAction):
                figure_view(s, _staff(s, username), now)


def test_partner_manager_needs_a_partner_and_holds_no_other_post(demo: Engine) -> None:
    with Session(demo) as s:
        partner = s.exec(select(Partner).where(Partner.code == "CCB-HC")).one()
        outlet = s.exec(select(Outlet)).first()
        assert outlet is not None
        cases = [
            ({"roles": ["partner_manager"]}, "partner_id", "合作方管理员须选择所属合作机构"),
            ({"roles": ["partner_manager", "teller"], "partner_id": partner.id}, "roles", "合作方管理员不能兼任其他岗位"),
            ({"roles": ["partner_manager"], "partner_id": partner.id, "outlet_id": outlet.id}, "outlet_id", None),
            ({"roles": ["admin"], "partner_id": partner.id}, "partner_id", "只有合作方管理员设置所属合作机构"),
            ({"roles": ["partner_manager"], "partner_id": 999999}, "partner_id", "所选合作机构不存在"),
        ]
        for n, (kwargs, field, message) in enumerate(cases):
            with pytest.raises(InvalidFields) as err:
                create_staff(s, username=f"pm{n}x", display_name="甲", password="Quiet-harbour-77", **kwargs)
            assert field in err.value.errors
            if message:
                assert err.value.errors[field] == message
        # with a duty role (审计人员) it is a 三员分立 refusal, audited like every duty conflict
        with pytest.raises(DutyRuleRefused):
            create_staff(s, username="pmaud", display_name="甲", password="Quiet-harbour-77",
                         roles=["partner_manager", "auditor"], partner_id=partner.id)
        made = create_staff(s, username="ccbnet", display_name="乙", password="Quiet-harbour-77",
                            roles=["partner_manager"], partner_id=partner.id)
        assert figure_view(s, made, utcnow()).outlet_ids == _outlets_of(s, "CCB-HC")
        update_staff(s, made, active=False)
        with pytest.raises(RoleLacksAction):
            figure_view(s, made, utcnow())
