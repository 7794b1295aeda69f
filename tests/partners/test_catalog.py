"""The matter catalog: national field validation, versioning, delegated matters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from outlet.models import Applicant, Case
from partners.catalog import (
    create_matter,
    current_version,
    delegated_matters,
    edit_matter,
    get_version,
    list_versions,
    validate_version,
    version_as_form,
)
from partners.errors import InvalidFields, PartnersError
from partners.models import Matter, MatterVersion
from tests.partners.conftest import AT, World, material, matter_data


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"basic_code": "00012010100"}, "basic_code", "12 位"),
        ({"implementation_code": "11370298004189021M0001201010"}, "implementation_code", "31 位"),
        (
            {"implementation_code": "11370298004189021M0001201010011"},
            "implementation_code",
            "已存在",
        ),
        ({"name": ""}, "name", "事项名称"),
        ({"matter_type": "12"}, "matter_type", "01–11 或 20"),
        ({"domain": "占星"}, "domain", "业务领域"),
        ({"case_kind": "特快件"}, "case_kind", "即办件或承诺件"),
        ({"statutory_days": -1}, "statutory_days", "不小于 0"),
        ({"statutory_days": "二十"}, "statutory_days", "整数"),
        ({"committed_days": 30}, "committed_days", "不能长于法定"),
        ({"case_kind": "即办件", "committed_days": 2}, "committed_days", "应为 0"),
        ({"committed_days": 0}, "committed_days", "至少为 1"),
        ({"fee": "10 元"}, "fee_basis", "收费依据"),
        ({"service_object": "外星人"}, "service_object", "服务对象"),
        ({"materials": []}, "materials", "至少列出一项"),
        (
            {"materials": [{"name": "申请表", "form": "传真", "copies": 1, "necessity": "必要"}]},
            "materials",
            "形式",
        ),
        (
            {"materials": [{"name": "申请表", "form": "纸质", "copies": 0, "necessity": "必要"}]},
            "materials",
            "至少 1 份",
        ),
        (
            {"materials": [{"name": "申请表", "form": "纸质", "copies": 1, "necessity": "可选"}]},
            "materials",
            "必要性",
        ),
        ({"materials": [material("照片", "非必要")]}, "materials", "至少应有一项必要材料"),
        (
            {"inspection_required": True, "inspection_checklist": ["  "]},
            "inspection_checklist",
            "勘验要点",
        ),
        ({"service_modes": []}, "service_modes", "至少选择一种"),
        ({"service_modes": ["上门办"]}, "service_modes", "办理方式"),
        ({"service_modes": ["即办"]}, "service_modes", "承诺件不能"),
    ],
)
def test_create_matter_validation_messages(
    world: World, changes: dict[str, Any], field: str, message: str
) -> None:
    with Session(world.engine) as s, s.begin(), pytest.raises(InvalidFields) as invalid:
        create_matter(s, {**matter_data("100", "测试事项"), **changes})
    assert message in invalid.value.errors[field], invalid.value.errors
    assert invalid.value.message  # the first error, for callers that show one line


def test_create_matter_reports_every_problem_at_once(world: World) -> None:
    with Session(world.engine) as s, s.begin(), pytest.raises(InvalidFields) as invalid:
        create_matter(
            s, {**matter_data("100", ""), "basic_code": "x", "domain": "", "committed_days": 99}
        )
    assert {"basic_code", "name", "domain", "committed_days"} <= set(invalid.value.errors)


def test_create_matter_normalizes_and_assigns_material_keys(world: World) -> None:
    with Session(world.engine) as s, s.begin():
        matter = create_matter(
            s,
            matter_data(
                "100",
                "食品经营许可",
                basic_code=" 000101128000 ",
                inspection_required="on",
                inspection_checklist=["场所布局合理", ""],
                service_modes=["视频办", "咨询", "咨询"],
            ),
        )
        version = current_version(s, matter)
        assert matter.basic_code == "000101128000" and matter.current_version == 1
        assert [m["key"] for m in version.materials] == ["m1", "m2", "m3"]
        assert version.inspection_required and version.inspection_checklist == ["场所布局合理"]
        assert version.service_modes == ["咨询", "视频办"]


def test_edit_matter_creates_a_new_version_and_leaves_the_old_one(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        matter = s.get(Matter, world.committed.id)
        assert matter is not None
        v1 = current_version(s, matter)
        s.add(
            applicant := Applicant(
                kind="person", name="张三", id_number="11010519491231002X", pseudonym="p"
            )
        )
        s.flush()
        case = Case(
            number="N1",
            check_code="123456",
            outlet_id=world.o1.id,
            matter_id=matter.id,
            matter_version_id=v1.id,
            applicant_id=applicant.id,
            service_mode="收件受理",
            created_by=world["teller.o1"].id,
        )
        s.add(case)
        form = version_as_form(v1)
        form["committed_days"] = 3
        form["materials"] = [*v1.materials[:2], material("新增材料")]  # m3 dropped, one added
        v2 = edit_matter(s, matter, form, expected_version=1)
    with Session(world.engine) as s:
        matter = s.get(Matter, world.committed.id)
        assert matter is not None and matter.current_version == 2
        old = get_version(s, matter, 1)
        assert old.committed_days == 5 and [m["name"] for m in old.materials][-1] == "参保证明"
        assert current_version(s, matter).committed_days == 3
        # The new material gets a fresh key: m3 meant 参保证明 in version 1.
        assert [m["key"] for m in v2.materials] == ["m1", "m2", "m4"]
        kept = s.exec(select(Case).where(Case.number == "N1")).one()
        assert s.get(MatterVersion, kept.matter_version_id).version == 1  # type: ignore[union-attr]
        assert [v.version for v in list_versions(s, matter)] == [1, 2]


def test_edit_matter_refuses_stale_form_and_no_change(world: World) -> None:
    with Session(world.engine) as s, s.begin():
        matter = s.get(Matter, world.committed.id)
        assert matter is not None
        form = version_as_form(current_version(s, matter))
        with pytest.raises(PartnersError, match="未作修改"):
            edit_matter(s, matter, form)
        form["committed_days"] = 4
        edit_matter(s, matter, form, expected_version=1)
        form["committed_days"] = 2
        with pytest.raises(PartnersError, match="第 2 版"):
            edit_matter(s, matter, form, expected_version=1)


def test_edit_matter_validates_like_create(world: World) -> None:
    with Session(world.engine) as s, s.begin():
        matter = s.get(Matter, world.committed.id)
        assert matter is not None
        form = version_as_form(current_version(s, matter))
        form["committed_days"] = 25
        with pytest.raises(InvalidFields) as invalid:
            edit_matter(s, matter, form)
        assert "committed_days" in invalid.value.errors
        assert matter.current_version == 1


def test_validate_version_accepts_form_strings() -> None:
    out = validate_version(
        matter_data(
            "100", "表单", statutory_days="20", committed_days=" 5 ", recording_required="on"
        )
    )
    assert (
        out["statutory_days"] == 20
        and out["committed_days"] == 5
        and out["recording_required"] is True
    )


def names(found: list[Any]) -> list[str]:
    return [d.version.name for d in found]


def test_delegated_matters_lists_only_matters_in_force_at_the_outlet(world: World) -> None:
    with Session(world.engine) as s:
        found = delegated_matters(s, world.o1, AT)
        assert sorted(names(found)) == sorted(
            ["城乡居民养老保险参保登记", "灵活就业人员参保登记", "个体工商户设立登记"]
        )
        by_name = {d.version.name: d for d in found}
        # Scopes are what is granted *and* allowed by the catalog entry.
        assert by_name["灵活就业人员参保登记"].scopes == {"咨询", "帮办", "收件受理", "即办"}
        assert "即办" not in by_name["城乡居民养老保险参保登记"].scopes
        assert names(delegated_matters(s, world.o2, AT)) == ["个体工商户设立登记"]
        assert delegated_matters(s, world.o2, AT, scope="收件受理") == []
        # The revoked grant was in force before its revocation; the pending one starts in October.
        earlier = names(delegated_matters(s, world.o1, datetime(2026, 5, 1, 2)))
        assert "职工养老保险关系转移" in earlier and "社会保障卡申领" in earlier
        later = names(delegated_matters(s, world.o1, datetime(2026, 10, 8, 2)))
        assert "医保关系转移接续" in later and "社会保障卡申领" not in later


def test_delegated_matters_search_by_name_and_code(world: World) -> None:
    with Session(world.engine) as s:
        assert names(delegated_matters(s, world.o1, AT, "参保")) == [
            "城乡居民养老保险参保登记",
            "灵活就业人员参保登记",
        ]
        assert names(delegated_matters(s, world.o1, AT, "000120101003")) == ["个体工商户设立登记"]
        assert names(delegated_matters(s, world.o1, AT, "m000120101001")) == [
            "城乡居民养老保险参保登记"
        ]
        assert delegated_matters(s, world.o1, AT, "不动产") == []


def test_delegated_matters_uses_the_current_version_name(world: World) -> None:
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        matter = s.get(Matter, world.committed.id)
        assert matter is not None
        form = version_as_form(current_version(s, matter))
        form["name"] = "城乡居民基本养老保险参保登记"
        edit_matter(s, matter, form)
    with Session(world.engine) as s:
        assert "城乡居民基本养老保险参保登记" in names(
            delegated_matters(s, world.o1, AT, "基本养老")
        )
        assert delegated_matters(s, world.o1, AT, "城乡居民养老保险") == []
