"""The officials' list of dossiers: filters, the search by receipt code, applicant name or
number, newest first, a page after a (submit_time, id) position, and the total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.dossiers.adapters.repository import dossier_from_row
from services.dossiers.adapters.tables import dossiers
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.figures import OPEN


@dataclass(frozen=True)
class DossierFilter:
    """Rows a caller may list and asked for. `agency_codes` None = every agency."""

    agency_codes: tuple[str, ...] | None
    procedure_code: str = ""
    statuses: tuple[int, ...] = ()
    handler_user_id: str = ""
    submitted_from: datetime | None = None  # inclusive
    submitted_before: datetime | None = None  # exclusive
    overdue_on: date | None = None  # open and due before this day
    receipt_prefix: str = ""  # upper case
    name: str = ""  # folded words: a word of the names starts with it
    number: str = ""  # the PIN or the enterprise/tax code, whole


def _where(f: DossierFilter) -> list[Any]:
    c = dossiers.c
    out: list[Any] = []
    if f.agency_codes is not None:
        out.append(c.agency_code.in_(f.agency_codes))
    if f.procedure_code:
        out.append(c.procedure_code == f.procedure_code)
    if f.statuses:
        out.append(c.status.in_(f.statuses))
    if f.handler_user_id:
        out.append(c.handler_user_id == f.handler_user_id)
    if f.submitted_from is not None:
        out.append(c.submit_time >= f.submitted_from)
    if f.submitted_before is not None:
        out.append(c.submit_time < f.submitted_before)
    if f.overdue_on is not None:
        out.append(c.status.in_([int(s) for s in OPEN]))
        out.append(c.due_date < f.overdue_on)
    if f.receipt_prefix:
        out.append(c.receipt_code.startswith(f.receipt_prefix, autoescape=True))
    if f.name:
        out.append(c.applicant_key.contains(f" {f.name}", autoescape=True))
    if f.number:
        out.append(sa.or_(c.applicant_number == f.number, c.applicant_org_code == f.number))
    return out


def list_dossiers(
    session: Session, f: DossierFilter, after: tuple[datetime, str] | None, limit: int
) -> tuple[list[Dossier], int]:
    """Up to `limit` dossiers after position `after`, newest first, and how many match."""
    where = _where(f)
    total = int(
        session.execute(sa.select(sa.func.count()).select_from(dossiers).where(*where)).scalar_one()
    )
    q = sa.select(dossiers).where(*where)
    if after is not None:
        t, i = after
        c = dossiers.c
        q = q.where(sa.or_(c.submit_time < t, sa.and_(c.submit_time == t, c.id < i)))
    q = q.order_by(dossiers.c.submit_time.desc(), dossiers.c.id.desc()).limit(limit)
    return [dossier_from_row(r) for r in session.execute(q)], total
