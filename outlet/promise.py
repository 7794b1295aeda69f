"""告知承诺制 (DOMAIN.md "Rules at the counter"; 国办发〔2020〕42号 on 证明事项告知承诺制):
the applicant may sign a written promise instead of the certificates the catalog marks as
replaceable (material ``promise: true``); the case records which materials the promise
replaced and a printable 告知承诺书 (a notice of kind "promise"). The center later checks the
promise (核查): 属实 closes the matter; 不属实 lets the reviewer revoke the decision with a
reason (a false promise leads to revocation). Every step is a delegated, audited action.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outlet import states
from outlet.cases import case_action, materials_of
from outlet.errors import GuardFailed, IllegalTransition, InvalidInput
from outlet.models import Case, CaseEvent, CasePromise, Notice
from outlet.notices import issue
from partners.models import MatterVersion, Staff

CHECK_RESULTS = ("属实", "不属实")
MAX_NOTE = 500  # characters of a 核查 note or a revocation reason (the columns' size)
CONSEQUENCE = ("申请人作出不实承诺的，行政机关将依法撤销已作出的决定，记入信用记录，"
               "并依法追究相应责任。")
# A promise may be checked once the decision is made or the case is under way at the center.
CHECK_STATES = frozenset({"accepted", "forwarded", "under_review", "approved", "rejected", "delivered"})


def promisable(version: MatterVersion) -> list[dict[str, Any]]:
    """Materials of this matter version a signed promise may replace (catalog ``promise``)."""
    return [m for m in version.materials or [] if m.get("promise")]


def promise_of(session: Session, case_id: int) -> CasePromise | None:
    return session.exec(select(CasePromise).where(CasePromise.case_id == case_id)).first()


def sign_promise(engine: Engine, actor: Staff, number: str, keys: Sequence[str], *,
                 at: datetime | None = None) -> CasePromise:
    """At intake (draft or correction): the applicant signs a promise instead of the
    certificates ``keys``; those checklist lines count as received, the promise records them
    and a 告知承诺书 is issued. Only catalog-marked materials qualify."""
    wanted = [k for k in dict.fromkeys(keys) if k]
    if not wanted:
        raise InvalidInput("请选择以承诺替代的证明材料", field="keys", errors={"keys": "请选择以承诺替代的证明材料"})
    with case_action(engine, actor, number, "case.promise", at=at) as f:
        states.require_state(f.case, states.MATERIAL_STATES, "case.promise")
        assert f.case.id is not None and actor.id is not None
        if promise_of(f.session, f.case.id) is not None:
            raise IllegalTransition("本办件已签署告知承诺书")
        allowed = {m["key"] for m in promisable(f.ref.version)}
        lines = {m.key: m for m in materials_of(f.session, f.case.id)}
        bad = [k for k in wanted if k not in allowed or k not in lines]
        if bad:
            raise GuardFailed("所选材料不适用告知承诺制（以事项清单为准）", code="not_promisable")
        replaced = [{"key": k, "name": lines[k].name} for k in wanted]
        notice: Notice = issue(f.session, f.case, "promise", actor_id=actor.id, at=f.act.at,
                               items=replaced)
        for k in wanted:
            m = lines[k]
            m.status, m.reason, m.updated_at = "received", f"以告知承诺替代（{notice.number}）", f.act.at
            f.session.add(m)
        promise = CasePromise(case_id=f.case.id, number=notice.number, materials=replaced,
                              signed_at=f.act.at, taken_by=actor.id)
        f.session.add(promise)
        f.session.add(CaseEvent(case_id=f.case.id, actor_id=actor.id, at=f.act.at, action="case.promise",
                                note="申请人签署告知承诺书，替代：" + "、".join(r["name"] for r in replaced)))
    return promise


def check_promise(engine: Engine, actor: Staff, number: str, *, result: str, note: str = "",
                  at: datetime | None = None) -> CasePromise:
    """核查 by the center: 属实 or 不属实 (a note saying what was found is required)."""
    note = (note or "").strip()
    if result not in CHECK_RESULTS:
        raise InvalidInput("请选择核查结果", field="result", errors={"result": "请选择核查结果"})
    if result == "不属实" and not note:
        raise InvalidInput("核查不属实须写明核查情况", field="note", errors={"note": "核查不属实须写明核查情况"})
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"核查情况不超过 {MAX_NOTE} 字", field="note",
                           errors={"note": f"核查情况不超过 {MAX_NOTE} 字"})
    with case_action(engine, actor, number, "case.promise_check", at=at) as f:
        assert f.case.id is not None and actor.id is not None
        promise = promise_of(f.session, f.case.id)
        if promise is None:
            raise IllegalTransition("本办件没有告知承诺，无需核查")
        if promise.check_result is not None:
            raise IllegalTransition(f"告知承诺已核查（{promise.check_result}）")
        if f.case.state not in CHECK_STATES:
            label = states.STATE_LABELS.get(f.case.state, f.case.state)
            raise IllegalTransition(f"办件当前状态为「{label}」，不能核查告知承诺")
        promise.check_result, promise.check_note = result, note or None
        promise.checked_by, promise.checked_at = actor.id, f.act.at
        f.session.add(promise)
        f.session.add(CaseEvent(case_id=f.case.id, actor_id=actor.id, at=f.act.at,
                                action="case.promise_check", note=f"告知承诺核查：{result}" + (f"（{note}）" if note else "")))
    return promise


def revoke(engine: Engine, actor: Staff, number: str, *, reason: str,
           at: datetime | None = None) -> Case:
    """撤销: a decision (准予) built on a promise found 不属实 is revoked, with a reason
    (required, at most ``MAX_NOTE`` characters: InvalidInput 422, the form keeps it)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_NOTE:
        msg = "请填写撤销决定的理由" if not reason else f"撤销理由不超过 {MAX_NOTE} 字"
        raise InvalidInput(msg, field="reason", errors={"reason": msg})
    with case_action(engine, actor, number, "case.revoke", at=at) as f:
        assert f.case.id is not None and actor.id is not None
        promise = promise_of(f.session, f.case.id)
        if promise is None or promise.check_result != "不属实":
            raise GuardFailed("只有告知承诺核查不属实的办件才能撤销决定", code="promise_not_false")
        t = states.apply(f.guard_input(reason=reason), "case.revoke", actor_id=actor.id, note=reason)
        f.moved(t.source, t.target)
        promise.revoked_at, promise.revoked_by, promise.revoke_reason = f.act.at, actor.id, reason
        f.session.add(promise)
    return f.case
