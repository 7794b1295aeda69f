"""自助打印 at the kiosk (issue 10 §4): the 受理回执 / 一次性告知书 of a case, reprinted by the
applicant without staff.

The case is found the way 办件查询 finds it — case number + 6-digit check code — and, because
these documents carry the applicant's name and the kiosk stands unattended (at night too),
the person must also show the ID card of the applicant or of the recorded agent (代理人): read
by the ID-card reader (``web/static/js/idcard-reader.js``) or typed on the touch keypad. An
unknown number, a wrong code and a wrong ID number give one answer with the same work (the web
layer throttles guesses, scope ``selfprint``). A successful lookup is audited ``notice.reprint``
(role "device", the kiosk) naming the case and the notices shown; no name or ID in the leaf.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet.cases import materials_of
from outlet.models import Applicant, Case, CaseMaterial, Notice
from outlet.queue.errors import QueueNotFound
from partners.delegation import unattended_action
from partners.models import MatterVersion, Outlet, Staff

KINDS = ("receipt", "one_time")  # what the kiosk reprints (issue 10 §4)
NOT_FOUND = "办件编号、查询码或身份证号码不正确"


@dataclass
class Documents:
    """What a kiosk may print for one case: its notices of :data:`KINDS`, newest last, and
    what their template needs (the same template as the counter's printable notice)."""

    case: Case
    version: MatterVersion
    applicant: Applicant
    outlet: Outlet
    materials: list[CaseMaterial]
    notices: list[Notice]
    issuers: dict[int, str] = field(default_factory=dict)


def normalise_id(text: str) -> str:
    """An ID number as typed or read: spaces dropped, full-width digits/X folded, upper case."""
    folded = (text or "").translate({0xFF38: "X", 0xFF58: "X", **{0xFF10 + i: str(i) for i in range(10)}})
    return "".join(folded.split()).upper()[:18]


def _same(a: str, b: str | None) -> bool:
    return secrets.compare_digest(a.encode(), (b or "\x00" * 18).encode())


def documents(engine: Engine, *, device_id: int, outlet_id: int, number: str, check_code: str, id_number: str,
              at: datetime | None = None) -> Documents:
    """The printable notices of case ``number`` for the kiosk ``device_id`` of ``outlet_id``.

    Raises :class:`QueueNotFound` (404, one message) unless the check code matches and
    ``id_number`` is the applicant's or the agent's. Audited ``notice.reprint``."""
    number, code, idn = (number or "").strip()[:48], (check_code or "").strip()[:6], normalise_id(id_number)
    with Session(engine, expire_on_commit=False) as s:
        row = s.exec(select(Case, Applicant).join(Applicant, col(Applicant.id) == Case.applicant_id)
                     .where(Case.number == number)).first()
        case, applicant = row if row is not None else (None, None)
        ok = _same(code, case.check_code if case else None)
        ok = (_same(idn, applicant.id_number if applicant else None)
              | _same(idn, case.agent_id_number if case else None)) and ok
        if case is None or applicant is None or not ok or len(idn) < 15:
            raise QueueNotFound(NOT_FOUND)
        version = s.get(MatterVersion, case.matter_version_id)
        outlet = s.get(Outlet, case.outlet_id)
        kiosk_outlet = s.get(Outlet, outlet_id)
        notices = list(s.exec(select(Notice).where(Notice.case_id == case.id, col(Notice.kind).in_(KINDS))
                              .order_by(col(Notice.id))).all())
        staff_ids = {n.issued_by for n in notices}
        issuers = {m.id or 0: m.display_name for m in s.exec(select(Staff).where(col(Staff.id).in_(staff_ids))).all()}
        mats = materials_of(s, case.id or 0)
    assert version is not None and outlet is not None
    with unattended_action(engine, actor_id=device_id, role="device", action="notice.reprint", outlet=kiosk_outlet,
                           case=case.number, at=at) as act:
        act.state = (case.state, case.state)
    return Documents(case, version, applicant, outlet, mats, notices, issuers)


def context(docs: Documents) -> dict[str, Any]:
    """The template variables of ``cases/_notice_doc.html`` shared by every document."""
    return {"case": docs.case, "version": docs.version, "applicant": docs.applicant, "outlet": docs.outlet,
            "materials": docs.materials}
