"""`lgsp dossiers`: the dossiers service's commands.

    lgsp dossiers count                       how many dossiers are stored
    lgsp dossiers procedures export FILE      the whole catalogue (inactive procedures too) as
                                              JSON in catalogue.json's shape ("-": stdout)
    lgsp dossiers procedures import FILE      create or update the procedures of FILE: every
                                              entry is checked first and nothing changes if one
                                              is bad; prints created/updated/unchanged

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
from pathlib import Path
from typing import TYPE_CHECKING

from lgsp.cli import Subparsers, config_option, settings_from_args

if TYPE_CHECKING:
    from services.dossiers.service_layer.dossiers import DossiersApp


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "dossiers",
        help="one-stop desk dossiers: `lgsp dossiers count`, `lgsp dossiers procedures ...`",
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


@contextlib.contextmanager
def _app(args: argparse.Namespace) -> Iterator[DossiersApp]:
    from lgsp import db
    from lgsp.workdays import WorkingCalendar
    from services.dossiers.domain.deadlines import DueDateRule
    from services.dossiers.plugin import PLUGIN
    from services.dossiers.service_layer.dossiers import DossiersApp

    settings = settings_from_args(args)
    engine = db.create_engine(settings.service(PLUGIN.name).database_url)
    try:
        if PLUGIN.migrations is not None:  # a fresh data directory: an empty catalogue
            db.migrate(engine, PLUGIN.migrations)
        yield DossiersApp(engine, _NoAgencies(), DueDateRule(WorkingCalendar()))
    finally:
        engine.dispose()


def _count(args: argparse.Namespace) -> int:
    with _app(args) as app:
        print(app.count())
    return 0


def _export(args: argparse.Namespace) -> int:
    with _app(args) as app:
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
    with _app(args) as app:
        report = app.import_catalogue(procedures, operator)
    print(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}"
    )
    for label, codes in (("created", report.created), ("updated", report.updated)):
        if codes:
            print(f"  {label}: {', '.join(codes)}")
    return 0


class _NoAgencies:
    """No agency tree: the commands check no agency roles."""

    def get(self, code: str) -> None:
        return None

    def ancestors(self, code: str) -> tuple[str, ...]:
        return ()
