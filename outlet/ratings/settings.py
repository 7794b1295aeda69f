"""The center admin's 好差评 settings: a new version of the reason list and the deadlines
(working days). One audited ``admin.rating.edit`` per save."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from outlet.ratings.models import RatingPolicy, RatingReasonSet
from outlet.ratings.rules import RatingError, current_reasons, parse_reason_lines
from partners.delegation import delegated_action
from partners.models import Staff
from partners.numbers import ascii_int, typed_code

POLICY_FIELDS = {"window_days": "办结后评价期限", "callback_days": "回访时限",
                 "rectify_days": "整改时限", "appeal_days": "申诉时限", "decide_days": "复核时限"}


def reason_text(items: list[dict[str, str]]) -> str:
    """The editor's text form of a reason list (``code|名称|good``)."""
    return "\n".join(f"{i['code']}|{i['label']}|{i['polarity']}" for i in items)


def save(engine: Engine, actor: Staff, *, reasons: str, days: dict[str, str],
         at: datetime | None = None) -> int:
    """Validate and save; a changed reason list becomes a new version (returned). Raises
    :class:`RatingError` (422, nothing stored) or a delegation refusal (admins only)."""
    items = parse_reason_lines(reasons)
    values: dict[str, int] = {}
    errors: dict[str, str] = {}
    for key, label in POLICY_FIELDS.items():
        if (number := ascii_int(typed_code(days.get(key)), low=1, high=30)) is None:
            errors[key] = f"{label}须为1至30个工作日"
        else:
            values[key] = number
    if errors:
        raise RatingError(next(iter(errors.values())), errors=errors)
    with delegated_action(engine, actor, "admin.rating.edit", at=at) as act:
        s = act.session
        version, current = current_reasons(s)
        if items != current:
            last = s.exec(select(RatingReasonSet.version)
                          .order_by(col(RatingReasonSet.version).desc())).first()
            version = (last or 1) + 1  # version 1 is the built-in default list
            s.add(RatingReasonSet(version=version, items=items, created_at=act.at,
                                  created_by=actor.id))
        row = s.get(RatingPolicy, 1) or RatingPolicy(id=1)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at, row.updated_by = act.at, actor.id
        s.add(row)
    return version
