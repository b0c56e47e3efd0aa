"""`lgsp dossiers`: the dossiers service's commands.

    lgsp dossiers count                          how many dossiers are stored
    lgsp dossiers reconcile [--date YYYY-MM-DD]  reconcile a day's online fees with the
                                                 national payment platform (default:
                                                 yesterday, province time); exit 1 when
                                                 discrepancies remain, 2 if it is down

The command reads this service's own database (from the [dossiers] settings) directly: run
it where the service runs, as its user.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lgsp.cli import Subparsers, config_option, settings_from_args

if TYPE_CHECKING:
    from services.dossiers.service_layer.dossiers import DossiersApp


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "dossiers",
        help="one-stop desk dossiers: `lgsp dossiers count|reconcile`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dossiers_command", metavar="ACTION", required=True)
    count = sub.add_parser(
        "count", parents=[config_option()], help="print how many dossiers are stored"
    )
    count.set_defaults(handler=_count)
    reconcile = sub.add_parser(
        "reconcile",
        parents=[config_option()],
        help="reconcile a day's online fees with the national payment platform",
    )
    reconcile.add_argument(
        "--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday)"
    )
    reconcile.set_defaults(handler=_reconcile)


@contextlib.contextmanager
def _app(args: argparse.Namespace) -> Iterator[tuple[Any, DossiersApp]]:
    """(settings, the use cases on this service's own database, migrated)."""
    from lgsp import db
    from lgsp.auth import StaticAgencyTree
    from lgsp.workdays import WorkingCalendar
    from services.dossiers.domain.deadlines import DueDateRule, parse_cutoff
    from services.dossiers.plugin import PLUGIN
    from services.dossiers.service_layer.dossiers import DossiersApp
    from services.dossiers.settings import DossiersSettings

    settings = settings_from_args(args)
    section = settings.service(PLUGIN.name)
    assert isinstance(section, DossiersSettings)
    rule = DueDateRule(
        WorkingCalendar.from_settings(settings.calendar), parse_cutoff(section.cutoff)
    )
    engine = db.create_engine(section.database_url)
    try:
        if PLUGIN.migrations is not None:  # a fresh data directory: zero, not an error
            db.migrate(engine, PLUGIN.migrations)
        directory = _NoAgencies(StaticAgencyTree({}))
        yield settings, DossiersApp(engine, directory, rule)
    finally:
        engine.dispose()


def _count(args: argparse.Namespace) -> int:
    with _app(args) as (_, app):
        print(app.count())
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    import asyncio

    from lgsp.connectors import PaymentClient
    from lgsp.workdays import PROVINCE_TZ
    from services.dossiers.adapters.payment_platform import PaymentPlatform
    from services.dossiers.domain.errors import PaymentPlatformUnavailable
    from services.dossiers.service_layer.reconciliation import reconcile_day

    day = args.date or datetime.now(PROVINCE_TZ).date() - timedelta(days=1)

    async def run(settings: Any, app: DossiersApp) -> int:
        async with PaymentClient.from_settings(settings) as client:
            platform = PaymentPlatform(client, "")
            try:
                report = await reconcile_day(app, platform, day)
            except PaymentPlatformUnavailable as e:
                print(f"reconcile {day}: {e.message}", file=sys.stderr)
                return 2
        for problem in report.problems:
            print(f"DISCREPANCY {problem}")
        print(report.summary())
        return 1 if report.problems else 0

    with _app(args) as (settings, app):
        return asyncio.run(run(settings, app))


class _NoAgencies:
    def __init__(self, tree: object) -> None:
        self.tree = tree

    def get(self, code: str) -> None:
        return None

    def ancestors(self, code: str) -> tuple[str, ...]:
        return ()
