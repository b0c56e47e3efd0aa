"""The figures of a period: on time, early and late, the time taken, the shares filed and
paid online, satisfaction; per agency, procedure or month. Read from the summary table kept
with every change (domain/figures.py), plus the dossiers open at the period's end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from lgsp.auth import Principal, require_role
from lgsp.workdays import PROVINCE_TZ, local_date
from services.dossiers.adapters.dossier_search import dossier_from_row
from services.dossiers.adapters.figures import (
    open_at_end,
    period_sums,
    replace_figures,
    summary_rows,
)
from services.dossiers.adapters.repository import ProcedureRepository
from services.dossiers.adapters.tables import dossiers
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.figures import (
    COUNTERS,
    FigureRow,
    month_start,
    parse_period,
    recount,
    segments,
)
from services.dossiers.service_layer.base import OFFICIALS, PROVINCE_WIDE, AppBase

# FiguresGrouping (the contract's numbers) → the columns of a row's key.
GROUPINGS: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("agency",),
    2: ("procedure",),
    3: ("agency", "procedure"),
    4: ("month",),
    5: ("agency", "month"),
    6: ("procedure", "month"),
}
GROUPING_NAMES = {"agency": 1, "procedure": 2, "agency,procedure": 3, "month": 4}


@dataclass(frozen=True)
class Figures:
    first: date
    last: date
    total: FigureRow
    rows: list[FigureRow]


class FiguresUseCases(AppBase):
    def figures(
        self,
        *,
        principal: Principal,
        agency_code: str = "",
        include_sub_agencies: bool = False,
        procedure_code: str = "",
        from_date: str = "",
        to_date: str = "",
        grouping: int = 0,
    ) -> Figures:
        require_role((*OFFICIALS, *PROVINCE_WIDE), principal=principal)
        if grouping not in GROUPINGS:
            raise InvalidField("grouping", f"{grouping} is not a FiguresGrouping")
        group = GROUPINGS[grouping]
        codes = self._figures_scope(principal, agency_code.strip(), include_sub_agencies)
        procedure = procedure_code.strip()
        now = self.clock()
        first, last = parse_period(from_date, to_date, local_date(now))
        with self.uow() as uow:
            if procedure and ProcedureRepository(uow.session).get(procedure) is None:
                raise InvalidField("procedure_code", f"{procedure} is not in the catalogue")
            sums = period_sums(uow.session, segments(first, last), codes, procedure, group)
            end = datetime.combine(last + timedelta(days=1), time(), PROVINCE_TZ)
            still_open = open_at_end(
                uow.session,
                codes,
                procedure,
                accepted_before=end,
                late_before=min(last, local_date(now)),
                group=[g for g in group if g != "month"],
            )
        rows: dict[tuple[Any, ...], FigureRow] = {}
        for key, counts in sums.items():
            rows[key] = _row(group, key, counts)
        for key, (on_time, late) in still_open.items():
            # Open at the period's end: in its last month's row when grouped by month.
            full = _with_month(group, key, month_start(last))
            row = rows.setdefault(full, _row(group, full, dict.fromkeys(COUNTERS, 0)))
            row.in_progress_on_time += on_time
            row.in_progress_late += late
        total = FigureRow()
        for row in rows.values():
            total.add(row)
        ordered = [rows[k] for k in sorted(rows, key=lambda k: tuple(str(v) for v in k))]
        return Figures(first, last, total, ordered if group else [])

    def _figures_scope(
        self, principal: Principal, agency: str, include_sub_agencies: bool
    ) -> Sequence[str] | None:
        """The agencies counted (None: the whole province), or PermissionDenied."""
        province_wide = principal.has_any_role(PROVINCE_WIDE)
        if not agency:
            if province_wide:
                return None
            return sorted(self._official_agencies(principal, OFFICIALS))
        if self.agencies.get(agency) is None:
            raise InvalidField("agency_code", f"{agency} is not an agency of the province")
        if not province_wide:
            require_role(OFFICIALS, agency, tree=self.agencies, principal=principal)
        return [agency, *self.agencies.descendants(agency)] if include_sub_agencies else [agency]

    def rebuild_figures(self) -> int:
        """The summary recounted from the dossiers (after a change of the rules, or for
        dossiers stored before revision 0007); the rows written."""
        with self.uow() as uow:
            rows = (dossier_from_row(r) for r in uow.session.execute(dossiers.select()))
            written = replace_figures(uow.session, recount(rows, self.rule))
            uow.commit()
        return written

    def summary(self) -> dict[Any, dict[str, int]]:
        with self.uow() as uow:
            return summary_rows(uow.session)


def _with_month(group: Sequence[str], key: tuple[Any, ...], month: date) -> tuple[Any, ...]:
    values = iter(key)
    return tuple(month if g == "month" else next(values) for g in group)


def _row(group: Sequence[str], key: tuple[Any, ...], counts: dict[str, int]) -> FigureRow:
    named = dict(zip(group, key, strict=True))
    return FigureRow(
        agency_code=named.get("agency", ""),
        procedure_code=named.get("procedure", ""),
        month=named.get("month"),
        counts=dict(counts),
    )
