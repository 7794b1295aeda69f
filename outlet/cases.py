"""Reading cases with outlet and domain scoping, case numbers, and the common frame of
every case action (load → authorize → lock → change → audit).

Scoping rule: an outlet user sees only cases of ``actor.outlet_id`` (plus outlets they
cover as an AB角 backup while the assignment is in force, as ``authorize`` allows); a center reviewer
sees cases that reached the center (forwarded at least once) in their ``domain`` (all
domains when it is None). Anything else raises :class:`CaseNotFound` — never the data.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, false, func, or_, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.db import reader_of
from outlet.clock import local_day, utc_bounds
from outlet.errors import CaseNotFound, InvalidInput
from outlet.models import Applicant, Case, CaseEvent, CaseFile, CaseMaterial, CaseSerial, Notice
from outlet.states import OPEN, GuardInput
from outlet.workdays import DUE_SOON_DAYS, WorkCalendar
from partners.authorize import covered_outlets
from partners.delegation import ActionContext, delegated_action
from partners.models import OUTLET_ROLES, Matter, MatterVersion, Outlet, Staff, utcnow
from partners.numbers import ascii_digits

REVIEW_STATES = ("forwarded", "under_review")


@dataclass
class CaseRef:
    """A case with what every action needs around it."""

    case: Case
    matter: Matter
    version: MatterVersion
    outlet: Outlet
    applicant: Applicant

    @property
    def subject(self) -> str:
        return self.applicant.pseudonym


def is_outlet_user(actor: Staff) -> bool:
    return actor.outlet_id is not None and bool(actor.role_set & OUTLET_ROLES)


def is_reviewer(actor: Staff) -> bool:
    return actor.outlet_id is None and "reviewer" in actor.role_set


def visible_outlets(session: Session, actor: Staff, at: datetime | None = None) -> set[int]:
    """The actor's own outlet plus outlets covered as an AB角 backup right now."""
    if not is_outlet_user(actor):
        return set()
    assert actor.outlet_id is not None
    return {actor.outlet_id} | covered_outlets(session, actor, at or utcnow())


def visibility(session: Session, actor: Staff) -> ColumnElement[bool]:
    """SQL condition on Case (joined with MatterVersion) for what ``actor`` may see."""
    if is_outlet_user(actor):
        return col(Case.outlet_id).in_(visible_outlets(session, actor))
    if is_reviewer(actor):
        cond: ColumnElement[bool] = col(Case.forwarded_at).is_not(None)
        if actor.domain:
            cond = and_(cond, col(MatterVersion.domain) == actor.domain)
        return cond
    return false()


def load_case(session: Session, actor: Staff, number: str) -> CaseRef:
    """The case ``number`` if ``actor`` may see it, else :class:`CaseNotFound`."""
    row = session.exec(  # one query: the case with its matter, version, outlet, applicant
        select(Case, MatterVersion, Matter, Outlet, Applicant)  # type: ignore[call-overload]
        .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
        .join(Matter, col(Matter.id) == Case.matter_id)
        .join(Outlet, col(Outlet.id) == Case.outlet_id)
        .join(Applicant, col(Applicant.id) == Case.applicant_id)
        .where(Case.number == number, visibility(session, actor))
    ).first()
    if row is None:
        raise CaseNotFound()
    case, version, matter, outlet, applicant = row
    return CaseRef(case, matter, version, outlet, applicant)


def materials_of(session: Session, case_id: int) -> list[CaseMaterial]:
    return list(
        session.exec(
            select(CaseMaterial).where(CaseMaterial.case_id == case_id).order_by(col(CaseMaterial.id))
        ).all()
    )


def files_of(session: Session, case_id: int) -> list[CaseFile]:
    return list(
        session.exec(
            select(CaseFile).where(CaseFile.case_id == case_id).order_by(col(CaseFile.id))
        ).all()
    )


