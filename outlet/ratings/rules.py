"""The rules of a rating: levels, dimensions, the reason list, validation of a form, and
the policy (deadlines in working days).

Levels (国办发〔2019〕51号): 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意; 1–2 is a
差评. Dimensions (GB/T 39735-2020 on-site rating): 整体满意度 required (it *is* the level),
服务效率, 服务水平, 服务态度 optional, each 1–5. Reasons depend on the level: "good" reasons
for 4–5, "bad" (problem) reasons for 1–3. Free text ≤ 200 characters. Nothing is ever
pre-selected: a missing level is an error, never a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from outlet.errors import CaseError
from outlet.ratings.models import RatingPolicy, RatingReasonSet
from partners.errors import ActionRefused
from partners.numbers import ascii_int, typed_phone

LEVELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_MAX = 2  # levels 1–2 are a 差评
GOOD_MIN = 4
DIMENSIONS = {"efficiency": "服务效率", "competence": "服务水平", "attitude": "服务态度"}
STAGES = {"before": "办事前", "during": "办理中", "after": "办结后"}
CHANNELS = {"device": "评价器", "qr": "扫码评价", "call": "视频帮办后评价"}
OBJECTS = {"case": "办件", "outlet": "网点", "staff": "工作人员", "assist": "视频帮办专家"}
TEXT_MAX = 200
FEEDBACK_VIEWS = ("满意", "基本满意", "不满意")
EXCLUDE_CATEGORIES = ("误评", "恶意差评")

# Version 1 of the reason list, used until the center admin saves another.
DEFAULT_REASONS: list[dict[str, str]] = [
    {"code": "g_fast", "label": "办理快捷", "polarity": "good"},
    {"code": "g_clear", "label": "讲解清楚", "polarity": "good"},
    {"code": "g_polite", "label": "态度热情", "polarity": "good"},
    {"code": "g_once", "label": "一次办成", "polarity": "good"},
    {"code": "g_place", "label": "环境整洁", "polarity": "good"},
    {"code": "b_wait", "label": "等候时间长", "polarity": "bad"},
    {"code": "b_unclear", "label": "告知不清楚", "polarity": "bad"},
    {"code": "b_attitude", "label": "服务态度差", "polarity": "bad"},
    {"code": "b_repeat", "label": "多次跑动", "polarity": "bad"},
    {"code": "b_extra", "label": "要求额外材料", "polarity": "bad"},
    {"code": "b_system", "label": "系统故障", "polarity": "bad"},
]
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_PHONE = re.compile(r"1[3-9][0-9]{9}|0[0-9]{2,3}[0-9]{7,8}")  # after typed_phone: ASCII only


class RatingError(CaseError):
    """Bad rating input (422) — nothing stored; ``errors`` maps field → Chinese message."""

    message = "评价内容有误"


class RatingNotFound(RatingError):
    """No such rating, work order or appeal in the viewer's scope (never leak it)."""

    status_code = 404
    message = "未找到该记录"


class RatingRefused(ActionRefused, CaseError):
    """A rule refuses the action (already rated, window closed, wrong step …); audited."""

    code = "rating_refused"
    status_code = 409
    message = "该评价操作不被允许"


@dataclass
class RatingInput:
    """A validated rating form."""

    level: int
    dimensions: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    text: str = ""
    contact_phone: str = ""
    nonce: str = ""


def polarity_for(level: int) -> str:
    return "good" if level >= GOOD_MIN else "bad"


def current_reasons(session: Session) -> tuple[int, list[dict[str, str]]]:
    """(version, items) of the reason list in force."""
    row = session.exec(
        select(RatingReasonSet).order_by(col(RatingReasonSet.version).desc())).first()
    return (row.version, list(row.items)) if row else (1, DEFAULT_REASONS)


def reasons_of_version(session: Session, version: int) -> list[dict[str, str]]:
    row = session.get(RatingReasonSet, version)
    return list(row.items) if row else DEFAULT_REASONS


def policy(session: Session) -> RatingPolicy:
    """The deadlines in force (defaults when the admin never saved any)."""
    return session.get(RatingPolicy, 1) or RatingPolicy()


def _int_field(raw: object, name: str, label: str, errors: dict[str, str],
               required: bool) -> int | None:
    text = str(raw or "").strip()
    if not text:
        if required:
            errors[name] = f"请选择{label}"
        return None
    if (score := ascii_int(text, low=1, high=5)) is None:
        errors[name] = f"{label}须为1至5之间的整数"
    return score


def parse_form(form: Any, reasons: list[dict[str, str]]) -> RatingInput:
    """Validate a posted rating form (a Starlette ``FormData`` or a mapping with
    ``getlist``); raise :class:`RatingError` with every problem at once."""
    errors: dict[str, str] = {}
    level = _int_field(form.get("level"), "level", "满意程度", errors, True)
    dims: dict[str, int] = {}
    for key, label in DIMENSIONS.items():
        value = _int_field(form.get(key), key, label, errors, False)
        if value is not None:
            dims[key] = value
    picked = [str(c) for c in form.getlist("reasons")] if hasattr(form, "getlist") else []
    known = {r["code"]: r["polarity"] for r in reasons}
    if any(c not in known for c in picked) or len(set(picked)) != len(picked):
        errors["reasons"] = "所选原因不在原因清单中，请刷新页面后重新选择"
    elif level is not None and any(known[c] != polarity_for(level) for c in picked):
        errors["reasons"] = "所选原因与满意程度不符，请重新选择"
    text = str(form.get("text") or "").strip()
    if len(text) > TEXT_MAX:
        errors["text"] = f"意见建议不超过{TEXT_MAX}字（当前{len(text)}字）"
    phone = typed_phone(form.get("contact_phone"))
    if phone and not _PHONE.fullmatch(phone):
        errors["contact_phone"] = "联系电话格式不正确"
    nonce = str(form.get("nonce") or "").strip()
    if not _NONCE.fullmatch(nonce):
        errors["nonce"] = "页面已过期，请刷新后重新评价"
    if errors:
        first = next(iter(errors.values()))
        raise RatingError(first, errors=errors)
    assert level is not None
    return RatingInput(level, dims, picked, text, phone, nonce)


def parse_reason_lines(text: str) -> list[dict[str, str]]:
    """The admin's reason list editor: one ``code|名称|good或bad`` per line."""
    items: list[dict[str, str]] = []
    seen: set[str] = set()
    for n, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not _CODE.fullmatch(parts[0]) or not parts[1] or len(parts[1]) > 20 \
                or parts[2] not in ("good", "bad") or parts[0] in seen:
            raise RatingError(f"第{n}行格式应为「代码|名称|good或bad」，代码为小写字母开头且不重复",
                              field="reasons")
        seen.add(parts[0])
        items.append({"code": parts[0], "label": parts[1], "polarity": parts[2]})
    if not any(i["polarity"] == "good" for i in items) or not any(
            i["polarity"] == "bad" for i in items):
        raise RatingError("原因清单须至少各有一条好评原因和差评原因", field="reasons")
    return items
