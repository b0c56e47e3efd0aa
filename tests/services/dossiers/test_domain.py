"""The dossiers domain with real dates: the working-day calendar (Tết 2027, 30/4–1/5, a day
the province declares off), the cut-off, the stopped clock, the legal jumps, the receipt code
and the identification number."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from lgsp.workdays import PROVINCE_TZ, WorkingCalendar
from services.dossiers.catalogue import load_catalogue
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.errors import Exhausted, IllegalTransition, InvalidField
from services.dossiers.domain.identity_number import check_identity_number
from services.dossiers.domain.procedure import check_procedure
from services.dossiers.domain.receipt import parse_receipt_code, receipt_code
from services.dossiers.domain.status import TRANSITIONS, Status, check_transition

CAL = WorkingCalendar()
RULE = DueDateRule(CAL)


def at(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PROVINCE_TZ)


def test_tet_2027_is_skipped() -> None:
    # Tết 2027: Thursday 4/2 to Wednesday 10/2 off. Received Wednesday 3/2 in the morning,
    # 3 working days: Thu 11, Fri 12, Mon 15.
    assert RULE.due_date(at(2027, 2, 3), 3) == date(2027, 2, 15)


def test_after_the_cutoff_counts_from_the_next_working_day() -> None:
    # 15:30 on Wednesday 3/2/2027: counts from Thursday 11/2 (after Tết): due Tue 16/2.
    assert RULE.counting_day(at(2027, 2, 3, 15, 30)) == date(2027, 2, 11)
    assert RULE.due_date(at(2027, 2, 3, 15, 30), 3) == date(2027, 2, 16)
    assert RULE.due_date(at(2027, 2, 3, 14, 59), 3) == date(2027, 2, 15)
    later = DueDateRule(CAL, cutoff=time(16, 30))
    assert later.due_date(at(2027, 2, 3, 15, 30), 3) == date(2027, 2, 15)


def test_30_april_and_1_may_are_skipped() -> None:
    # 2026: Thursday 30/4 and Friday 1/5 off; received Wednesday 29/4, 2 days → Tue 5/5.
    assert RULE.due_date(at(2026, 4, 29), 2) == date(2026, 5, 5)


def test_a_weekend_receipt_counts_from_monday() -> None:
    assert RULE.counting_day(at(2026, 5, 9, 10)) == date(2026, 5, 11)


def test_a_declared_day_off_is_skipped() -> None:
    rule = DueDateRule(WorkingCalendar(extra_days_off=[date(2026, 5, 8)]))
    assert RULE.due_date(at(2026, 5, 6), 2) == date(2026, 5, 8)
    assert rule.due_date(at(2026, 5, 6), 2) == date(2026, 5, 11)


def test_a_same_day_procedure() -> None:
    assert RULE.due_date(at(2026, 5, 6), 0) == date(2026, 5, 6)
    assert RULE.due_date(at(2026, 5, 6, 16), 0) == date(2026, 5, 7)


def test_the_clock_stops_while_papers_are_requested() -> None:
    # Accepted Mon 4/5/2026 for 5 days: due Mon 11/5. Papers asked Wed 6/5, brought Tue 12/5:
    # 4 working days stood still (7, 8, 11, 12): due Fri 15/5.
    due = RULE.due_date(at(2026, 5, 4), 5)
    assert due == date(2026, 5, 11)
    paused = RULE.paused_days(at(2026, 5, 6, 10), at(2026, 5, 12, 10))
    assert paused == 4
    assert RULE.extend(due, paused) == date(2026, 5, 15)


def test_only_the_legal_jumps() -> None:
    check_transition(Status.SUBMITTED, Status.ACCEPTED)
    check_transition(Status.SUPPLEMENT_REQUESTED, Status.IN_PROGRESS)
    with pytest.raises(IllegalTransition) as e:
        check_transition(Status.SUBMITTED, Status.PROCESSED)
    assert "1 SUBMITTED" in e.value.message and "9 PROCESSED" in e.value.message
    for final in (Status.REFUSED, Status.WITHDRAWN, Status.STOPPED, Status.RESULT_RETURNED):
        assert not TRANSITIONS[final]
        with pytest.raises(IllegalTransition):
            check_transition(final, Status.IN_PROGRESS)
    with pytest.raises(IllegalTransition):
        check_transition(Status.PROCESSED, Status.WITHDRAWN)  # the result exists: no way back


def test_receipt_code() -> None:
    code = receipt_code("000.00.61.H27", date(2026, 2, 12), 7)
    assert code == "000.00.61.H27-260212-0007"
    assert parse_receipt_code(code) == ("000.00.61.H27", date(2026, 2, 12), 7)
    with pytest.raises(Exhausted):
        receipt_code("000.00.61.H27", date(2026, 2, 12), 10000)
    for bad in ("000.00.61.H27-261312-0001", "000.00.61.H27-260212-01", "x"):
        with pytest.raises(InvalidField):
            parse_receipt_code(bad)


@pytest.mark.parametrize(
    ("number", "born", "ok"),
    [
        ("042095001234", date(1995, 3, 1), True),  # Hà Tĩnh, male, 1995
        ("042305001234", date(2005, 3, 1), True),  # female, 2005
        ("042095001234", date(1996, 3, 1), False),  # year does not match
        ("003095001234", None, False),  # 003 is no province code
        ("04209500123", None, False),  # 11 digits
        ("04209500123a", None, False),
        ("０４２０９５００１２３４", None, False),  # full-width digits
    ],
)
def test_identity_number(number: str, born: date | None, ok: bool) -> None:
    if ok:
        assert check_identity_number(number, born, field="n") == number
    else:
        with pytest.raises(InvalidField):
            check_identity_number(number, born, field="n")


def test_the_seed_catalogue_passes_the_rules() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 30
    assert len({p.code for p in catalogue}) == len(catalogue)
    for p in catalogue:
        check_procedure(p)
