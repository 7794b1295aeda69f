from __future__ import annotations

import unicodedata
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from outlet import decisions, intake
from outlet.errors import GuardFailed, IllegalTransition, InvalidInput
from outlet.files import FileStore
from outlet.models import Applicant, CaseFile, CaseSerial
from partners.errors import GrantExpired, NotDelegated, ScopeNotGranted
from tests.outlet.conftest import AT, COMMITTED_CODE, PERSON_ID, USCC, World, audit_rows
from tests.outlet.samples import PDF, PNG


def test_create_case_numbers_checklist_and_audit(world: World) -> None:
    case = world.new_case()
    assert case.number == f"{COMMITTED_CODE}202609280001"
    assert case.state == "draft" and case.received_on == date(2026, 9, 28)
    assert len(case.check_code) == 6 and case.check_code.isdigit()
    mats = world.materials(case.number)
    assert [m.key for m in mats.values()] == ["m1", "m2", "m3", "m4"]
    assert {m.status for m in mats.values()} == {"pending"}
    second = world.new_case()
    assert second.number.endswith("202609280002")
    [entry] = audit_rows(world.engine, "case.create", case.number)
    assert entry["outcome"] == {"result": "done"}
    assert entry["state"] == {"from": None, "to": "draft"}
    assert entry["outlet"] == "ICBC-QD-01" and entry["matter"] == {"code": COMMITTED_CODE, "version": 1}
    assert entry["subject"].startswith("hmac-sha256:")
    assert PERSON_ID not in str(entry) and "张三" not in str(entry)


def test_case_number_day_is_the_beijing_date(world: World) -> None:
    # 17:00 UTC on 28 Sep is 01:00 on 29 Sep in Beijing.
    case = world.new_case(at=datetime(2026, 9, 28, 17, 0))
    assert case.number.endswith("202609290001")


def test_create_case_for_an_enterprise_validates_uscc(world: World) -> None:
    case = world.new_case(applicant_kind="enterprise", applicant_name="青岛某某商贸有限公司",
                          id_number=USCC, legal_representative="李四")
    with Session(world.engine) as s:
        applicant = s.get(Applicant, case.applicant_id)
    assert applicant is not None and applicant.id_number == USCC


def test_create_case_reports_every_bad_field(world: World) -> None:
    with pytest.raises(InvalidInput) as exc:
        world.new_case(applicant_name="", id_number="110105194912310021", phone="abc")
    assert set(exc.value.errors) == {"applicant_name", "id_number", "phone"}
    assert "校验位" in exc.value.errors["id_number"]


def test_daiban_adds_a_power_of_attorney_that_must_be_received(world: World) -> None:
    number = world.new_case(service_mode="代办", agent_name="王五",
                            agent_id_number="110101200001010010").number
    mats = world.materials(number)
    assert mats["poa"].name == "授权委托书" and mats["poa"].necessity == "必要"
    world.receive(number, "m1", "m2", "m3")
    with pytest.raises(GuardFailed) as exc:
        decisions.accept(world.engine, world.teller_a, number, at=AT)
    assert "授权委托书" in exc.value.message
    world.receive(number, "poa")
    assert decisions.accept(world.engine, world.teller_a, number, at=AT).state == "accepted"


def test_daiban_needs_the_daiban_scope(world: World) -> None:
    # Outlet A's grants for the instant matter: 收件受理+代办 and 收件受理+即办 → fine;
    # the expired matter has no 代办 scope at all.
    with pytest.raises((ScopeNotGranted, GrantExpired)):
        world.new_case(matter=world.expired, service_mode="代办")


def test_expired_grant_is_refused_and_audited(world: World) -> None:
    with pytest.raises(GrantExpired) as exc:
        world.new_case(matter=world.expired)
    assert "已于 2021-01-01 到期" in exc.value.message
    [entry] = audit_rows(world.engine, "case.create")
    assert entry["outcome"] == {"result": "refused", "reason": "grant_expired"}
    assert entry["case"] is None and entry["subject"].startswith("hmac-sha256:")
    with Session(world.engine) as s:
        assert s.exec(select(CaseSerial)).all() == []  # nothing of the attempt kept


def test_matter_not_delegated_to_outlet_b_is_refused(world: World) -> None:
    with pytest.raises(NotDelegated):
        world.new_case(actor=world.teller_b, matter=world.expired)


def test_mark_material_defective_needs_a_reason(world: World) -> None:
    number = world.new_case().number
    with pytest.raises(InvalidInput) as exc:
        intake.mark_material(world.engine, world.teller_a, number, "m1", "defective", "", at=AT)
    assert exc.value.field == "reason"
    m = intake.mark_material(world.engine, world.teller_a, number, "m1", "defective", "复印件不清晰", at=AT)
    assert m.status == "defective" and m.reason == "复印件不清晰"
    [entry] = audit_rows(world.engine, "case.material", number)
    assert "复印件" not in str(entry)  # reasons stay out of the log leaf


