"""Reading cases with outlet and domain scoping, case numbers, and the common frame of
every case action (load → authorize → lock → change → audit).

Scoping rule: an outlet user sees only cases of ``actor.outlet_id`` (plus outlets they
cover as an AB角 backup while the assignment is in force, as ``authorize`` allows); a center reviewer
sees cases that reached the center (forwarded at least once) in their ``domain`` (all
domains when it is None). Anything else raises :class:`CaseNotFound` — never the data.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from audit.db import reader_of
from outlet.clock import local_day, utc_bounds
from outlet.errors import CaseNotFound, InvalidInput
from outlet.models import Applicant, Case, CaseEvent, CaseFile, CaseMaterial, CaseSerial, Notice
from outlet.states import OPEN, GuardInput
from outlet.workdays import WorkCalendar
from partners import refdata
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
    """The actor's own outlet plus outlets covered as an AB角 backup at ``at`` (now: kept
    per day between requests until the cover changes, :mod:`partners.refdata`)."""
    if not is_outlet_user(actor):
        return set()
    assert actor.outlet_id is not None
    if at is not None:
        return {actor.outlet_id} | covered_outlets(session, actor, at)
    now = utcnow()
    cover = refdata.cached(("cover", actor.id, local_day(now)), lambda: covered_outlets(session, actor, now))
    return {actor.outlet_id} | cover


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


@functools.cache
def _case_statement(scope: str) -> Any:
    """The case with its matter, version, outlet and applicant by ``number``, for one kind
    of :func:`visibility` (``scope``): "outlets" (parameter ``outlets``, expanding),
    "center" (forwarded cases), "domain" (forwarded cases of parameter ``domain``) or
    "none". Built once per scope: the case page runs it on every view."""
    cond: ColumnElement[bool] = {
        "outlets": col(Case.outlet_id).in_(bindparam("outlets", expanding=True)),
        "center": col(Case.forwarded_at).is_not(None),
        "domain": and_(col(Case.forwarded_at).is_not(None), col(MatterVersion.domain) == bindparam("domain")),
    }.get(scope, false())
    return (
        select(Case, MatterVersion, Matter, Outlet, Applicant)
        .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
        .join(Matter, col(Matter.id) == Case.matter_id)
        .join(Outlet, col(Outlet.id) == Case.outlet_id)
        .join(Applicant, col(Applicant.id) == Case.applicant_id)
        .where(col(Case.number) == bindparam("number"), cond)
    )


def load_case(session: Session, actor: Staff, number: str) -> CaseRef:
    """The case ``number`` if ``actor`` may see it, else :class:`CaseNotFound`. One query:
    the case with its matter, version, outlet and applicant, scoped as :func:`visibility`."""
    params: dict[str, Any] = {"number": number}
    if is_outlet_user(actor):
        scope, params["outlets"] = "outlets", sorted(visible_outlets(session, actor))
    elif is_reviewer(actor):
        scope = "domain" if actor.domain else "center"
        if actor.domain:
            params["domain"] = actor.domain
    else:
        scope = "none"
    row = session.execute(_case_statement(scope), params).first()
    if row is None:
        raise CaseNotFound()
    case, version, matter, outlet, applicant = row
    return CaseRef(case, matter, version, outlet, applicant)


@functools.cache
def _of_case(model: Any, *, by_actor: bool = False) -> Any:
    """Rows of ``model`` belonging to one case (parameter ``case_id``) in id order, built
    once; ``by_actor`` adds the acting staff member's display name (case events)."""
    columns = (model, Staff.display_name) if by_actor else (model,)
    stmt = select(*columns)
    if by_actor:
        stmt = stmt.join(Staff, col(Staff.id) == model.actor_id)
    return stmt.where(col(model.case_id) == bindparam("case_id")).order_by(col(model.id))


def materials_of(session: Session, case_id: int) -> list[CaseMaterial]:
    return list(session.execute(_of_case(CaseMaterial), {"case_id": case_id}).scalars())


def files_of(session: Session, case_id: int) -> list[CaseFile]:
    return list(session.execute(_of_case(CaseFile), {"case_id": case_id}).scalars())


def notices_of(session: Session, case_id: int) -> list[Notice]:
    return list(session.execute(_of_case(Notice), {"case_id": case_id}).scalars())


