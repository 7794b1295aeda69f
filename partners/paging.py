"""Pagination of list pages (admin lists grow; tables that grow are paginated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, select

T = TypeVar("T")

PER_PAGE = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


MAX_PAGE = 100_000  # far past any real list; keeps OFFSET within what databases accept


def clamp_page(value: Any) -> int:
    """A page number from a query string: junk (also non-ASCII digits) and values below 1
    mean page 1, values above :data:`MAX_PAGE` mean that page."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    return min(max(1, int(text[:7])), MAX_PAGE)


def paginate(session: Session, stmt: Any, page: int, per_page: int = PER_PAGE) -> Page[Any]:
    """Run ``stmt`` for one page. Rows are returned as ``session.exec`` gives them."""
    total = int(session.exec(select(func.count()).select_from(stmt.subquery())).one())
    page = min(max(1, page), max(1, -(-total // per_page)))
    items = list(session.exec(stmt.offset((page - 1) * per_page).limit(per_page)).all())
    return Page(items, page, per_page, total)


def paginate_list(items: list[T], page: int, per_page: int = PER_PAGE) -> Page[T]:
    """Paginate rows already in memory (lists filtered on computed values)."""
    total = len(items)
    page = min(max(1, page), max(1, -(-total // per_page)))
    return Page(items[(page - 1) * per_page : page * per_page], page, per_page, total)
