"""`lgsp log`: check and hand over the gateway's signed message log (works on the gateway
database directly).

    lgsp log verify                          every entry, chain and seal; names the first bad one
    lgsp log verify --from 1000 --to 2000    a range (sequence numbers or ISO times)
    lgsp log verify --file export.jsonl      an export, offline (--key-id pins the signer)
    lgsp log export --from 2025-07-01 --to 2025-08-01 audit.jsonl
    lgsp log retain --older-than-days 365    delete old entries, whole sealed batches only
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from lgsp.cli import Subparsers, config_option, settings_from_args


def _engine(args: argparse.Namespace) -> Any:
    from lgsp import db
    from services.gateway.tables import MIGRATIONS

    settings = settings_from_args(args)
    engine = db.create_engine(settings.gateway.database_url)
    db.migrate(engine, MIGRATIONS)
    return engine


def _seq(engine: Any, value: str | None, *, upper: bool) -> int | None:
    """A sequence number given as such or as an ISO time."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    import sqlalchemy as sa

    from services.gateway import tables as t
    from services.gateway.msglog import parse_time

    when = parse_time(value)
    c = t.message_log.c
    with engine.connect() as conn:
        if upper:
            found = conn.execute(sa.select(sa.func.max(c.seq)).where(c.time < when)).scalar()
        else:
            found = conn.execute(sa.select(sa.func.min(c.seq)).where(c.time >= when)).scalar()
    return int(found) if found is not None else (0 if upper else 2**62)


def _progress(count: int) -> None:
    print(f"  … {count} entries verified", file=sys.stderr, flush=True)


def _verify(args: argparse.Namespace) -> int:
    from services.gateway.msglog import verify_export, verify_log

    trusted = None
    if args.file:
        with open(args.file, encoding="utf-8") as fh:
            lines = fh.readlines()
        if args.key_id:
            import json

            keys = {}
            for line in lines:
                item = json.loads(line) if line.strip() else {}
                if item.get("type") == "key" and item["key_id"] in args.key_id:
                    keys[item["key_id"]] = item["public_key"]
            trusted = keys or {"(none)": "00" * 32}
        result = verify_export(lines, trusted_keys=trusted, progress=_progress)
    else:
        engine = _engine(args)
        try:
            result = verify_log(
                engine,
                from_seq=_seq(engine, args.start, upper=False),
                to_seq=_seq(engine, args.end, upper=True),
                progress=_progress,
            )
        finally:
            engine.dispose()
    print(result.describe())
    return 0 if result.valid else 1


def _export(args: argparse.Namespace) -> int:
    from services.gateway.msglog import export_log, parse_time

    engine = _engine(args)
    try:
        with open(args.file, "w", encoding="utf-8") as out:
            count = export_log(
                engine,
                out,
                start=parse_time(args.start) if args.start else None,
                end=parse_time(args.end) if args.end else None,
            )
    finally:
        engine.dispose()
    print(f"{count} entries written to {args.file} (verify with: lgsp log verify --file)")
    return 0


def _retain(args: argparse.Namespace) -> int:
    from services.gateway.msglog import apply_retention, format_time

    engine = _engine(args)
    try:
        cutoff = format_time(datetime.now(UTC) - timedelta(days=args.older_than_days))
        deleted, checkpoint = apply_retention(engine, cutoff)
    finally:
        engine.dispose()
    if deleted:
        print(
            f"{deleted} entries deleted; the chain now starts after the seal of entry {checkpoint}"
        )
    else:
        print("nothing to delete (no whole sealed batch is older than the cutoff)")
    return 0


def register(sub: Subparsers) -> None:
    common = config_option()
    p = sub.add_parser(
        "log",
        parents=[common],
        help="verify, export and prune the gateway's signed message log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="log_command", required=True, metavar="COMMAND")
    v = cmds.add_parser("verify", parents=[common], help="check hashes, chain and seals")
    v.add_argument("--from", dest="start", help="first entry: sequence number or ISO time")
    v.add_argument("--to", dest="end", help="last entry: sequence number or ISO time (exclusive)")
    v.add_argument("--file", help="verify an export file instead of the database")
    v.add_argument("--key-id", action="append", help="trust only this signing key (repeatable)")
    v.set_defaults(handler=_verify)
    e = cmds.add_parser("export", parents=[common], help="write a time range for an auditor")
    e.add_argument("--from", dest="start", help="ISO time, inclusive (default: the beginning)")
    e.add_argument("--to", dest="end", help="ISO time, exclusive (default: now)")
    e.add_argument("file", metavar="FILE")
    e.set_defaults(handler=_export)
    r = cmds.add_parser("retain", parents=[common], help="delete old sealed batches")
    r.add_argument("--older-than-days", type=float, required=True)
    r.set_defaults(handler=_retain)
