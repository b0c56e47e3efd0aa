"""`lgsp backup DIR` and `lgsp restore DIR`: a consistent snapshot of the embedded stores
(SQLite databases through the online backup API, the search index, keys, attachments), taken
while the platform runs, and its restore into a data directory (see lgsp.backup).

    lgsp backup /srv/backups/lgsp-2026-12-04
    lgsp restore /srv/backups/lgsp-2026-12-04 --config /etc/lgsp/lgsp.toml

PostgreSQL, S3 and Elasticsearch are saved with their own tools (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lgsp.cli import Subparsers, config_option, settings_from_args


def _backup(args: argparse.Namespace) -> int:
    from lgsp.backup import BackupError, backup

    settings = settings_from_args(args)
    started = time.monotonic()
    print(f"backing up {settings.platform.data_dir} into {args.dir}")
    try:
        manifest = backup(settings, Path(args.dir), say=lambda line: print(line, flush=True))
    except BackupError as exc:
        print(f"lgsp backup: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lgsp backup: interrupted; nothing was left in {args.dir}", file=sys.stderr)
        return 130
    saved = manifest["items"]
    assert isinstance(saved, list)
    total = sum(int(item["bytes"]) for item in saved)
    print(f"{len(saved)} stores, {total:,} bytes in {time.monotonic() - started:.1f} s")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from lgsp.backup import BackupError, restore

    settings = settings_from_args(args)
    print(f"restoring {args.dir} into {settings.platform.data_dir}")
    try:
        count = restore(
            settings, Path(args.dir), force=args.force, say=lambda line: print(line, flush=True)
        )
    except BackupError as exc:
        print(f"lgsp restore: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "lgsp restore: interrupted; each store listed above is whole, the others untouched: "
            "run it again with --force",
            file=sys.stderr,
        )
        return 130
    print(f"{count} stores restored; start the platform with `lgsp up`")
    return 0


def register(sub: Subparsers) -> None:
    common = config_option()
    p = sub.add_parser(
        "backup",
        parents=[common],
        help="save a consistent snapshot of the embedded stores (while running)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="an empty or new folder for the backup")
    p.set_defaults(handler=_backup)
    p = sub.add_parser(
        "restore",
        parents=[common],
        help="put a backup back into the data directory (the platform stopped)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="a folder made by `lgsp backup`")
    p.add_argument("--force", action="store_true", help="replace stores that already hold data")
    p.set_defaults(handler=_restore)
