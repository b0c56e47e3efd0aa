"""The working-day calendar against the days Vietnam actually had off (and will have)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from lgsp.config import ConfigError, load_settings
from lgsp.workdays import WorkingCalendar, local_date

CAL = WorkingCalendar()


def off(*days: str) -> None:
    for d in days:
        assert not CAL.is_working_day(date.fromisoformat(d)), d


def working(*days: str) -> None:
    for d in days:
        assert CAL.is_working_day(date.fromisoformat(d)), d


def test_tet_2026_and_2027() -> None:
    working("2026-02-13", "2026-02-23")  # the Friday before and the Monday after
    off("2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20")
    # Tết Đinh Mùi: mùng 1 is Saturday 6 Feb 2027; the five days move off the weekend.
    off("2027-02-04", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10")
    working("2027-02-03", "2027-02-11")


def test_reunification_and_labour_day() -> None:
    off("2025-04-30", "2025-05-01", "2025-05-02", "2026-04-30", "2026-05-01")
    working("2025-04-26")  # Saturday worked in exchange for Friday 2 May 2025
    off("2027-04-30", "2027-05-03")  # 1 May 2027 is a Saturday: Monday off instead
    working("2027-05-04")


def test_national_day_and_its_adjacent_day() -> None:
    off("2025-09-01", "2025-09-02")
    off("2026-08-31", "2026-09-01", "2026-09-02")  # 31 Aug swapped with Saturday 22 Aug
    working("2026-08-22", "2026-09-03")


def test_hung_kings_day_is_lunar() -> None:
    off("2025-04-07")  # 10/3 Ất Tỵ
    off("2026-04-27")  # 10/3 Bính Ngọ is Sunday 26 April 2026: Monday off
    assert not CAL.is_working_day(date(2026, 4, 26))
    off("2027-04-16")


def test_weekends_and_new_year() -> None:
    off("2026-01-01", "2026-01-03", "2026-01-04")
    working("2026-01-02", "2026-01-05")


def test_declared_day_off_and_make_up_saturday() -> None:
    cal = WorkingCalendar(
        extra_days_off=[date(2026, 2, 13)], extra_working_days=[date(2026, 2, 28)]
    )
    assert not cal.is_working_day(date(2026, 2, 13))
    assert cal.is_working_day(date(2026, 2, 28))
    assert CAL.is_working_day(date(2026, 2, 13)) and not CAL.is_working_day(date(2026, 2, 28))
    with pytest.raises(ValueError, match="2026-02-28"):
        WorkingCalendar(extra_days_off=[date(2026, 2, 28)], extra_working_days=[date(2026, 2, 28)])


def test_due_date_over_tet_is_counted_one_stop_way() -> None:
    # Received Thursday 12 Feb 2026, 3 working days: Fri 13, Mon 23, Tue 24.
    assert CAL.add_working_days(date(2026, 2, 12), 3) == date(2026, 2, 24)
    assert CAL.working_days_between(date(2026, 2, 12), date(2026, 2, 24)) == 3
    assert CAL.working_days_between(date(2026, 2, 24), date(2026, 2, 12)) == -3
    assert CAL.add_working_days(date(2026, 2, 12), 0) == date(2026, 2, 12)
    # Received on a Saturday: day 1 is Monday.
    assert CAL.add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)
    declared = WorkingCalendar(extra_days_off=[date(2026, 2, 13)])
    assert declared.add_working_days(date(2026, 2, 12), 3) == date(2026, 2, 25)
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 2, 12), -1)


def test_long_deadlines_cross_years() -> None:
    cal = WorkingCalendar()
    end = cal.add_working_days(date(2026, 6, 1), 1000)
    assert end.year >= 2030
    assert cal.working_days_between(date(2026, 6, 1), end) == 1000
    assert cal.is_working_day(end)
    assert cal.working_days_between(date(2019, 12, 31), date(2020, 1, 2)) == 1


def test_due_dates_are_cheap() -> None:
    cal = WorkingCalendar()
    starts = [date(2025, 1, 1) + timedelta(days=i % 700) for i in range(50_000)]
    cal.add_working_days(starts[0], 1)  # builds the table
    t0 = time.perf_counter()
    for i, d in enumerate(starts):
        cal.add_working_days(d, 1 + i % 30)
    per_call = (time.perf_counter() - t0) / len(starts)
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} µs per due date"


def test_local_date_is_vietnam_time() -> None:
    assert local_date(datetime(2026, 2, 16, 17, 30, tzinfo=UTC)) == date(2026, 2, 17)


def test_settings_name_the_bad_date() -> None:
    settings = load_settings(
        env={
            "LGSP_CALENDAR_DAYS_OFF": "2026-02-13, 2026-02-23",
            "LGSP_CALENDAR_WORKING_DAYS": "2026-02-28",
        }
    )
    cal = WorkingCalendar.from_settings(settings.calendar)
    assert cal.extra_days_off == {date(2026, 2, 13), date(2026, 2, 23)}
    assert cal.add_working_days(date(2026, 2, 12), 2) == date(2026, 2, 25)  # Tue 24, Wed 25
    with pytest.raises(ConfigError) as bad:
        load_settings(env={"LGSP_CALENDAR_DAYS_OFF": "2026-02-13,2026-02-30"})
    assert "LGSP_CALENDAR_DAYS_OFF" in str(bad.value) and "'2026-02-30'" in str(bad.value)
    with pytest.raises(ConfigError) as both:
        load_settings(
            env={
                "LGSP_CALENDAR_DAYS_OFF": "2026-02-28",
                "LGSP_CALENDAR_WORKING_DAYS": "2026-02-28",
            }
        )
    assert "LGSP_CALENDAR_WORKING_DAYS" in str(both.value) and "2026-02-28" in str(both.value)
