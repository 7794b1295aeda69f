"""Demo cases, made through the real service functions (so they are authorized and
audited like any other): one of each situation a teller meets on day one."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet import decisions, intake, review
from outlet.intake import NewCase
from outlet.models import Case, CaseMaterial
from outlet.workdays import WorkCalendar
from partners.models import Matter, MatterVersion, Staff

LOCAL = ZoneInfo("Asia/Shanghai")

# (matter name, applicant, resident ID, phone) — invented people with valid checksums.
APPLICANTS = [
    ("社会保障卡申领", "李秀兰", "370211195804120021", "13905321234"),
    ("基本医疗保险关系转移接续", "王建国", "370211196503150037", "13806391122"),
    ("职工基本养老保险关系转移接续", "赵丽", "370211198807230043", "13573861234"),
    ("门诊慢特病病种待遇认定", "刘德明", "370211195001010013", "13964221111"),
    ("住房公积金提取（离休、退休）", "陈桂芳", "370211196011250023", "13658691234"),
]


def _staff(session: Session, username: str) -> Staff:
    staff = session.exec(select(Staff).where(Staff.username == username)).one()
    return staff


def _matter_id(session: Session, name: str) -> int:
    row = session.exec(
        select(Matter.id).join(MatterVersion, col(MatterVersion.matter_id) == Matter.id).where(MatterVersion.name == name)
    ).first()
    assert row is not None, name
    return int(row)


def _working_days_ago(calendar: WorkCalendar, today: date, n: int) -> datetime:
    day = today
    while calendar.workdays_between(day, today) < n:
        day -= timedelta(days=1)
    return datetime.combine(day, time(10, 0), LOCAL).astimezone(UTC).replace(tzinfo=None)


def seed_demo_cases(engine: Engine, pseudonym_key: bytes, today: date | None = None) -> list[str]:
    """Create five cases at the first teller's outlet; returns their numbers."""
    today = today or datetime.now(LOCAL).date()
    with Session(engine, expire_on_commit=False) as s:
        if s.exec(select(Case.id)).first() is not None:
            return []
        teller, reviewer3 = _staff(s, "teller1"), _staff(s, "reviewer3")
        calendar = WorkCalendar.load(s)
        matter_ids = {name: _matter_id(s, name) for name, *_ in APPLICANTS}

    def new(name: str, applicant: str, id_number: str, phone: str, at: datetime) -> str:
        data = NewCase(matter_id=matter_ids[name], applicant_name=applicant, id_number=id_number, phone=phone)
        return intake.create_case(engine, teller, data, pseudonym_key=pseudonym_key, at=at).number

    def receive_all(number: str, at: datetime) -> None:
        with Session(engine) as s:
            keys = s.exec(select(CaseMaterial.key).join(Case).where(Case.number == number)).all()
        for key in keys:
            intake.mark_material(engine, teller, number, key, "received", at=at)

    numbers = []
    # Overdue: accepted 12 working days ago on a 7-day matter.
    at = _working_days_ago(calendar, today, 12)
    n = new(*APPLICANTS[0], at=at)
    receive_all(n, at)
    decisions.accept(engine, teller, n, at=at)
    numbers.append(n)
    # Due soon: 9 of 10 working days used.
    at = _working_days_ago(calendar, today, 9)
    n = new(*APPLICANTS[1], at=at)
    receive_all(n, at)
    decisions.accept(engine, teller, n, at=at)
    numbers.append(n)
    # Forwarded, waiting in the 社保 reviewer's queue.
    at = _working_days_ago(calendar, today, 2)
    n = new(*APPLICANTS[2], at=at)
    receive_all(n, at)
    decisions.accept(engine, teller, n, at=at)
    decisions.forward(engine, teller, n, at=at + timedelta(minutes=20))
    numbers.append(n)
    # Today: materials incomplete, one-time notice issued.
    at = _working_days_ago(calendar, today, 0)
    n = new(*APPLICANTS[3], at=at)
    with Session(engine) as s:
        keys = s.exec(select(CaseMaterial.key).join(Case).where(Case.number == n)).all()
    intake.mark_material(engine, teller, n, keys[0], "received", at=at)
    intake.mark_material(engine, teller, n, keys[1], "missing", at=at)
    intake.mark_material(engine, teller, n, keys[2], "defective", reason="复印件不清晰", at=at)
    intake.one_time_notice(engine, teller, n, at=at)
    numbers.append(n)
    # Completed at the center and handed over.
    at = _working_days_ago(calendar, today, 4)
    n = new(*APPLICANTS[4], at=at)
    receive_all(n, at)
    decisions.accept(engine, teller, n, at=at)
    decisions.forward(engine, teller, n, at=at + timedelta(minutes=30))
    review.claim(engine, reviewer3, n, at=at + timedelta(hours=2))
    review.approve(engine, reviewer3, n, comment="材料齐全，准予提取", at=at + timedelta(hours=3))
    decisions.deliver(engine, teller, n, at=at + timedelta(days=1))
    numbers.append(n)
    return numbers
