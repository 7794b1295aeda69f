"""Ratings figures — see the family's DEFS (added in a following slice)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from outlet.figures.base import FigureDef, Number, Period, Scope, Value

F = "ratings"
DEFS: tuple[FigureDef, ...] = ()


def counts(session: Session, scope: Scope, period: Period, by: str | None = None) -> dict[Any, dict[str, Number]]:
    return {}


def derive(c: dict[str, Number]) -> dict[str, Value]:
    return {}
