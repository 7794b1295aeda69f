"""Form validation of a rating: a clear Chinese message per field, nothing pre-selected."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from outlet.ratings.rules import DEFAULT_REASONS, RatingError, parse_form, parse_reason_lines
from tests.outlet.ratings.conftest import RatingWorld

NONCE = "n" * 22


def _form(**fields: object) -> FormData:
    items: list[tuple[str, str]] = []
    for k, v in fields.items():
        items += [(k, str(x)) for x in v] if isinstance(v, list) else [(k, str(v))]
    return FormData(items)


@pytest.mark.parametrize("raw", ["", "0", "6", "-1", "3.5", "五"])
def test_rules_level_outside_1_to_5_or_missing_is_refused(raw: str) -> None:
    with pytest.raises(RatingError) as exc:
        parse_form(_form(level=raw, nonce=NONCE), DEFAULT_REASONS)
    assert "level" in exc.value.errors
    assert "满意程度" in exc.value.errors["level"] and exc.value.status_code == 422


def test_rules_unknown_reason_code_is_refused() -> None:
    with pytest.raises(RatingError) as exc:
        parse_form(_form(level=2, reasons=["b_wait", "b_bribe"], nonce=NONCE), DEFAULT_REASONS)
    assert exc.value.errors["reasons"].startswith("所选原因不在原因清单中")


def test_rules_reasons_must_match_the_level() -> None:
    with pytest.raises(RatingError, match="与满意程度不符"):
        parse_form(_form(level=5, reasons=["b_wait"], nonce=NONCE), DEFAULT_REASONS)
    ok = parse_form(_form(level=5, reasons=["g_fast"], efficiency=4, nonce=NONCE), DEFAULT_REASONS)
    assert (ok.level, ok.reasons, ok.dimensions) == (5, ["g_fast"], {"efficiency": 4})


def test_rules_text_over_200_and_bad_phone_are_reported_together() -> None:
    with pytest.raises(RatingError) as exc:
        parse_form(_form(level=1, text="慢" * 201, contact_phone="12345", nonce=NONCE),
                   DEFAULT_REASONS)
    assert set(exc.value.errors) == {"text", "contact_phone"}
    assert "201" in exc.value.errors["text"]


def test_rules_form_without_nonce_is_refused_as_expired() -> None:
    with pytest.raises(RatingError, match="页面已过期"):
        parse_form(_form(level=4), DEFAULT_REASONS)


def test_rules_reason_list_editor_format() -> None:
    items = parse_reason_lines("g_fast|办理快捷|good\nb_slow|太慢|bad\n")
    assert items[1] == {"code": "b_slow", "label": "太慢", "polarity": "bad"}
    with pytest.raises(RatingError, match="第2行"):
        parse_reason_lines("g_fast|办理快捷|good\nbad line\n")
    with pytest.raises(RatingError, match="至少各有一条"):
        parse_reason_lines("g_fast|办理快捷|good")


def test_rules_full_width_phone_is_read_as_ascii_and_other_digits_are_refused() -> None:
    """A Chinese IME types "１３８…": read as the ASCII number (as the 查询码 is); digits of
    other scripts ("٣") or "²" are never a phone number."""
    data = parse_form(_form(level=4, contact_phone="１３８００００８８８８", nonce=NONCE), DEFAULT_REASONS)
    assert data.contact_phone == "13800008888"
    assert parse_form(_form(level=4, contact_phone="0533-1234567", nonce=NONCE),
                      DEFAULT_REASONS).contact_phone == "05331234567"
    for bad in ("1٣800008888", "13800008８8²", "1380000888"):
        with pytest.raises(RatingError) as exc:
            parse_form(_form(level=4, contact_phone=bad, nonce=NONCE), DEFAULT_REASONS)
        assert exc.value.errors["contact_phone"] == "联系电话格式不正确"


def test_rules_settings_days_take_full_width_digits(rw: RatingWorld) -> None:
    from sqlmodel import Session

    from outlet.ratings import settings
    from outlet.ratings.rules import policy

    days = {"window_days": "５", "callback_days": "１", "rectify_days": "5", "appeal_days": "３", "decide_days": "5"}
    settings.save(rw.engine, rw.admin, reasons=settings.reason_text(DEFAULT_REASONS), days=days)
    with Session(rw.engine) as s:
        assert (policy(s).window_days, policy(s).callback_days) == (5, 1)
    with pytest.raises(RatingError) as exc:
        settings.save(rw.engine, rw.admin, reasons=settings.reason_text(DEFAULT_REASONS),
                      days={**days, "window_days": "⑤"})
    assert "window_days" in exc.value.errors
