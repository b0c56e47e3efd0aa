"""`lgsp dossiers`: the dossiers service's commands.

    lgsp dossiers count        how many dossiers are stored

The command reads this service's own database (from the [dossiers] settings) directly: run
it where the service runs, as its user.
"""

from __future__ import annotations

import argparse

from lgsp.cli import Subparsers, config_option, settings_from_args


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "dossiers",
        help="one-stop desk dossiers: `lgsp dossiers count`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dossiers_command", metavar="ACTION", required=True)
    count = sub.add_parser(
        "count", parents=[config_option()], help="print how many dossiers are stored"
    )
    count.set_defaults(handler=_count)


def _count(args: argparse.Namespace) -> int:
    from lgsp import db
    from lgsp.auth import StaticAgencyTree
    from lgsp.workdays import WorkingCalendar
    from services.dossiers.domain.deadlines import DueDateRule
    from services.dossiers.plugin import PLUGIN
    from services.dossiers.service_layer.dossiers import DossiersApp

    settings = settings_from_args(args)
    engine = db.create_engine(settings.service(PLUGIN.name).database_url)
    try:
        if PLUGIN.migrations is not None:  # a fresh data directory: zero, not an error
            db.migrate(engine, PLUGIN.migrations)
        directory = _NoAgencies(StaticAgencyTree({}))
        print(DossiersApp(engine, directory, DueDateRule(WorkingCalendar())).count())
    finally:
        engine.dispose()
    return 0


class _NoAgencies:
    def __init__(self, tree: object) -> None:
        self.tree = tree

    def get(self, code: str) -> None:
        return None

    def ancestors(self, code: str) -> tuple[str, ...]:
        return ()
