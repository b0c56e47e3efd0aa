"""`lgsp template`: the template service's commands.

    lgsp template count        how many notices are stored

The command reads this service's own database (from the [template] settings) directly: run
it where the service runs, as its user.
"""

from __future__ import annotations

import argparse

from lgsp.cli import Subparsers, config_option, settings_from_args


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "template",
        help="agency notices: `lgsp template count`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="template_command", metavar="ACTION", required=True)
    count = sub.add_parser(
        "count", parents=[config_option()], help="print how many notices are stored"
    )
    count.set_defaults(handler=_count)


def _count(args: argparse.Namespace) -> int:
    from lgsp import db
    from services._template.plugin import PLUGIN
    from services._template.service_layer.notices import Notices

    settings = settings_from_args(args)
    engine = db.create_engine(settings.service(PLUGIN.name).database_url)
    try:
        if PLUGIN.migrations is not None:  # a fresh data directory: zero, not an error
            db.migrate(engine, PLUGIN.migrations)
        print(Notices(engine).count())
    finally:
        engine.dispose()
    return 0
