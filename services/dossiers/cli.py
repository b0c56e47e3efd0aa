"""`lgsp dossiers`: the dossiers service's commands.

    lgsp dossiers count                       how many dossiers are stored
    lgsp dossiers stats [--from D] [--to D] [--agency CODE] [--procedure CODE]
                        [--by agency|procedure|month] [--json] [--rebuild]
                                              on time, early and late, online shares,
                                              satisfaction (cli_stats.py)
    lgsp dossiers procedures export FILE      the whole catalogue (inactive procedures too) as
                                              JSON in catalogue.json's shape ("-": stdout)
    lgsp dossiers procedures import FILE      create or update the procedures of FILE: every
                                              entry is checked first and nothing changes if one
                                              is bad; prints created/updated/unchanged
    lgsp dossiers reconcile [--date YYYY-MM-DD]   reconcile a day's online fees with the
                                              national payment platform (default: yesterday,
                                              province time); exit 1 when discrepancies
                                              remain, 2 if it is down

The commands read and write this service's own database (from the [dossiers] settings)
directly, through the service's use cases, so an import emits ProcedureCreated/Updated events
like the gRPC calls (the service publishes them from the outbox). Run them where the service
runs, as its user.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lgsp.cli import Subparsers, config_option, settings_from_args
from services.dossiers.cli_stats import register_stats

if TYPE_CHECKING:
    from services.dossiers.service_layer.dossiers import DossiersApp


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "dossiers",
        help="one-stop desk dossiers: `lgsp dossiers count|procedures|reconcile|stats`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dossiers_command", metavar="ACTION", required=True)
    count = sub.add_parser(
        "count", parents=[config_option()], help="print how many dossiers are stored"
    )
    count.set_defaults(handler=_count)
    procedures = sub.add_parser("procedures", help="export or import the procedure catalogue")
    psub = procedures.add_subparsers(dest="procedures_command", metavar="ACTION", required=True)
    export = psub.add_parser(
        "export", parents=[config_option()], help="write the catalogue to FILE as JSON"
    )
    export.add_argument("file", metavar="FILE", help='where to write ("-" for stdout)')
    export.set_defaults(handler=_export)
    imp = psub.add_parser(
        "import", parents=[config_option()], help="create or update procedures from FILE"
    )
    imp.add_argument("file", metavar="FILE", help='a catalogue JSON file ("-" for stdin)')
    imp.set_defaults(handler=_import)
    reconcile = sub.add_parser(
        "reconcile",
        parents=[config_option()],
        help="reconcile a day's online fees with the national payment platform",
    )
    reconcile.add_argument(
        "--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday)"
    )
    reconcile.set_defaults(handler=_reconcile)
    register_stats(sub, _app)


@contextlib.contextmanager
def _app(args: argparse.Namespace) -> Iterator[tuple[Any, DossiersApp]]:
    """(settings, the use cases on this service's own database, migrated)."""
    from lgsp import db
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
        if PLUGIN.migrations is not None:  # a fresh data directory: an empty catalogue
            db.migrate(engine, PLUGIN.migrations)
        yield settings, DossiersApp(engine, _NoAgencies(), rule)
    finally:
        engine.dispose()


def _count(args: argparse.Namespace) -> int:
    with _app(args) as (_, app):
        print(app.count())
    return 0


def _export(args: argparse.Namespace) -> int:
    with _app(args) as (_, app):
        catalogue = app.export_catalogue()
    text = json.dumps(catalogue, ensure_ascii=False, indent=1) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"exported {len(catalogue['procedures'])} procedures to {args.file}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from lgsp.auth import Principal
    from services.dossiers.domain.errors import InvalidField
    from services.dossiers.service_layer.catalogue_transfer import parse_catalogue

    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        procedures = parse_catalogue(json.loads(raw))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        print(f"cannot read {args.file}: {e}", file=sys.stderr)
        return 1
    except InvalidField as e:
        print(f"{args.file}: {e.field}: {e.reason}; nothing imported", file=sys.stderr)
        return 1
    # The operator running the command on the service's host acts as an admin of it.
    operator = Principal(
        subject=f"cli:{getpass.getuser()}", kind="user", roles=frozenset({"admin"})
    )
    with _app(args) as (_, app):
        report = app.import_catalogue(procedures, operator)
    print(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}"
    )
    for label, codes in (("created", report.created), ("updated", report.updated)):
        if codes:
            print(f"  {label}: {', '.join(codes)}")
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
    """No agency tree: the commands check no agency roles."""

    def get(self, code: str) -> None:
        return None

    def ancestors(self, code: str) -> tuple[str, ...]:
        return ()

    def descendants(self, code: str) -> tuple[str, ...]:
        return ()
