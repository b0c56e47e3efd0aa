"""The figures' summary table (tables.dossier_figures): changed by the contributions' change
of each written dossier, summed over a period, and the open dossiers counted at its end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.dossiers.adapters.tables import dossier_figures, dossiers
from services.dossiers.domain.figures import COUNTERS, OPEN, Grain, Key, Segment, month_start

F = dossier_figures.c
GROUP_COLUMNS = {"agency": F.agency_code, "procedure": F.procedure_code, "month": F.month}
_PK = ("grain", "day", "agency_code", "procedure_code")
Cell = tuple[str, date, str, str]  # grain, day (a month's first for MONTH), agency, procedure


def _cells(amounts: Mapping[Key, int]) -> dict[Cell, dict[str, int]]:
    cells: dict[Cell, dict[str, int]] = {}
    for (day, agency, procedure, counter), amount in amounts.items():
        if not amount:
            continue
        for grain, at in ((Grain.DAY, day), (Grain.MONTH, month_start(day))):
            row = cells.setdefault((grain.value, at, agency, procedure), {})
            row[counter] = row.get(counter, 0) + amount
    return cells


def add_figures(session: Session, amounts: Mapping[Key, int]) -> None:
    """Add `amounts` to the summary, inside the caller's transaction (one upsert a cell, in
    key order so two writers never wait on each other in a cycle)."""
    cells = _cells(amounts)
    if not cells:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for cell in sorted(cells):
        values = cells[cell]
        grain, day, agency, procedure = cell
        stmt = insert(dossier_figures).values(
            grain=grain,
            day=day,
            agency_code=agency,
            procedure_code=procedure,
            month=month_start(day),
            **values,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=list(_PK),
                set_={c: dossier_figures.c[c] + stmt.excluded[c] for c in values},
            )
        )


def replace_figures(session: Session, totals: Counter[Key]) -> int:
    """The summary emptied and filled with `totals` (a recount); the rows written."""
    session.execute(sa.delete(dossier_figures))
    rows = [
        {
            "grain": grain,
            "day": day,
            "agency_code": agency,
            "procedure_code": procedure,
            "month": month_start(day),
            **{c: values.get(c, 0) for c in COUNTERS},
        }
        for (grain, day, agency, procedure), values in sorted(_cells(totals).items())
    ]
    for i in range(0, len(rows), 5000):
        session.execute(sa.insert(dossier_figures), rows[i : i + 5000])
    return len(rows)


def summary_rows(session: Session) -> dict[Cell, dict[str, int]]:
    """The whole summary, zero counters left out (tests compare it with a recount)."""
    out: dict[Cell, dict[str, int]] = {}
    for r in session.execute(sa.select(dossier_figures)):
        counters = {c: int(getattr(r, c)) for c in COUNTERS if getattr(r, c)}
        if counters:
            out[(r.grain, r.day, r.agency_code, r.procedure_code)] = counters
    return out


def _scope(columns: Any, agency_codes: Sequence[str] | None, procedure_code: str) -> list[Any]:
    out: list[Any] = []
    if agency_codes is not None:
        out.append(columns.agency_code.in_(agency_codes))
    if procedure_code:
        out.append(columns.procedure_code == procedure_code)
    return out


def period_sums(
    session: Session,
    segments: Sequence[Segment],
    agency_codes: Sequence[str] | None,
    procedure_code: str,
    group: Sequence[str],
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Counters summed over the period, per group (tuple of `group`'s values)."""
    keys = [GROUP_COLUMNS[g] for g in group]
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for seg in segments:
        q = (
            sa.select(*keys, *(sa.func.sum(F[c]) for c in COUNTERS))
            .where(F.grain == seg.grain.value, F.day >= seg.first, F.day <= seg.last)
            .where(*_scope(F, agency_codes, procedure_code))
            .group_by(*keys)
        )
        for row in session.execute(q):
            key, sums = tuple(row[: len(keys)]), row[len(keys) :]
            acc = out.setdefault(key, dict.fromkeys(COUNTERS, 0))
            for c, v in zip(COUNTERS, sums, strict=True):
                acc[c] += int(v or 0)
    return out


def open_at_end(
    session: Session,
    agency_codes: Sequence[str] | None,
    procedure_code: str,
    accepted_before: datetime,
    late_before: date,
    group: Sequence[str],
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Dossiers open now and accepted before the period's end, per group (agency, procedure):
    (not yet due, late: due before `late_before`). Read from the open ones only, through
    ix_dossiers_open."""
    d = dossiers.c
    keys = [{"agency": d.agency_code, "procedure": d.procedure_code}[g] for g in group]
    late = sa.func.sum(sa.case((d.due_date < late_before, 1), else_=0))
    # Grouped by status first, the order of ix_dossiers_open: SQLite otherwise walks a whole
    # index of the table (the procedure's) for the GROUP BY.
    q = (
        sa.select(d.status, *keys, sa.func.count(), late)
        .where(d.status.in_([int(s) for s in OPEN]), d.accept_time < accepted_before)
        .where(*_scope(d, agency_codes, procedure_code))
        .group_by(d.status, *keys)
    )
    out: dict[tuple[Any, ...], tuple[int, int]] = {}
    for row in session.execute(q):
        key = tuple(row[1 : 1 + len(keys)])
        n, overdue = int(row[1 + len(keys)]), int(row[2 + len(keys)] or 0)
        on_time, late_so_far = out.get(key, (0, 0))
        out[key] = (on_time + n - overdue, late_so_far + overdue)
    return out
