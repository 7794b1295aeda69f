"""Queue figures — see the family's DEFS (added in a following slice)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from outlet.figures.base import FigureDef, Number, Period, Scope, Value

F = "queue"
DEFS: tuple[FigureDef, ...] = ()


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    return {}


def derive(c: dict[str, Number]) -> dict[str, Value]:
    return {}


def heatmap(session: Session, scope: Scope, period: Period) -> list[list[int]]:
    return [[0] * 24 for _ in range(7)]