def notices_of(session: Session, case_id: int) -> list[Notice]:
    return list(
        session.exec(select(Notice).where(Notice.case_id == case_id).order_by(col(Notice.id))).all()
    )


def events_of(session: Session, case_id: int) -> list[tuple[CaseEvent, str]]:
    rows = session.exec(
        select(CaseEvent, Staff.display_name)
        .join(Staff, col(Staff.id) == CaseEvent.actor_id)
        .where(CaseEvent.case_id == case_id)
        .order_by(col(CaseEvent.id))
    ).all()
    return [(e, name) for e, name in rows]


@dataclass
class Frame:
    """Inside a case action: the audit context, the locked case and its surroundings."""

    act: ActionContext
    ref: CaseRef
    today: date

    @property
    def session(self) -> Session:
        return self.act.session

    @property
    def case(self) -> Case:
        return self.ref.case

    def guard_input(self, **params: object) -> GuardInput:
        assert self.case.id is not None
        return GuardInput(
            session=self.session, case=self.case, version=self.ref.version,
            materials=materials_of(self.session, self.case.id), today=self.today,
            params=dict(params), at=self.act.at,
        )

    def moved(self, source: str, target: str) -> None:
        self.act.state = (source, target)


@contextmanager
def case_action(
    engine: Engine, actor: Staff, number: str, action: str, *, at: datetime | None = None,
    expected_revision: int | None = None,
) -> Iterator[Frame]:
    """Load the case (scoped), authorize ``action`` and hold the case row locked."""
    with Session(reader_of(engine)) as s:  # a snapshot read; the write below locks the row
        ref = load_case(s, actor, number)
    now = at or utcnow()
    with delegated_action(
        engine, actor, action, matter=ref.matter, outlet=ref.outlet, case=number,
        subject=ref.subject, matter_version=ref.version, at=now,
    ) as act:
        case = act.session.exec(
            select(Case).where(Case.id == ref.case.id).with_for_update()
        ).one()
        act.state = (case.state, case.state)
        if expected_revision is not None and case.revision != expected_revision:
            raise InvalidInput("办件已被他人更新，请刷新页面后重试")
        ref.case = case
        yield Frame(act, ref, local_day(now))


CASE_NUMBER_LENGTH = 48  # Case.number column
SERIAL_DIGITS = (4, 6)  # the convention's 4 digits; up to 6 where the column has room


def serial_capacity(implementation_code: str) -> int:
    """How many cases of one matter one day can number: the convention writes the daily
    serial with 4 digits (DOMAIN.md: code + YYYYMMDD + 4-digit serial); past 9,999 the serial
    simply grows, up to 6 digits (999,999) when the code leaves room in the 48-character
    number (31- and 33-character implementation codes both do)."""
    room = CASE_NUMBER_LENGTH - len(implementation_code) - 8
    return 10 ** max(SERIAL_DIGITS[0], min(SERIAL_DIGITS[1], room)) - 1


def next_case_number(session: Session, implementation_code: str, day: date) -> str:
    """Allocate ``code + YYYYMMDD + serial`` (serial 0001…9999, then 10000… up to
    :func:`serial_capacity`) with one atomic upsert: safe under concurrent transactions on
    both SQLite and PostgreSQL. Numbers are unambiguous because a matter's code has a fixed
    length. Raises :class:`InvalidInput` past the capacity (nothing is allocated then)."""
    key = day.strftime("%Y%m%d")
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = CaseSerial.__table__  # type: ignore[attr-defined]
    stmt = (
        ins(table)
        .values(implementation_code=implementation_code, day=key, last=1)
        .on_conflict_do_update(
            index_elements=["implementation_code", "day"], set_={"last": table.c.last + 1}
        )
        .returning(table.c.last)
    )
    serial = int(session.connection().execute(stmt).scalar_one())
    capacity = serial_capacity(implementation_code)
    if serial > capacity:
        raise InvalidInput(f"该事项今日的办件编号已用完（每日最多 {capacity:,} 件），请明日再办理或联系中心管理员")
    return f"{implementation_code}{key}{serial:0{SERIAL_DIGITS[0]}d}"


