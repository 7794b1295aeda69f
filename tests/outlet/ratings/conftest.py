"""The outlet test world plus what ratings need: an outlet lead with an AB角 backup, a
center admin, and helpers that rate through the real channels."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet.ratings import submit
from outlet.ratings.models import Rating, RatingWorkOrder
from outlet.ratings.rules import RatingInput
from partners.models import BackupAssignment, Staff
from tests.outlet.conftest import World, _staff

# Wednesday 2026-09-30 10:00 Beijing: the last working day before the National Day holiday
# (Oct 1–7); Oct 10 (Saturday) is a make-up working day.
EVE = datetime(2026, 9, 30, 2, 0)


@dataclass
class RatingWorld:
    w: World
    lead: Staff  # outlet_a's lead
    backup: Staff  # lead at outlet_b, AB角 backup of ``lead``
    admin: Staff

    @property
    def engine(self) -> Engine:
        return self.w.engine

    def qr(self, number: str, level: int, *, stage: str = "during", at: datetime = EVE,
           **kw: object) -> Rating:
        code = self.w.case(number).check_code
        data = RatingInput(level=level, nonce=secrets.token_urlsafe(16), **kw)  # type: ignore[arg-type]
        return submit.submit_qr(self.engine, number, code, stage, data, reasons_version=1, at=at)

    def bad_order(self, at: datetime = EVE) -> RatingWorkOrder:
        """A fresh accepted case rated 1 star through the QR code → its work order."""
        rating = self.qr(self.w.drive("accepted"), 1, at=at)
        with Session(self.engine) as s:
            return s.exec(select(RatingWorkOrder).where(RatingWorkOrder.rating_id == rating.id)).one()

    def order(self, order_id: int) -> RatingWorkOrder:
        with Session(self.engine) as s:
            row = s.get(RatingWorkOrder, order_id)
            assert row is not None
            return row


def rating_world(world: World) -> RatingWorld:
    """Add the lead (with an AB角 backup at outlet B) and an admin to ``world``."""
    with Session(world.engine, expire_on_commit=False) as s, s.begin():
        lead = _staff(s, "lead.a", "outlet_lead", world.outlet_a)
        backup = _staff(s, "lead.b", "outlet_lead", world.outlet_b)
        admin = _staff(s, "admin.x", "admin", None)
        s.add(BackupAssignment(holder_id=lead.id or 0, backup_id=backup.id or 0,
                               valid_from=date(2026, 1, 1)))
    return RatingWorld(world, lead, backup, admin)


@pytest.fixture
def rw(world: World) -> RatingWorld:
    return rating_world(world)
