"""The figures a province reports of its dossiers, and what each dossier adds to them.

The one-stop reports (provincial portals; see docs/dossiers.md) sort processed dossiers into
before the due date (trước hạn), on the due date (đúng hạn) and late (quá hạn, trễ hạn), and
report "đúng và trước hạn" together as on time. Here, with the appointment a province date:

    early    processed on a day before the due date
    on time  processed on or before the due date (early ones included)
    late     processed after the due date

Every counter is a sum over dossiers of what `contributions` says one dossier adds, each at
the province day of its own event: received (accepted) at the acceptance, processed at the
finish, closed unprocessed (refused, withdrawn, stopped) at the closing, a rating when given.
So a change of a dossier changes the figures by contributions(after) - contributions(before),
which is what the summary table stores (service_layer/base.py `_record_figures`), and a
recount from the dossiers gives the same table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum

from lgsp.workdays import local_date
from services.dossiers.domain.citizen import Rating
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.dossier import Channel, Dossier
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.status import Status

COUNTERS = (
    "received",
    "received_online",
    "processed",
    "processed_early",
    "processed_on_time",
    "processed_late",
    "processing_days",  # working days taken, summed over the processed
    "closed_unprocessed",
    "fee_paid",
    "paid_online",
    "rated",
    "rating_sum",
    "rating_top",
)
# Ratings at or above this grade count as the top grades: hài lòng and rất hài lòng (the
# scale is domain/citizen.Rating's; after changing either, `lgsp dossiers stats --rebuild`).
TOP_RATING = int(Rating.SATISFIED)
CLOSED_UNPROCESSED = frozenset({Status.REFUSED, Status.WITHDRAWN, Status.STOPPED})
# Accepted and not yet processed: the clock runs (or is stopped) against a due date.
OPEN = frozenset(
    {Status.ACCEPTED, Status.IN_PROGRESS, Status.SUPPLEMENT_REQUESTED, Status.FEE_REQUESTED}
)
MAX_PERIOD_DAYS = 3700  # ten years: a longer period is a typo


class Outcome(Enum):
    EARLY = "early"
    ON_DUE_DAY = "on_due_day"
    LATE = "late"


def outcome(finished: datetime, due: date) -> Outcome:
    day = local_date(finished)
    if day < due:
        return Outcome.EARLY
    return Outcome.ON_DUE_DAY if day == due else Outcome.LATE


# (province day, agency code, procedure code, counter) → amount
Key = tuple[date, str, str, str]


def contributions(d: Dossier | None, rule: DueDateRule) -> Counter[Key]:
    """What dossier `d` (in its current state) adds to the figures."""
    out: Counter[Key] = Counter()
    if d is None:
        return out

    def add(at: datetime, counter: str, amount: int = 1) -> None:
        out[(local_date(at), d.agency_code, d.procedure_code, counter)] += amount

    if d.accept_time is not None:
        add(d.accept_time, "received")
        if d.channel is Channel.ONLINE:
            add(d.accept_time, "received_online")
    if d.finish_time is not None and d.due_date is not None and d.accept_time is not None:
        add(d.finish_time, "processed")
        result = outcome(d.finish_time, d.due_date)
        if result is Outcome.LATE:
            add(d.finish_time, "processed_late")
        else:
            add(d.finish_time, "processed_on_time")
            if result is Outcome.EARLY:
                add(d.finish_time, "processed_early")
        days = rule.working_days_taken(d.accept_time, d.finish_time, d.paused_days)
        add(d.finish_time, "processing_days", days)
        if d.fee_paid or d.paid_online:
            add(d.finish_time, "fee_paid")
            if d.paid_online:
                add(d.finish_time, "paid_online")
    if d.status in CLOSED_UNPROCESSED and d.update_time is not None:
        add(d.update_time, "closed_unprocessed")
    if d.rating > 0:
        when = d.rating_time or d.return_time or d.update_time or d.submit_time
        add(when, "rated")
        add(when, "rating_sum", d.rating)
        if d.rating >= TOP_RATING:
            add(when, "rating_top")
    return out


def change(before: Counter[Key], after: Counter[Key]) -> dict[Key, int]:
    """after - before, keeping negative amounts (Counter's `-` drops them)."""
    keys = set(before) | set(after)
    return {k: after[k] - before[k] for k in keys if after[k] != before[k]}


def recount(dossiers: Iterable[Dossier], rule: DueDateRule) -> Counter[Key]:
    """The figures from scratch: the sum of every dossier's contributions."""
    total: Counter[Key] = Counter()
    for d in dossiers:
        total.update(contributions(d, rule))
    return total


@dataclass
class FigureRow:
    """One row of a figures report: the summed counters of a group, and the dossiers open
    at the period's end."""

    agency_code: str = ""
    procedure_code: str = ""
    month: date | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    in_progress_on_time: int = 0
    in_progress_late: int = 0

    def add(self, other: FigureRow) -> None:
        for c in COUNTERS:
            self.counts[c] += other.counts[c]
        self.in_progress_on_time += other.in_progress_on_time
        self.in_progress_late += other.in_progress_late

    def share(self, part: str, whole: str) -> float:
        return self.counts[part] / self.counts[whole] if self.counts[whole] else 0.0

    @property
    def average_processing_days(self) -> float:
        return self.share("processing_days", "processed")

    @property
    def average_rating(self) -> float:
        return self.share("rating_sum", "rated")


# --- periods ------------------------------------------------------------------------------


class Grain(Enum):
    """The summary keeps each counter twice: per day, and per month (its first day)."""

    DAY = "d"
    MONTH = "m"


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class Segment:
    grain: Grain
    first: date  # for MONTH, the first day of the first month
    last: date  # for MONTH, the first day of the last month


def segments(first: date, last: date) -> list[Segment]:
    """The period [first, last] as whole months (month rows: a year is 12 rows a cell) and
    the loose days before and after them (day rows)."""
    whole_from = first if first.day == 1 else next_month(first)
    last_whole = month_start(last) if next_month(last) - timedelta(days=1) == last else None
    if last_whole is None:
        last_whole = month_start(month_start(last) - timedelta(days=1))
    if whole_from > last_whole:
        return [Segment(Grain.DAY, first, last)]
    out = []
    if first < whole_from:
        out.append(Segment(Grain.DAY, first, whole_from - timedelta(days=1)))
    out.append(Segment(Grain.MONTH, whole_from, last_whole))
    after = next_month(last_whole)
    if after <= last:
        out.append(Segment(Grain.DAY, after, last))
    return out


def parse_period(from_text: str, to_text: str, today: date) -> tuple[date, date]:
    """ "YYYY-MM-DD" bounds, both inclusive; empty ones default to this month so far."""
    first = parse_date("from_date", from_text) if from_text.strip() else month_start(today)
    last = parse_date("to_date", to_text) if to_text.strip() else max(today, first)
    if first > last:
        raise InvalidField("from_date", f"{first} is after to_date {last}")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise InvalidField("to_date", f"a period of at most {MAX_PERIOD_DAYS} days")
    return first, last


def parse_date(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidField(field, f"{text!r} is not a date YYYY-MM-DD") from None