def new_check_code() -> str:
    """6-digit code printed on the receipt; needed for the public status page."""
    return f"{secrets.randbelow(10**6):06d}"


# --- lists -----------------------------------------------------------------------------


@dataclass
class CaseRow:
    case: Case
    matter_name: str
    applicant_name: str
    outlet_name: str
    deadline: str  # "overdue" / "due_soon" / "ok"


def _rows(
    session: Session, actor: Staff, *conditions: ColumnElement[bool], limit: int = 50,
    offset: int = 0, calendar: WorkCalendar | None = None, today: date | None = None,
    order: Sequence[SQLColumnExpression[Any]] | None = None,
    visible: ColumnElement[bool] | None = None, totals: list[int] | None = None,
) -> list[CaseRow]:
    """One page of case rows. ``totals``: when given, the number of rows matching without
    the limit is appended to it (a window count in the same query, 0 for an empty page)."""
    cal = calendar or WorkCalendar.load(session)
    day = today or local_day(utcnow())
    columns: list[Any] = [Case, MatterVersion.name, Applicant.name, Outlet.name]
    if totals is not None:
        columns.append(func.count().over())
    stmt = (
        select(*columns)
        .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
        .join(Applicant, col(Applicant.id) == Case.applicant_id)
        .join(Outlet, col(Outlet.id) == Case.outlet_id)
        .where(visible if visible is not None else visibility(session, actor), *conditions)
        .order_by(*(order or [col(Case.created_at).desc()]))
        .offset(offset)
        .limit(limit)
    )
    out = []
    total = 0
    for case, matter_name, applicant_name, outlet_name, *count in session.exec(stmt).all():
        status = cal.deadline_status(day, case.due_on) if case.state in OPEN else "ok"
        out.append(CaseRow(case, matter_name, applicant_name, outlet_name, status))
        total = int(count[0]) if count else 0
    if totals is not None:
        totals.append(total)
    return out


def today_cases(session: Session, actor: Staff, today: date, *, limit: int = 200,
                **shared: Any) -> list[CaseRow]:
    """Cases created at ``actor``'s outlet on ``today`` (Beijing date), newest first, at most
    ``limit``. ``shared``: ``calendar`` and ``visible`` computed once per request (see
    ``home_lists``), ``totals`` to learn how many there are in all."""
    start, end = utc_bounds(today)
    return _rows(session, actor, col(Case.created_at) >= start, col(Case.created_at) < end,
                 today=today, limit=limit, **shared)


def deadline_cases(
    session: Session, actor: Staff, today: date, **shared: Any
) -> tuple[list[CaseRow], list[CaseRow]]:
    """(overdue, due_soon) open cases visible to ``actor``, earliest deadline first."""
    if shared.get("calendar") is None:
        shared["calendar"] = WorkCalendar.load(session)
    # Due on or before the last day still "due soon" (the day before the 3rd working day
    # after today): the cases that are neither overdue nor due soon are never loaded.
    cutoff = shared["calendar"].add_workdays(today, DUE_SOON_DAYS + 1).day - timedelta(days=1)
    rows = _rows(
        session, actor, col(Case.state).in_(OPEN), col(Case.due_on).is_not(None),
        col(Case.due_on) <= cutoff, today=today, limit=500, order=[col(Case.due_on)], **shared,
    )
    return ([r for r in rows if r.deadline == "overdue"], [r for r in rows if r.deadline == "due_soon"])


def recent_cases(
    session: Session, actor: Staff, *, state: str | None = None, page: int = 1, per_page: int = 30,
    **shared: Any,
) -> list[CaseRow]:
    cond = col(Case.state) == state if state else true()
    return _rows(session, actor, cond, limit=per_page, offset=(max(page, 1) - 1) * per_page, **shared)


