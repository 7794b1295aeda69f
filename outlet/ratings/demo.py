"""Demo 好差评 data, made through the real service functions (``servicepoint demo``): a
评价器 paired to teller1's counter, a month of its ratings (mostly good, some 基本满意), and
three 差评 at different points of the closed loop — one overdue, one closed with 满意
feedback, one appealed and upheld (excluded from the figures, still on record)."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet import devices
from outlet.models import Case
from outlet.ratings import appeals, submit
from outlet.ratings import workorders as wo
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import RatingInput
from outlet.workdays import WorkCalendar
from partners.models import Staff

LOCAL = ZoneInfo("Asia/Shanghai")
GOOD = ["g_fast", "g_clear", "g_polite", "g_once"]


def _staff(s: Session, username: str) -> Staff:
    return s.exec(select(Staff).where(Staff.username == username)).one()


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LOCAL).astimezone(UTC).replace(tzinfo=None)


def _data(level: int, reasons: list[str] | None = None, **kw: object) -> RatingInput:
    return RatingInput(level=level, reasons=reasons or [], nonce=secrets.token_urlsafe(16),
                       **kw)  # type: ignore[arg-type]


def seed_demo_ratings(engine: Engine, today: date | None = None, *, pii_key: bytes) -> str | None:
    """Seed once (nothing when ratings exist); returns the 评价器's one-time token."""
    today = today or datetime.now(LOCAL).date()
    with Session(engine, expire_on_commit=False) as s:
        if s.exec(select(Rating.id)).first() is not None:
            return None
        lead, teller, reviewer = _staff(s, "lead1"), _staff(s, "teller1"), _staff(s, "reviewer3")
        cal = WorkCalendar.load(s)
        delivered = s.exec(select(Case).where(Case.state == "delivered")
                           .order_by(col(Case.id))).first()
    days = [today - timedelta(days=n) for n in range(30, 0, -1)]
    workdays = [d for d in days if cal.is_workday(d)]
    pad, token = devices.pair(engine, lead, kind="rating_pad", label="1号窗口评价器",
                              counter="1号窗口", staff_id=teller.id,
                              at=_at(workdays[0], 8, 30))
    rnd = random.Random(11)
    for day in workdays:
        for k in range(rnd.randint(3, 6)):
            level = rnd.choices([5, 4, 3], weights=[70, 22, 8])[0]
            reasons = rnd.sample(GOOD, rnd.randint(0, 2)) if level >= 4 else []
            # 服务效率, 服务水平 and 服务态度 given by most raters, near the overall level
            dims = {d: max(1, min(5, level + rnd.choice((-1, 0, 0, 1))))
                    for d in ("efficiency", "competence", "attitude") if rnd.random() < .7}
            submit.submit_device(engine, pad, "during", _data(level, reasons, dimensions=dims),
                                 reasons_version=1, at=_at(day, 9 + k, rnd.randint(0, 59)))
    # 差评 1: anonymous, about the waiting — nobody called back: overdue
    overdue_day = workdays[-6]
    submit.submit_device(engine, pad, "during",
                         _data(2, ["b_wait"], text="排队等了四十分钟", contact_phone="13912345678"),
                         reasons_version=1, pii_key=pii_key, at=_at(overdue_day, 15))
    # 差评 2: real-name, after completion, worked to 销号 with 满意 feedback
    if delivered is not None and delivered.completed_at is not None:
        at = delivered.completed_at + timedelta(days=1)
        rating = submit.submit_qr(engine, delivered.number, delivered.check_code, "after",
                                  _data(1, ["b_unclear"], text="领取时没有告知需要带原件"),
                                  reasons_version=1, at=at)
        order_id = _order_id(engine, rating.id)
        wo.record_callback(engine, lead, order_id, reached=True,
                           note="已致电申请人，核实为出件告知不完整", at=at + timedelta(hours=2))
        wo.record_rectification(engine, lead, order_id, kind="rectify",
                                note="出件告知单增加“携带原件”提示，已组织窗口人员学习",
                                at=at + timedelta(hours=20))
        wo.record_feedback(engine, lead, order_id, view="满意", note="申请人认可整改",
                           at=at + timedelta(hours=22))
        wo.close(engine, lead, order_id, at=at + timedelta(hours=23))
    # 差评 3: a mis-tap at the 评价器; teller1 appeals, the center upholds it
    mistake_day = workdays[-2]
    wrong = submit.submit_device(engine, pad, "during", _data(1), reasons_version=1,
                                 at=_at(mistake_day, 11))
    appeal = appeals.file_appeal(engine, teller, wrong.id or 0,
                                 reason="申请人离开前误触“非常不满意”，随即口头说明满意，有现场监控可查",
                                 at=_at(mistake_day, 16))
    appeals.decide_appeal(engine, reviewer, appeal.id or 0, upheld=True, category="误评",
                          note="经调阅现场监控，认定为误评", at=_at(mistake_day, 17))
    return token


def _order_id(engine: Engine, rating_id: int | None) -> int:
    with Session(engine) as s:
        return s.exec(select(RatingWorkOrder.id)
                      .where(RatingWorkOrder.rating_id == rating_id)).one() or 0
