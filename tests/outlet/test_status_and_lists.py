from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

import pytest
from sqlmodel import Session

from outlet import cases, status
from outlet.errors import WrongCheckCode
from tests.outlet.conftest import AT, PERSON_ID, World


def test_status_lookup_shows_state_and_dates_only(world: World) -> None:
    number = world.drive("accepted")
    case = world.case(number)
    view = status.lookup(world.engine, number, case.check_code)
    assert view.state_label == "已受理" and view.accepted_on == date(2026, 9, 28)
    assert view.due_on == date(2026, 10, 10)
    text = str(asdict(view))
    assert "张三" not in text and PERSON_ID not in text and "13800138000" not in text


def test_status_lookup_wrong_code_and_unknown_number_look_the_same(world: World) -> None:
    number = world.new_case().number
    with pytest.raises(WrongCheckCode) as a:
        status.lookup(world.engine, number, "000000" if world.case(number).check_code != "000000" else "111111")
    with pytest.raises(WrongCheckCode) as b:
        status.lookup(world.engine, number + "9", "123456")
    assert a.value.message == b.value.message


def test_lists_today_and_deadlines_are_scoped_to_the_outlet(world: World) -> None:
    mine = world.drive("accepted")  # due 10 Oct 2026
    theirs = world.drive("accepted", actor=world.teller_b)
    with Session(world.engine) as s:
        today = cases.today_cases(s, world.teller_a, date(2026, 9, 28))
        assert [r.case.number for r in today] == [mine]
        assert today[0].applicant_name == "张三"
        overdue, soon = cases.deadline_cases(s, world.teller_a, date(2026, 10, 8))
        assert overdue == [] and [r.case.number for r in soon] == [mine]
        overdue, soon = cases.deadline_cases(s, world.teller_a, date(2026, 10, 12))
        assert [r.case.number for r in overdue] == [mine] and soon == []
        assert [r.case.number for r in cases.recent_cases(s, world.teller_b)] == [theirs]


def test_review_queue_by_domain(world: World) -> None:
    forwarded = world.drive("forwarded")
    world.drive("accepted")
    with Session(world.engine) as s:
        assert [r.case.number for r in cases.review_queue(s, world.reviewer)] == [forwarded]
        assert cases.review_queue(s, world.reviewer_other) == []
        assert cases.review_queue(s, world.teller_a) == []  # outlet users: their own cases only


def test_completed_cases_leave_the_deadline_lists(world: World) -> None:
    number = world.drive("delivered")
    with Session(world.engine) as s:
        overdue, soon = cases.deadline_cases(s, world.teller_a, date(2026, 12, 1))
    assert number not in [r.case.number for r in overdue + soon]


def test_ab_backup_sees_the_covered_outlet(world: World) -> None:
    from partners.models import BackupAssignment

    number = world.new_case().number
    with Session(world.engine) as s, s.begin():
        s.add(BackupAssignment(holder_id=world.teller_a.id, backup_id=world.teller_b.id,
                               valid_from=date(2020, 1, 1)))
    with Session(world.engine) as s:
        ref = cases.load_case(s, world.teller_b, number)
    assert ref.case.number == number


def test_home_lists_count_all_of_todays_cases_beyond_the_page(world: World) -> None:
    """The home shows the newest HOME_TODAY of today's cases and how many there are in all
    (共 N 件), counted over this outlet's cases only."""
    mine = [world.new_case(at=AT + timedelta(minutes=i)).number for i in range(cases.HOME_TODAY + 3)]
    world.new_case(actor=world.teller_b)  # another outlet's: neither listed nor counted
    with Session(world.engine) as s:
        lists = cases.home_lists(s, world.teller_a, date(2026, 9, 28), per_page=5)
    assert lists["today_total"] == cases.HOME_TODAY + 3
    assert [r.case.number for r in lists["today_rows"]] == mine[::-1][:cases.HOME_TODAY]
    assert [r.case.number for r in lists["recent"]] == mine[::-1][:5]
