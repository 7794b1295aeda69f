"""Demo services, made through the real service functions (authorized and audited like any
other): a week of 咨询 / 帮办 / 陪办 / 代办 at the demo outlets, home visits by ``agent1``
(one done offline and synced hours later, one still waiting for today), one referred by
``teller1`` at the bank and waiting 待派单 at the street point, and one 告知承诺 case
approved and waiting for the center's 核查."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from outlet import decisions, intake, promise, review
from outlet.files import FileStore
from outlet.intake import NewCase
from outlet.models import CaseMaterial
from outlet.services import daiban, records, visits
from outlet.services.models import ServiceRecord
from outlet.services.records import NewService
from outlet.services.visits import NewVisit
from partners.models import Matter, MatterVersion, Staff

LOCAL = ZoneInfo("Asia/Shanghai")
# (days ago, hour, username, kind, matter name or None, topic, channel, outcome, note)
WEEK = [
    (6, 9, "teller1", "咨询", None, "社保卡丢失后如何补办", "", "answered", ""),
    (6, 10, "teller1", "帮办", "社会保障卡申领", "指导在爱山东APP申领社保卡", "爱山东APP", "done", ""),
    (5, 14, "teller2", "咨询", "个体工商户设立登记", "个体户名称能否用英文", "", "answered", ""),
    (5, 15, "agent1", "陪办", "门诊慢特病病种待遇认定", "陪同老人到医保窗口认定慢病", "", "done", ""),
    (4, 9, "teller3", "帮办", "城乡居民基本养老保险参保登记", "帮助在线参保缴费", "网上办事大厅", "not_done",
     "申请人未带银行卡，约定明日再办"),
    (3, 11, "teller1", "咨询", "住房公积金提取（离休、退休）", "退休提取需要哪些材料", "", "answered", ""),
    (2, 10, "agent1", "咨询", None, "低保申请条件", "", "handed_over", "已转街道民政办详细评估"),
    (1, 16, "teller4", "咨询", None, "邮政网点能否办理社保卡", "", "answered", ""),
    (0, 9, "teller1", "帮办", "社会保障卡申领", "帮助修改社保卡邮寄地址", "爱山东APP", "done", ""),
]
APPLICANTS = [("周秀英", "370211195203140027"), ("孙德胜", "370211194809120018")]


def _at(today: date, days_ago: int, hour: int, minute: int = 0) -> datetime:
    local = datetime.combine(today - timedelta(days=days_ago), time(hour, minute), LOCAL)
    return local.astimezone(UTC).replace(tzinfo=None)


def _staff(s: Session, username: str) -> Staff:
    return s.exec(select(Staff).where(Staff.username == username)).one()


def _matter_id(s: Session, name: str) -> int:
    row = s.exec(select(Matter.id).join(MatterVersion, col(MatterVersion.matter_id) == Matter.id)
                 .where(MatterVersion.name == name)).first()  # every version has the same name
    assert row is not None, name
    return int(row)


def demo_png() -> bytes:
    """A small signature-like PNG (a diagonal line) for the demo visits."""
    w = h = 16
    rows = b"".join(b"\x00" + b"".join(b"\x00\x00\x00\xff" if x == y else b"\x00\x00\x00\x00"
                                       for x in range(w)) for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def seed_demo_services(engine: Engine, pseudonym_key: bytes, files_dir: Path,
                       today: date | None = None, *, pii_key: bytes) -> int:
    """Seed once (nothing when service records exist); returns the number of records made."""
    today = today or datetime.now(LOCAL).date()
    with Session(engine, expire_on_commit=False) as s:
        if s.exec(select(ServiceRecord.id)).first() is not None:
            return 0
        staff = {u: _staff(s, u) for u in ("teller1", "teller2", "teller3", "teller4", "agent1", "lead1",
                                            "reviewer3")}
        matters = {name: _matter_id(s, name) for *_x, name, _t, _c, _o, _n in WEEK if name}
    for days_ago, hour, user, kind, matter, topic, channel, outcome, note in WEEK:
        data = NewService(kind=kind, matter_id=matters[matter] if matter else None, topic=topic, channel=channel)
        rec = records.open_service(engine, staff[user], data, pseudonym_key=pseudonym_key,
                                   at=_at(today, days_ago, hour))
        records.close(engine, staff[user], rec.number, outcome=outcome, note=note,
                      at=_at(today, days_ago, hour, 12 + days_ago))
    # 首问负责: teller1 takes an enquiry and hands it to the lead, who still owns it.
    rec = records.open_service(engine, staff["teller1"], NewService(
        kind="咨询", topic="企业职工退休后公积金能否一次提取"), pseudonym_key=pseudonym_key,
        at=_at(today, 0, 10))
    records.handover(engine, staff["teller1"], rec.number, to_staff_id=staff["lead1"].id,
                     note="已说明一般流程，涉及补缴年限，请负责人答复", at=_at(today, 0, 10, 20))
    # 代办 at the street point: entrusted and delivered; another entrusted and suspended.
    name, id_number = APPLICANTS[0]
    d1 = records.open_service(engine, staff["agent1"], NewService(
        kind="代办", matter_id=matters["门诊慢特病病种待遇认定"], topic="代办慢病认定",
        applicant_name=name, id_number=id_number), pseudonym_key=pseudonym_key, at=_at(today, 4, 10))
    daiban.entrust(engine, staff["agent1"], d1.number, matters="代为提交慢病认定申请并领取结果",
                   valid_until=today + timedelta(days=30), at=_at(today, 4, 10, 15))
    daiban.deliver(engine, staff["agent1"], d1.number, items="门诊慢特病认定结果通知书 1 份",
                   received_by=name, at=_at(today, 1, 15))
    name, id_number = APPLICANTS[1]
    d2 = records.open_service(engine, staff["agent1"], NewService(
        kind="代办", matter_id=matters["门诊慢特病病种待遇认定"], topic="代办慢病认定（行动不便）",
        applicant_name=name, id_number=id_number), pseudonym_key=pseudonym_key, at=_at(today, 2, 9))
    daiban.entrust(engine, staff["agent1"], d2.number, matters="代为提交慢病认定申请",
                   valid_until=today + timedelta(days=30), at=_at(today, 2, 9, 20))
    daiban.suspend(engine, staff["agent1"], d2.number, reason="缺少近半年病历，待家属取回",
                   at=_at(today, 2, 9, 40))
    _visits(engine, staff["agent1"], files_dir, today, pii_key)
    _referral(engine, staff["teller1"], staff["agent1"], today, pii_key)
    _promise_case(engine, staff["teller1"], staff["reviewer3"], pseudonym_key, today)
    with Session(engine) as s:
        return len(s.exec(select(ServiceRecord.id)).all())


def _visits(engine: Engine, agent: Staff, files_dir: Path, today: date, pii_key: bytes) -> None:
    """Three home visits done by agent1 (the second on a phone offline, synced 2 h later)
    and one queued for today."""
    store = FileStore(files_dir)
    people = [("王桂兰", "海韵路 12 号 3 单元 101", "年老"), ("刘长福", "海韵路 8 号 1 单元 502", "残疾"),
              ("赵玉珍", "琅琊湾路 66 号 2 单元 301", "重病"), ("陈德厚", "海韵路 20 号 4 单元 202", "年老")]
    for i, (name, address, reason) in enumerate(people):
        v = visits.request_visit(engine, agent, NewVisit(
            kind="帮办", contact_name=name, address=address, reason=reason, assignee_id=agent.id,
            contact_phone="0532-8619 0007", preferred="上午", channel="网格员"), pii_key=pii_key,
            at=_at(today, 5 - i, 8))
        if i == 3:
            continue  # waiting for today
        day = 4 - i
        arrive, leave = _at(today, day, 9), _at(today, day, 9, 35 + 5 * i)
        synced = leave + timedelta(hours=2) if i == 1 else leave  # offline, synced later
        where = {"arrive_lat": "35.8903", "arrive_lon": "120.0907", "arrive_accuracy": "18"}
        visits.submit(engine, agent, v.number, "arrive", f"demo-arrive-{i}",
                      {"phone_time": arrive.isoformat() + "Z", **where},
                      at=synced - timedelta(seconds=1) if i == 1 else arrive)
        visits.submit(engine, agent, v.number, "complete", f"demo-complete-{i}",
                      {"phone_time": leave.isoformat() + "Z", "outcome": "done",
                       "leave_lat": "35.8904", "leave_lon": "120.0906", "leave_accuracy": "22"},
                      photos=[demo_png()], signature=demo_png(), store=store, at=synced)


def _referral(engine: Engine, teller: Staff, agent: Staff, today: date, pii_key: bytes) -> None:
    """teller1 at the bank refers a resident to agent1's street point this morning: it waits
    待派单 for that point's lead (lead3) or the center to assign it."""
    visits.request_visit(engine, teller, NewVisit(
        kind="帮办", contact_name="孙桂芝", address="海韵路 16 号 2 单元 601", reason="重病",
        contact_phone="13805320016", preferred="下午", channel="窗口", outlet_id=agent.outlet_id),
        pii_key=pii_key, at=_at(today, 0, 9, 30))


