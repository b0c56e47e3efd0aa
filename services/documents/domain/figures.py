"""The figures the province reports per agency (Quyết định 28/2018/QĐ-TTg on e-documents;
the provincial e-government report): share of documents exchanged electronically, share of
outgoing documents signed digitally, average handling time of incoming documents, overdue
counts. Computed from stored facts, one pass, no SQL here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class OutgoingFact:
    agency_code: str
    issued_on: date
    electronic: bool
    digitally_signed: bool


@dataclass(frozen=True)
class IncomingFact:
    agency_code: str
    arrived_at: datetime
    electronic: bool
    due_date: date | None
    completed_at: datetime | None
    open: bool  # not done, refused or recalled


@dataclass(frozen=True)
class Figures:
    agency_code: str
    outgoing_issued: int = 0
    outgoing_electronic: int = 0
    outgoing_digitally_signed: int = 0
    incoming_arrived: int = 0
    incoming_electronic: int = 0
    incoming_done_on_time: int = 0
    incoming_late: int = 0
    incoming_overdue: int = 0
    tasks_overdue: int = 0
    average_handling_seconds: float = 0.0

    @property
    def electronic_share(self) -> float:
        total = self.outgoing_issued + self.incoming_arrived
        return (self.outgoing_electronic + self.incoming_electronic) / total if total else 0.0

    @property
    def digitally_signed_share(self) -> float:
        return (
            self.outgoing_digitally_signed / self.outgoing_issued if self.outgoing_issued else 0.0
        )


def compute_figures(
    agency_code: str,
    outgoing: Iterable[OutgoingFact],
    incoming: Iterable[IncomingFact],
    tasks_overdue: int,
    today: date,
    local_date: Callable[[datetime], date],
) -> Figures:
    """Figures over the facts of one period. `local_date` turns a timestamp into the
    province's calendar date (deadlines are dates there)."""
    issued = electronic_out = signed = 0
    for o in outgoing:
        issued += 1
        electronic_out += o.electronic
        signed += o.digitally_signed
    arrived = electronic_in = on_time = late = overdue = 0
    handling: list[float] = []
    for i in incoming:
        arrived += 1
        electronic_in += i.electronic
        if i.completed_at is not None:
            handling.append((i.completed_at - i.arrived_at).total_seconds())
        if i.due_date is None:
            continue
        if i.completed_at is not None:
            if local_date(i.completed_at) <= i.due_date:
                on_time += 1
            else:
                late += 1
        elif i.open and i.due_date < today:
            late += 1
            overdue += 1
    return Figures(
        agency_code=agency_code,
        outgoing_issued=issued,
        outgoing_electronic=electronic_out,
        outgoing_digitally_signed=signed,
        incoming_arrived=arrived,
        incoming_electronic=electronic_in,
        incoming_done_on_time=on_time,
        incoming_late=late,
        incoming_overdue=overdue,
        tasks_overdue=tasks_overdue,
        average_handling_seconds=sum(handling) / len(handling) if handling else 0.0,
    )
