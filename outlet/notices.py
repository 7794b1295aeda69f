"""Dated written notices: 一次性告知书, 受理回执, 不予受理通知书, 容缺受理告知书, 补正告知书."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import segno
from sqlmodel import Session, func, select

from outlet.models import Case, CaseMaterial, Notice

NOTICE_KINDS = {
    "one_time": ("一次性告知书", "GZ"),
    "receipt": ("受理回执", "SL"),
    "refusal": ("不予受理通知书", "BY"),
    "rongque": ("容缺受理告知书", "RQ"),
    "correction": ("补正告知书", "BZ"),
    "promise": ("告知承诺书", "CN"),
}
PROBLEM_LABELS = {"missing": "未提交", "defective": "需补正", "pending": "未提交", "deferred": "容缺后补"}


def one_time_items(materials: Sequence[CaseMaterial]) -> list[dict[str, Any]]:
    """Everything the applicant must still bring or fix, at once: each material marked
    missing or defective, plus required ones not yet received at all."""
    items = []
    for m in materials:
        needed = m.status in ("missing", "defective") or (
            m.status == "pending" and m.necessity in ("必要", "容缺后补")
        )
        if needed:
            items.append(
                {
                    "key": m.key, "name": m.name, "form": m.form, "copies": m.copies,
                    "problem": PROBLEM_LABELS.get(m.status, m.status),
                    "reason": m.reason or "",  # the problem column already says 未提交
                }
            )
    return items


def received_items(materials: Sequence[CaseMaterial]) -> list[dict[str, Any]]:
    """The materials taken in, as the 受理回执 lists them (a receipt must say what the
    outlet received: name, form and copies)."""
    return [
        {"key": m.key, "name": m.name, "form": m.form, "copies": m.copies}
        for m in materials if m.status == "received"
    ]


def issue(
    session: Session, case: Case, kind: str, *, actor_id: int, at: datetime,
    items: list[dict[str, Any]] | None = None, deadline: date | None = None,
) -> Notice:
    """Create a numbered notice (``<case number>-<prefix><n>``) inside the caller's
    transaction (the case row is locked, so the count is stable)."""
    assert case.id is not None
    prefix = NOTICE_KINDS[kind][1]
    n = session.exec(
        select(func.count()).select_from(Notice).where(Notice.case_id == case.id, Notice.kind == kind)
    ).one()
    notice = Notice(
        case_id=case.id, kind=kind, number=f"{case.number}-{prefix}{int(n) + 1:02d}",
        issued_at=at, issued_by=actor_id, items=items or [], deadline=deadline,
    )
    session.add(notice)
    return notice


def qr_svg(url: str, *, scale: int = 3) -> str:
    """An inline SVG QR code (no style attributes: fits a strict CSP)."""
    return str(segno.make(url, error="m").svg_inline(scale=scale, dark="#000"))
