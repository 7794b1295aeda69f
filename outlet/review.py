"""At the center: claim a forwarded case, approve, refuse with reason, or request
correction (补正), which returns the case to the outlet with the reasons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from outlet import states
from outlet.cases import Frame, case_action
from outlet.decisions import set_completed
from outlet.errors import GuardFailed, InvalidInput
from outlet.models import Case, CaseMaterial, Notice
from outlet.notices import issue
from partners.models import Staff


def _move(f: Frame, action: str, actor: Staff, *, note: str | None = None, **params: object) -> None:
    assert actor.id is not None
    t = states.apply(f.guard_input(**params), action, actor_id=actor.id, note=note)
    f.moved(t.source, t.target)


def _own(f: Frame, actor: Staff) -> None:
    if f.case.reviewer_id is not None and f.case.reviewer_id != actor.id:
        raise GuardFailed("该办件已由其他审核人员认领", code="claimed_by_other")


def claim(engine: Engine, actor: Staff, number: str, *, at: datetime | None = None) -> Case:
    """认领审核: forwarded → under review by ``actor``."""
    with case_action(engine, actor, number, "case.review_claim", at=at) as f:
        _move(f, "case.review_claim", actor)
        f.case.reviewer_id = actor.id
    return f.case


def approve(engine: Engine, actor: Staff, number: str, *, comment: str = "",
            at: datetime | None = None) -> Case:
    """准予: refused while 容缺 materials are outstanding or a required inspection has not
    passed (``states.inspection_gate``)."""
    with case_action(engine, actor, number, "case.approve", at=at) as f:
        _own(f, actor)
        _move(f, "case.approve", actor, note=comment.strip() or None)
        set_completed(f)
        f.case.reviewer_id = actor.id
        f.case.review_comment = comment.strip() or None
    return f.case


def reject(engine: Engine, actor: Staff, number: str, *, reason: str,
           at: datetime | None = None) -> Case:
    """不予许可 with a reason."""
    reason = (reason or "").strip()
    with case_action(engine, actor, number, "case.reject", at=at) as f:
        _own(f, actor)
        _move(f, "case.reject", actor, reason=reason, note=reason)
        set_completed(f)
        f.case.reviewer_id = actor.id
        f.case.review_comment = reason
    return f.case


def request_correction(
    engine: Engine, actor: Staff, number: str, *, items: Sequence[tuple[str, str]] = (),
    reason: str = "", at: datetime | None = None,
) -> Notice:
    """退回补正: each (material key, reason) marks that material defective; the reasons
    (and a general one, if given) become the items of a 补正告知书 for the outlet."""
    pairs = [(k, r.strip()) for k, r in items if r and r.strip()]
    reason = (reason or "").strip()
    with case_action(engine, actor, number, "case.request_correction", at=at) as f:
        _own(f, actor)
        assert f.case.id is not None
        by_key = {
            m.key: m
            for m in f.session.exec(select(CaseMaterial).where(CaseMaterial.case_id == f.case.id)).all()
        }
        notice_items: list[dict[str, Any]] = []
        for key, why in pairs:
            m = by_key.get(key)
            if m is None:
                raise InvalidInput("办件中没有这项材料", field="items")
            m.status, m.reason, m.updated_at = "defective", why, f.act.at
            f.session.add(m)
            notice_items.append({"key": m.key, "name": m.name, "problem": "需补正", "reason": why})
        if reason:
            notice_items.append({"key": None, "name": "其他", "problem": "需补正", "reason": reason})
        _move(f, "case.request_correction", actor, items=notice_items, reason=reason,
              note="；".join(f"{i['name']}：{i['reason']}" for i in notice_items) or None)
        f.case.reviewer_id = actor.id
        f.case.review_comment = reason or None
        f.case.corrections += 1
        notice = issue(f.session, f.case, "correction", actor_id=actor.id or 0, at=f.act.at,
                       items=notice_items)
    return notice