HOME_TODAY = 20  # rows of today's cases on the teller home (the rest: 最近办件, paginated)


def home_lists(session: Session, actor: Staff, today: date, *, page: int = 1,
               per_page: int = 20) -> dict[str, Any]:
    """The teller home's lists (today's newest :data:`HOME_TODAY` and their count, overdue,
    due soon, recent page) with the calendar and the visible outlets (AB角 cover) read once
    for all of them."""
    shared: dict[str, Any] = {"calendar": WorkCalendar.load(session), "visible": visibility(session, actor)}
    overdue, soon = deadline_cases(session, actor, today, **shared)
    totals: list[int] = []
    today_rows = today_cases(session, actor, today, limit=HOME_TODAY, totals=totals, **shared)
    return {"today_rows": today_rows, "today_total": totals[0], "overdue": overdue,
            "due_soon": soon, "recent": recent_cases(session, actor, page=page, per_page=per_page, **shared)}


def review_queue(session: Session, actor: Staff, *, page: int = 1, per_page: int = 50) -> list[CaseRow]:
    """Forwarded and under-review cases of the reviewer's domain, oldest first."""
    if not is_reviewer(actor):
        return []
    return _rows(
        session, actor, col(Case.state).in_(REVIEW_STATES),
        limit=per_page, offset=(max(page, 1) - 1) * per_page, order=[col(Case.forwarded_at)],
    )


# --- search ------------------------------------------------------------------------------
SEARCH_MIN = 2
_ID_RE = re.compile(r"^[0-9A-Z]{18}$")
_PHONE_CHARS = (" ", "-", "(", ")", "+")


@dataclass(frozen=True)
class CaseSearch:
    """One page of search results and how the query was read (no PII kept beyond the call)."""

    rows: list[CaseRow]
    total: int
    page: int
    per_page: int
    matched_by: str  # "id_number" / "phone_or_number" / "text"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search_cases(
    session: Session, actor: Staff, query: str, *, page: int = 1, per_page: int = 20
) -> CaseSearch:
    """Cases visible to ``actor`` (their outlet, AB角 cover included) matching ``query``: an
    18-character ID number (the applicant's or the agent's, as stored: upper case, no
    spaces), a phone number (digits compared without spaces, dashes, brackets or a
    leading +86) or part of the case number, else part of the case number or applicant name.

    Input is NFKC-normalised first (full-width digits and letters as typed on Chinese IMEs).
    Raises :class:`InvalidInput` for a query shorter than 2 characters."""
    q = unicodedata.normalize("NFKC", query or "").strip()
    if len(q) < SEARCH_MIN:
        raise InvalidInput(f"请至少输入 {SEARCH_MIN} 个字符", field="q", errors={"q": "查询内容过短"})
    compact = re.sub(r"[\s\-()+]", "", q).upper()
    phone = cast(ColumnElement[str], col(Applicant.phone))
    for ch in _PHONE_CHARS:
        phone = func.replace(phone, ch, "")
    if _ID_RE.match(compact):
        cond: ColumnElement[bool] = or_(col(Applicant.id_number) == compact,
                                        col(Case.agent_id_number) == compact)
        how = "id_number"
    elif ascii_digits(compact) and len(compact) >= 7:
        digits = compact.removeprefix("86") if len(compact) == 13 else compact
        cond = or_(phone == digits, col(Case.number).contains(compact, autoescape=True))
        how = "phone_or_number"
    else:
        cond = or_(col(Case.number).contains(compact, autoescape=True),
                   col(Applicant.name).contains(q, autoescape=True))
        how = "text"
    page = max(page, 1)
    total = session.exec(
        select(func.count()).select_from(Case)
        .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
        .join(Applicant, col(Applicant.id) == Case.applicant_id)
        .where(visibility(session, actor), cond)
    ).one()
    rows = _rows(session, actor, cond, limit=per_page, offset=(page - 1) * per_page)
    return CaseSearch(rows, int(total), page, per_page, how)
