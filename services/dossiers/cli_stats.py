"""`lgsp dossiers stats`: the figures of a period from this service's own database.

    lgsp dossiers stats [--from YYYY-MM-DD] [--to YYYY-MM-DD]   (default: this month so far)
                        [--agency CODE] [--procedure CODE]      (default: the whole province)
                        [--by agency|procedure|month] [--json] [--rebuild]

The operator at the service's database reads the whole province. `--agency` counts that
agency alone (the agencies below it need identity's tree, which only the running service
follows; GetDossierFigures with include_sub_agencies counts them). `--rebuild` recounts the
figures' summary from the dossiers first (after a change of the rating scale, or for
dossiers stored before revision 0007).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from lgsp.cli import config_option

if TYPE_CHECKING:
    from lgsp.agencies import Agency
    from services.dossiers.domain.figures import FigureRow
    from services.dossiers.service_layer.dossiers import DossiersApp
    from services.dossiers.service_layer.figures import Figures

AppOf = Callable[[argparse.Namespace], AbstractContextManager[tuple[Any, "DossiersApp"]]]
BY = {"agency": 1, "procedure": 2, "month": 4}
OPTIONS = {
    "from_date": "--from", "to_date": "--to", "agency_code": "--agency",
    "procedure_code": "--procedure",
}  # fmt: skip


def register_stats(sub: Any, app_of: AppOf) -> None:
    """`stats` under `lgsp dossiers`; `app_of(args)` opens the service's use cases."""
    stats = sub.add_parser(
        "stats",
        parents=[config_option()],
        help="figures of a period: on time, early, late, online, satisfaction",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument("--from", dest="from_date", default="", metavar="YYYY-MM-DD")
    stats.add_argument("--to", dest="to_date", default="", metavar="YYYY-MM-DD")
    stats.add_argument("--agency", default="", metavar="CODE", help="one agency's identifier code")
    stats.add_argument("--procedure", default="", metavar="CODE", help="one procedure's code")
    stats.add_argument("--by", choices=sorted(BY), help="one row per agency, procedure or month")
    stats.add_argument("--json", action="store_true", help="print JSON (the contract's fields)")
    stats.add_argument("--rebuild", action="store_true", help="recount the summary first")
    stats.set_defaults(handler=lambda args: _stats(args, app_of))


def _stats(args: argparse.Namespace, app_of: AppOf) -> int:
    from lgsp.auth import Principal
    from services.dossiers.adapters.proto import figures_to_proto
    from services.dossiers.domain.errors import InvalidField
    from services.dossiers.service_layer.base import ADMIN
    from services.dossiers.service_layer.dossiers import DossiersApp

    # The operator at the service's own database reads the whole province.
    operator = Principal(subject="lgsp-cli", kind="user", roles=frozenset({ADMIN}))
    with app_of(args) as (_, cli_app):
        app = DossiersApp(cli_app.engine, _AnyAgency(), cli_app.rule)
        if args.rebuild:
            app.rebuild_figures()
        try:
            f = app.figures(
                principal=operator,
                agency_code=args.agency,
                procedure_code=args.procedure,
                from_date=args.from_date,
                to_date=args.to_date,
                grouping=BY[args.by] if args.by else 0,
            )
        except InvalidField as e:  # one line naming the option, not the contract's field
            raise ValueError(f"{OPTIONS.get(e.field, e.field)}: {e.reason}") from None
    if args.json:

        def as_dict(row: FigureRow) -> dict[str, object]:
            m = figures_to_proto(row)  # the contract's names, numbers as numbers
            return {fd.name: getattr(m, fd.name) for fd in m.DESCRIPTOR.fields}

        out = {
            "from_date": f.first.isoformat(),
            "to_date": f.last.isoformat(),
            "total": as_dict(f.total),
            "rows": [as_dict(r) for r in f.rows],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print(table(f, args.by or ""))
    return 0


COLUMNS = (
    "received", "online", "processed", "early", "on time", "late", "on time %",
    "avg days", "open", "open late", "paid online", "rated", "avg rating",
)  # fmt: skip


def _cells(r: FigureRow) -> list[str]:
    c = r.counts

    def pct(part: str, whole: str) -> str:
        return f"{100 * r.share(part, whole):.1f}%" if c[whole] else "-"

    return [
        str(c["received"]),
        pct("received_online", "received"),
        str(c["processed"]),
        str(c["processed_early"]),
        str(c["processed_on_time"]),
        str(c["processed_late"]),
        pct("processed_on_time", "processed"),
        f"{r.average_processing_days:.1f}" if c["processed"] else "-",
        str(r.in_progress_on_time + r.in_progress_late),
        str(r.in_progress_late),
        pct("paid_online", "fee_paid"),
        str(c["rated"]),
        f"{r.average_rating:.2f}" if c["rated"] else "-",
    ]


def table(f: Figures, by: str) -> str:
    """The figures as a text table: a row per group, then the total."""

    def label(r: FigureRow) -> str:
        if by == "month":
            return r.month.strftime("%Y-%m") if r.month else ""
        return r.agency_code if by == "agency" else r.procedure_code

    head = [by or "scope", *COLUMNS]
    body = [[label(r), *_cells(r)] for r in f.rows]
    body.append(["total", *_cells(f.total)])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))])

    rule = "-" * len(line(head))
    period = f"dossiers {f.first.isoformat()} .. {f.last.isoformat()} (province days)"
    return "\n".join(
        [period, line(head), rule, *(line(r) for r in body[:-1]), rule, line(body[-1])]
    )


class _AnyAgency:
    """The CLI has no agency tree: any code is an agency of its own, with none below it."""

    def get(self, code: str) -> Agency:
        from lgsp.agencies import Agency

        return Agency(code, code, "")

    def ancestors(self, code: str) -> tuple[str, ...]:
        return ()

    def descendants(self, code: str) -> tuple[str, ...]:
        return ()
