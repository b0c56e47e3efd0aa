"""What the citizen holds and sees of a dossier: the apology and new appointment when it is
late, and the satisfaction rating once the result is returned.

- Apology (phiếu xin lỗi và hẹn lại ngày trả kết quả, Nghị định 61/2018/NĐ-CP art. 19, form
  of Thông tư 01/2018/TT-VPCP): only an open dossier (accepted, in progress, waiting on
  papers or a fee); the new appointment is a working day after the current one (the legal
  due date, or the previous apology's) and after today. The legal due date does not move:
  on time is still measured by it, so an apology never turns a late dossier into an
  on-time one.
- Rating: once, after the result was returned (status 10), on the portal's three levels.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum

from services.dossiers.domain.deadlines import Calendar
from services.dossiers.domain.dossier import MAX_TEXT, Dossier, HistoryEntry
from services.dossiers.domain.errors import AlreadyExists, DomainError, InvalidField
from services.dossiers.domain.status import Status

# The statuses in which a dossier is open and its appointment can still be missed.
OPEN = frozenset(
    {Status.ACCEPTED, Status.IN_PROGRESS, Status.SUPPLEMENT_REQUESTED, Status.FEE_REQUESTED}
)


class Rating(IntEnum):
    UNSPECIFIED = 0
    NOT_SATISFIED = 1  # Không hài lòng
    SATISFIED = 2  # Hài lòng
    VERY_SATISFIED = 3  # Rất hài lòng


RATING_LABELS = {
    Rating.NOT_SATISFIED: "Không hài lòng",
    Rating.SATISFIED: "Hài lòng",
    Rating.VERY_SATISFIED: "Rất hài lòng",
}


class NotApplicable(DomainError):
    """The step does not fit the dossier's status (→ FAILED_PRECONDITION)."""


def appointment(d: Dossier) -> date | None:
    """The appointment the citizen holds: the last apology's, else the legal due date."""
    return d.rescheduled_date or d.due_date


def issue_apology(
    d: Dossier,
    new_date: date,
    reason: str,
    *,
    calendar: Calendar,
    today: date,
    now: datetime,
    actor: str,
) -> None:
    if d.status not in OPEN:
        raise NotApplicable(
            f"an apology is for an open dossier; dossier {d.receipt_code} is {d.status}"
        )
    reason = reason.strip()
    if not reason:
        raise InvalidField("reason", "required: the letter says why the dossier is late")
    if len(reason) > MAX_TEXT:
        raise InvalidField("reason", f"at most {MAX_TEXT} characters")
    current = appointment(d)
    assert current is not None  # accepted: the due date is set
    if new_date <= current:
        raise InvalidField(
            "new_due_date", f"must be after the current appointment {current.isoformat()}"
        )
    if new_date <= today:
        raise InvalidField("new_due_date", "must be after today")
    if not calendar.is_working_day(new_date):
        raise InvalidField("new_due_date", f"{new_date.isoformat()} is not a working day")
    d.rescheduled_date = new_date
    d.apology_reason = reason
    d.apology_time = now
    d.new_history.append(
        HistoryEntry(
            now,
            actor,
            d.status,
            d.status,
            f"xin lỗi, hẹn lại ngày {new_date:%d/%m/%Y}: {reason}",
        )
    )
    d.update_time = now
    d.version += 1


def rate(d: Dossier, rating: int, *, now: datetime) -> None:
    if rating not in (r.value for r in RATING_LABELS):
        raise InvalidField("rating", "1 không hài lòng, 2 hài lòng or 3 rất hài lòng")
    if d.status is not Status.RESULT_RETURNED:
        raise NotApplicable("a dossier is rated once its result is returned")
    if d.rating:
        raise AlreadyExists("this dossier was already rated")
    d.rating = rating
    d.rating_time = now
    d.new_history.append(
        HistoryEntry(now, "", d.status, d.status, f"đánh giá: {RATING_LABELS[Rating(rating)]}")
    )
    d.update_time = now
    d.version += 1