def _promise_case(engine: Engine, teller: Staff, reviewer: Staff, key: bytes, today: date) -> None:
    """A 住房公积金退休提取 case whose 离退休证明 was replaced by a signed 告知承诺书, approved
    and waiting for the center's 核查 (try 不属实 → 撤销 as reviewer3)."""
    with Session(engine) as s:
        mid = _matter_id(s, "住房公积金提取（离休、退休）")
    at = _at(today, 3, 10)
    case = intake.create_case(engine, teller, NewCase(
        matter_id=mid, applicant_name="高淑芬", id_number="370211196101150026", phone="13705321888"),
        pseudonym_key=key, at=at)
    keys = [str(m["key"]) for m in _version_materials(engine, mid) if m.get("promise")]
    promise.sign_promise(engine, teller, case.number, keys, at=at)
    with Session(engine) as s:
        rest = [m.key for m in s.exec(select(CaseMaterial).where(CaseMaterial.case_id == case.id))
                if m.status != "received"]
    for k in rest:
        intake.mark_material(engine, teller, case.number, k, "received", at=at)
    decisions.accept(engine, teller, case.number, at=at)
    decisions.forward(engine, teller, case.number, at=at)
    review.claim(engine, reviewer, case.number, at=_at(today, 2, 9))
    review.approve(engine, reviewer, case.number, at=_at(today, 2, 10))


def _version_materials(engine: Engine, matter_id: int) -> list[dict[str, object]]:
    with Session(engine) as s:
        m = s.get(Matter, matter_id)
        assert m is not None
        return list(s.exec(select(MatterVersion).where(MatterVersion.matter_id == matter_id,
                                                       MatterVersion.version == m.current_version)).one().materials)
