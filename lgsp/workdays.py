"""The province's working-day calendar and its time zone.

Deadlines (a dossier's due date, a document's handling time) are dates in Vietnam time (UTC+7,
no daylight saving), counted in working days: Monday to Friday, minus the public holidays of
the Labour Code 2019, art. 112 (Tết Dương lịch 1/1; Tết Nguyên đán; Giỗ Tổ Hùng Vương 10/3 âm
lịch; 30/4; 1/5; Quốc khánh 2/9 and one adjacent day; from 2026 Ngày Văn hóa Việt Nam 24/11),
with the substitute days off and make-up Saturdays the government announces each year. Those
come from the `holidays` package (`holidays.Vietnam`: lunar dates by its Vietnamese calendar,
announced swaps as `weekend_workdays`); the province adds its own through `[calendar]`.

    cal = WorkingCalendar.from_settings(settings.calendar)
    cal.add_working_days(date(2026, 2, 13), 3)   # Fri before Tết + 3 → Wed 25 Feb 2026

Counting is the one-stop way: day 1 is the next working day after the start, so
`working_days_between(a, add_working_days(a, n)) == n`. Both are O(log n) lookups in a
prefix-count table built per range of years on first use: a due date costs ~1-2 µs; the first
use in a process ~0.5 s, while `holidays` loads its lunar tables.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from lgsp.config import CalendarSettings, parse_dates

__all__ = ["PROVINCE_TZ", "WorkingCalendar", "local_date"]

PROVINCE_TZ = timezone(timedelta(hours=7), "ICT")
WEEKEND = frozenset({5, 6})  # Saturday, Sunday: state agencies work Monday to Friday
_MARGIN_YEARS = 1  # built beyond the asked year, so a deadline near December needs no rebuild


def local_date(moment: datetime) -> date:
    """The province's calendar date of an instant."""
    return moment.astimezone(PROVINCE_TZ).date()


@dataclass(frozen=True, slots=True)
class _Table:
    first: int  # ordinal of the first day covered
    years: tuple[int, int]
    prefix: list[int]  # prefix[i]: working days in [first, first + i]


class WorkingCalendar:
    """Working days of the province: national holidays plus `extra_days_off` (days the province
    declares off), minus `extra_working_days` (Saturdays worked in exchange)."""

    def __init__(
        self, *, extra_days_off: Iterable[date] = (), extra_working_days: Iterable[date] = ()
    ) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.extra_working_days = frozenset(extra_working_days)
        both = sorted(self.extra_days_off & self.extra_working_days)
        if both:
            raise ValueError(f"{both[0].isoformat()} is both a day off and a working day")
        self._table: _Table | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: CalendarSettings) -> WorkingCalendar:
        return cls(
            extra_days_off=parse_dates(settings.days_off),
            extra_working_days=parse_dates(settings.working_days),
        )

    def is_working_day(self, d: date) -> bool:
        table, i = self._index(d)
        return table.prefix[i] != (table.prefix[i - 1] if i else 0)

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (`start` itself for n = 0); n ≥ 0."""
        if n < 0:
            raise ValueError("n must not be negative")
        if n == 0:
            return start
        year = start.year
        while True:
            table, i = self._index(start, until=year)
            target = table.prefix[i] + n
            j = bisect.bisect_left(table.prefix, target, lo=i + 1)
            if j < len(table.prefix):
                return date.fromordinal(table.first + j)
            year = table.years[1] + 1 + n // 200  # beyond the table: build further

    def working_days_between(self, a: date, b: date) -> int:
        """Working days d with a < d ≤ b (negative when b is before a)."""
        if b < a:
            return -self.working_days_between(b, a)
        table, i = self._index(a, until=b.year)
        _, j = self._index(b)
        return table.prefix[j] - table.prefix[i]

    def _index(self, d: date, *, until: int | None = None) -> tuple[_Table, int]:
        table = self._table
        hi = max(d.year, until or d.year)
        if table is None or not table.years[0] <= d.year or hi > table.years[1]:
            table = self._build(d.year, hi)
        return table, d.toordinal() - table.first

    def _build(self, lo: int, hi: int) -> _Table:
        with self._lock:
            old = self._table
            if old is not None:
                lo, hi = min(lo, old.years[0]), max(hi, old.years[1])
            if old is None or (lo, hi) != old.years:
                self._table = _make_table(
                    lo, hi + _MARGIN_YEARS, self.extra_days_off, self.extra_working_days
                )
            assert self._table is not None
            return self._table


def _make_table(
    lo: int, hi: int, days_off: frozenset[date], working_days: frozenset[date]
) -> _Table:
    off, on = set(days_off), set(working_days)
    for year in range(lo, hi + 1):
        national_off, national_on = _national_year(year)
        off |= national_off
        on |= national_on
    first, last = date(lo, 1, 1).toordinal(), date(hi, 12, 31).toordinal()
    flags = []
    for ordinal in range(first, last + 1):
        d = date.fromordinal(ordinal)
        flags.append(d in on or (d.weekday() not in WEEKEND and d not in off))
    return _Table(first, (lo, hi), list(itertools.accumulate(flags, initial=0))[1:])


@functools.cache
def _national_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """Vietnam's days off and make-up working days of one year (< 1 ms once loaded)."""
    import holidays  # ~0.2 s to import: only when a calendar is first used

    national = holidays.Vietnam(years=year)
    on = {d for d in getattr(national, "weekend_workdays", ()) if d.year == year}
    return frozenset(national), frozenset(on)