def test_one_time_notice_lists_every_missing_and_defective_item(world: World) -> None:
    number = world.new_case().number
    intake.mark_material(world.engine, world.teller_a, number, "m1", "received", at=AT)
    intake.mark_material(world.engine, world.teller_a, number, "m2", "defective", "缺少申请人签名", at=AT)
    intake.mark_material(world.engine, world.teller_a, number, "m4", "missing", at=AT)
    # m3 (容缺后补) still pending → listed as 未提交; m4 is optional but marked missing → listed
    notice = intake.one_time_notice(world.engine, world.teller_a, number, at=AT)
    assert notice.kind == "one_time" and notice.number == f"{number}-GZ01"
    assert notice.issued_at == AT
    by_key = {i["key"]: i for i in notice.items}
    assert set(by_key) == {"m2", "m3", "m4"}
    assert by_key["m2"]["reason"] == "缺少申请人签名" and by_key["m3"]["problem"] == "未提交"
    again = intake.one_time_notice(world.engine, world.teller_a, number, at=AT)
    assert again.number == f"{number}-GZ02"


def test_one_time_notice_refused_when_nothing_is_missing(world: World) -> None:
    number = world.new_case().number
    world.receive(number, "m1", "m2", "m3")
    with pytest.raises(GuardFailed):
        intake.one_time_notice(world.engine, world.teller_a, number, at=AT)
    [entry] = audit_rows(world.engine, "case.notice", number)
    assert entry["outcome"]["result"] == "refused"


def test_upload_stores_file_marks_received_and_audits_digest(world: World, tmp_path) -> None:
    store = FileStore(tmp_path / "files")
    number = world.new_case().number
    cf = intake.upload_material(world.engine, world.teller_a, number, "m1", [PDF],
                                claimed_name="身份证.pdf", store=store, max_bytes=1 << 20, at=AT)
    assert cf.content_type == "application/pdf" and store.open(cf.sha256).read_bytes() == PDF
    assert world.materials(number)["m1"].status == "received"
    [entry] = audit_rows(world.engine, "case.material", number)
    assert entry["digests"] == [{"kind": "material", "sha256": cf.sha256}]


def test_upload_renamed_file_is_rejected_and_nothing_recorded(world: World, tmp_path) -> None:
    from outlet.errors import UploadRejected

    store = FileStore(tmp_path / "files")
    number = world.new_case().number
    with pytest.raises(UploadRejected):
        intake.upload_material(world.engine, world.teller_a, number, "m1", [PNG],
                               claimed_name="scan.pdf", store=store, max_bytes=1 << 20, at=AT)
    with Session(world.engine) as s:
        assert s.exec(select(CaseFile)).all() == []
    assert world.materials(number)["m1"].status == "pending"


def test_materials_are_frozen_after_acceptance(world: World) -> None:
    number = world.drive("accepted")
    with pytest.raises(IllegalTransition) as exc:
        intake.mark_material(world.engine, world.teller_a, number, "m1", "missing", at=AT)
    assert "已受理" in exc.value.message


# --- per-field Unicode: normalise what means the same, refuse what hides ------------------

def _form(**kw: str) -> intake.NewCase:
    data = intake.NewCase(matter_id=1, applicant_name="张三", id_number=PERSON_ID, phone="13800138000")
    for k, v in kw.items():
        setattr(data, k, v)
    return data


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("张三", "张三"), ("  张\u3000\u3000三 ", "张 三"), ("Jose\u0301", "José"),  # NFD → NFC
     ("Anne  Marie", "Anne Marie")],
)
def test_names_are_stored_in_one_form(typed: str, stored: str) -> None:
    assert _form(applicant_name=typed).validate().applicant_name == stored


@pytest.mark.parametrize("typed", ["张\u200b三", "张三\u202e", "张\x07三", "\ue000张三", "张\ufeff三"])
def test_names_with_invisible_characters_are_refused(typed: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        _form(applicant_name=typed).validate()
    assert "不可见" in exc.value.errors["applicant_name"]


@pytest.mark.parametrize(("typed", "stored"), [("１３８００１３８０００", "13800138000"),
                                               ("＋８６ １３８００１３８０００", "+86 13800138000"),
                                               ("（０５３２）８８８８８８８８", "(0532)88888888")])
def test_full_width_phone_numbers_are_stored_in_ascii(typed: str, stored: str) -> None:
    assert _form(phone=typed).validate().phone == stored


def test_superscript_phone_digit_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidInput) as exc:
        _form(phone="1380013800²").validate()
    assert exc.value.errors["phone"] == "联系电话格式不正确"


FIELDS = ["applicant_name", "id_number", "phone", "legal_representative", "agent_name",
          "agent_id_number", "agent_phone", "applicant_kind", "service_mode"]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(field=st.sampled_from(FIELDS), text=st.text(max_size=40))
def test_new_case_form_on_random_unicode_only_raises_invalid_input(field: str, text: str) -> None:
    try:
        d = _form(**{field: text}).validate()
    except InvalidInput as exc:
        assert exc.errors and all(exc.errors.values())
        return
    for name in ("applicant_name", "legal_representative", "agent_name"):
        value = getattr(d, name)
        assert value == unicodedata.normalize("NFC", value) and "\x00" not in value
    assert d.id_number.isascii() and d.phone.isascii()