def events_of(session: Session, case_id: int) -> list[tuple[CaseEvent, str]]:
    rows = session.execute(_of_case(CaseEvent, by_actor=True), {"case_id": case_id}).all()
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


@dataclass(frozen=True)
class CaseBrief:
    """The columns of a case a list row shows (a Core row, not an ORM object: lists load
    only what they print)."""

    id: int
    number: str
    state: str
    outlet_id: int
    due_on: date | None
    due_estimated: bool
    created_at: datetime


@dataclass
class CaseRow:
    case: CaseBrief
    matter_name: str
    applicant_name: str
    outlet_name: str
    deadline: str  # "overdue" / "due_soon" / "ok"


_BRIEF = (Case.id, Case.number, Case.state, Case.outlet_id, Case.due_on, Case.due_estimated,  # type: ignore[var-annotated]
          Case.created_at)


def _list_select(
    visible: ColumnElement[bool], *conditions: ColumnElement[bool], limit: int, offset: int = 0,
    order: Sequence[SQLColumnExpression[Any]] | None = None, count: bool = False, tag: int = 0,
) -> Any:
    """One page of list rows as a Core select: the brief columns, the matter, applicant and
    outlet names, the list ``tag`` and (with ``count``) the total without the limit: a count
    of its own, run once (a window count over the page sorted and read every matching row
    with its names first: 6 ms with 2,000 cases in a day, growing with each)."""
    total = _joined(select(func.count()), visible, *conditions).scalar_subquery() if count else literal(0)
    return (
        _joined(select(*(col(c) for c in _BRIEF), col(MatterVersion.name).label("matter_name"),
                       col(Applicant.name).label("applicant_name"), col(Outlet.name).label("outlet_name"),
                       total.label("total"), literal(tag).label("tag")), visible, *conditions)
        .order_by(*(order or [col(Case.created_at).desc()]))
        .offset(offset)
        .limit(limit)
    )


def _joined(stmt: Any, *conditions: ColumnElement[bool]) -> Any:
    """``stmt`` over cases joined with their matter version, applicant and outlet (the
    tables list conditions may name), filtered by ``conditions``."""
    return (stmt.select_from(Case)
            .join(MatterVersion, col(MatterVersion.id) == Case.matter_version_id)
            .join(Applicant, col(Applicant.id) == Case.applicant_id)
            .join(Outlet, col(Outlet.id) == Case.outlet_id)
            .where(*conditions))


def _case_row(r: Any, cal: WorkCalendar, day: date) -> CaseRow:
    brief = CaseBrief(r.id, r.number, r.state, r.outlet_id, r.due_on, bool(r.due_estimated), r.created_at)
    status = cal.deadline_status(day, r.due_on) if r.state in OPEN else "ok"
    return CaseRow(brief, r.matter_name, r.applicant_name, r.outlet_name, status)


def _rows(
    session: Session, actor: Staff, *conditions: ColumnElement[bool], limit: int = 50,
    offset: int = 0, calendar: WorkCalendar | None = None, today: date | None = None,
    order: Sequence[SQLColumnExpression[Any]] | None = None,
    visible: ColumnElement[bool] | None = None, totals: list[int] | None = None,
) -> list[CaseRow]:
    """One page of case rows. ``totals``: when given, the number of rows matching without
    the limit is appended to it (a window count in the same query, 0 for an empty page)."""
    cal = calendar or WorkCalendar.cached(session)
    day = today or local_day(utcnow())
    stmt = _list_select(visible if visible is not None else visibility(session, actor), *conditions,
                        limit=limit, offset=offset, order=order, count=totals is not None)
    rows = session.connection().execute(stmt).all()
    if totals is not None:
        totals.append(int(rows[-1].total) if rows else 0)
    return [_case_row(r, cal, day) for r in rows]


def today_cases(session: Session, actor: Staff, today: date, *, limit: int = 200,
                **shared: Any) -> list[CaseRow]:
    """Cases created at ``actor``'s outlet on ``today`` (Beijing date), newest first, at most
    ``limit``. ``shared``: ``calendar`` and ``visible`` computed once per request (see
    ``home_lists``), ``totals`` to learn how many there are in all."""
    return _rows(session, actor, *_today_conditions(today), today=today, limit=limit, **shared)


def _today_conditions(today: date) -> tuple[ColumnElement[bool], ...]:
    start, end = utc_bounds(today)
    return col(Case.created_at) >= start, col(Case.created_at) < end


