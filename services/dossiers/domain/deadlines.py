"""The appointment for the result (ngày hẹn trả): a date counted in working days.

- Working days are the province's (lgsp.workdays.WorkingCalendar: weekends, the Labour Code's
  public holidays with Tết and Giỗ Tổ on the lunar calendar, the government's swaps, the days
  the province declares).
- Counting is the one-stop way: the processing time runs from the day of receipt, day 1 being
  the next working day, so 3 days from Thursday is Tuesday.
- A dossier received after the afternoon cut-off, or on a day off (online, by post), counts
  as received on the next working day (`cutoff`, a setting: see docs/dossiers.md for why).
- While the dossier waits on the applicant (more papers, status 5; a fee, status 6) the clock
  stops: when it resumes, the appointment moves by the working days paused, those in
  (pause day, resume day].
- A procedure of 0 days is answered the day of receipt.
- A dossier is on time when processed on or before its appointment (province dates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol

from lgsp.workdays import PROVINCE_TZ, local_date

DEFAULT_CUTOFF = time(15, 0)
# The appointment is due by the end of that working day.
END_OF_DAY = time(17, 0)


class Calendar(Protocol):
    """What the rules need of lgsp.workdays.WorkingCalendar."""

    def is_working_day(self, d: date) -> bool: ...

    def add_working_days(self, start: date, n: int) -> date: ...

    def working_days_between(self, a: date, b: date) -> int: ...


@dataclass(frozen=True)
class DueDateRule:
    calendar: Calendar
    cutoff: time = DEFAULT_CUTOFF

    def counting_day(self, received: datetime) -> date:
        """The day the processing time counts from: the day of receipt, or the next working
        day when received after the cut-off or on a day off."""
        local = received.astimezone(PROVINCE_TZ)
        day = local.date()
        if self.calendar.is_working_day(day) and local.time() < self.cutoff:
            return day
        return self.calendar.add_working_days(day, 1)

    def due_date(self, received: datetime, working_days: int) -> date:
        """The appointment of a dossier received at `received` for `working_days` days."""
        return self.calendar.add_working_days(self.counting_day(received), working_days)

    def paused_days(self, paused: datetime, resumed: datetime) -> int:
        """Working days the clock stood still: those after the pause day, up to and including
        the day it resumed."""
        return max(0, self.calendar.working_days_between(local_date(paused), local_date(resumed)))

    def extend(self, due: date, paused_days: int) -> date:
        """The appointment moved by `paused_days` working days."""
        return self.calendar.add_working_days(due, paused_days)

    def working_days_taken(self, start: datetime, end: datetime, paused_days: int) -> int:
        """Working days from the counting day to `end`, the paused ones left out."""
        taken = self.calendar.working_days_between(self.counting_day(start), local_date(end))
        return max(0, taken - paused_days)


def due_moment(due: date) -> datetime:
    """The appointment as an instant: the end of the working day, province time."""
    return datetime.combine(due, END_OF_DAY, tzinfo=PROVINCE_TZ)


def on_time(finished: datetime, due: date) -> bool:
    return local_date(finished) <= due


def parse_cutoff(text: str) -> time:
    """ "HH:MM" → time; ValueError with a readable message otherwise."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day HH:MM") from None