DEADLINE_LIMIT = 500  # open cases overdue or due soon loaded for one list


def _deadline_conditions(cal: WorkCalendar, today: date) -> tuple[ColumnElement[bool], ...]:
    return col(Case.state).in_(OPEN), col(Case.due_on).is_not(None), col(Case.due_on) <= _cutoff(cal, today)


def _cutoff(cal: WorkCalendar, today: date) -> date:
    """The last due date still "due soon" (the day before the 3rd working day after
    ``today``): cases due later are neither overdue nor due soon and are never loaded."""
    return cal.due_soon_cutoff(today)


def _split_deadlines(rows: list[CaseRow]) -> tuple[list[CaseRow], list[CaseRow]]:
    return ([r for r in rows if r.deadline == "overdue"], [r for r in rows if r.deadline == "due_soon"])


def deadline_cases(
    session: Session, actor: Staff, today: date, **shared: Any
) -> tuple[list[CaseRow], list[CaseRow]]:
    """(overdue, due_soon) open cases visible to ``actor``, earliest deadline first."""
    if shared.get("calendar") is None:
        shared["calendar"] = WorkCalendar.load(session)
    rows = _rows(session, actor, *_deadline_conditions(shared["calendar"], today), today=today,
                 limit=DEADLINE_LIMIT, order=[col(Case.due_on)], **shared)
    return _split_deadlines(rows)


def recent_cases(
    session: Session, actor: Staff, *, state: str | None = None, page: int = 1, per_page: int = 30,
    **shared: Any,
) -> list[CaseRow]:
    cond = col(Case.state) == state if state else true()
    return _rows(session, actor, cond, limit=per_page, offset=(max(page, 1) - 1) * per_page, **shared)


HOME_TODAY = 20  # rows of today's cases on the teller home (the rest: 最近办件, paginated)


@functools.cache
def _home_statement() -> Any:
    """The teller home's three lists as one statement, built once: parameters ``outlets``
    (expanding), ``cutoff``, ``start``, ``end``, ``per_page``, ``offset``. Building a select
    costs more than running it on SQLite, and a statement object reused keeps SQLAlchemy's
    compiled form and result metadata without re-adapting them per request."""
    visible = col(Case.outlet_id).in_(bindparam("outlets", expanding=True))
    parts = [
        _list_select(visible, col(Case.state).in_(OPEN), col(Case.due_on).is_not(None),
                     col(Case.due_on) <= bindparam("cutoff"), limit=DEADLINE_LIMIT,
                     order=[col(Case.due_on)], tag=0),
        _list_select(visible, col(Case.created_at) >= bindparam("start"),
                     col(Case.created_at) < bindparam("end"), limit=HOME_TODAY, count=True, tag=1),
        _list_select(visible, limit=bindparam("per_page"), offset=bindparam("offset"), tag=2),
    ]
    return union_all(*(select(p.subquery()) for p in parts))


def home_lists(session: Session, actor: Staff, today: date, *, page: int = 1,
               per_page: int = 20) -> dict[str, Any]:
    """The teller home's lists (today's newest :data:`HOME_TODAY` and their count, overdue,
    due soon, recent page) in one statement (three limited selects, UNION ALL), with the
    calendar and the visible outlets (AB角 cover) read once for all of them."""
    cal = WorkCalendar.cached(session)
    start, end = utc_bounds(today)
    params = {
        "outlets": sorted(visible_outlets(session, actor)),
        "cutoff": _cutoff(cal, today),
        "start": start, "end": end, "per_page": per_page, "offset": (max(page, 1) - 1) * per_page,
    }
    lists: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for r in session.connection().execute(_home_statement(), params):
        lists[r.tag].append(r)
    # each part keeps its own order (sorted again here: UNION ALL promises no order)
    deadline_rows = sorted(lists[0], key=lambda r: r.due_on)
    today_rows = sorted(lists[1], key=lambda r: r.created_at, reverse=True)
    recent = sorted(lists[2], key=lambda r: r.created_at, reverse=True)
    overdue, soon = _split_deadlines([_case_row(r, cal, today) for r in deadline_rows])
    return {"today_rows": [_case_row(r, cal, today) for r in today_rows],
            "today_total": int(today_rows[0].total) if today_rows else 0,
            "overdue": overdue, "due_soon": soon,
            "recent": [_case_row(r, cal, today) for r in recent]}


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
