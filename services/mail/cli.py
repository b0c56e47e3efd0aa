"""`lgsp mail …`: the mail service's commands, for the operator on the service's host.

    lgsp mail mailboxes [--agency CODE] [--json]   every mailbox with its usage
    lgsp mail show ADDRESS                          one mailbox: owner, delegates, quota,
                                                    folders, the owner's mail certificate
    lgsp mail queue [--json]                        mail waiting for outside recipients:
                                                    count, oldest, per domain
    lgsp mail cert export --user ID --out FILE.p12  the official's S/MIME certificate and key
                                                    as PKCS#12 for Thunderbird/Outlook; the
                                                    password is asked on the terminal (or
                                                    read from the first line of stdin)
    lgsp mail dkim-record DOMAIN                    the DNS TXT record of the domain's DKIM
                                                    key (made now if it has none)

The commands read this service's own database (the [mail] settings) and the development CA
([mail] ca_dir, the one documents uses); run them where the service runs, as its user.
Exit codes: 0 done, 1 refused or not found (the reason on stderr), 2 bad usage/settings.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lgsp.cli import Subparsers, config_option, settings_from_args
from services.mail.dkim_cli import dkim_record

MIB = 1024 * 1024
MIN_PASSWORD = 8


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "mail",
        help="official mail: `lgsp mail mailboxes|show|queue|cert|dkim-record`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    ls = sub.add_parser(
        "mailboxes", parents=[config_option()], help="list mailboxes with their usage"
    )
    ls.add_argument("--agency", metavar="CODE", default="", help="only this agency's mailboxes")
    ls.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    ls.set_defaults(handler=_mailboxes)
    show = sub.add_parser("show", parents=[config_option()], help="one mailbox in detail")
    show.add_argument("address", metavar="ADDRESS")
    show.set_defaults(handler=_show)
    queue = sub.add_parser(
        "queue", parents=[config_option()], help="the queue of mail for outside recipients"
    )
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(handler=_queue)
    cert = sub.add_parser("cert", help="officials' S/MIME certificates")
    csub = cert.add_subparsers(dest="cert_command", metavar="ACTION", required=True)
    export = csub.add_parser(
        "export",
        parents=[config_option()],
        help="write an official's certificate and key as a password-protected PKCS#12",
        description="Export the official's S/MIME certificate (the one naming their mail "
        "address; issued now if [mail] smime_auto_issue and they have none) with its key and "
        "chain, for Thunderbird (Settings → Privacy & Security → Manage Certificates → Your "
        "Certificates → Import) or Outlook. Import the CA root (<ca_dir>/root.pem) as an "
        "authority too.",
    )
    export.add_argument("--user", required=True, metavar="ID", help="user id or username")
    export.add_argument("--out", required=True, metavar="FILE.p12", type=Path)
    export.add_argument("--force", action="store_true", help="overwrite FILE.p12")
    export.add_argument(
        "--agency-name",
        default="",
        help="agency name printed in a certificate issued now (default: the agency code)",
    )
    export.set_defaults(handler=_cert_export)
    dkim = sub.add_parser(
        "dkim-record",
        parents=[config_option()],
        help="the DNS TXT record of a domain's DKIM key (made now if it has none)",
    )
    dkim.add_argument("domain", metavar="DOMAIN", help="a province mail domain")
    dkim.set_defaults(handler=dkim_record)


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """(settings, a MailStore over this service's database, migrated) in one transaction."""
    from sqlalchemy.orm import Session

    from lgsp import db
    from services.mail.adapters.store import MailStore
    from services.mail.plugin import PLUGIN

    settings = settings_from_args(args)
    engine = db.create_engine(settings.service(PLUGIN.name).database_url)
    try:
        if PLUGIN.migrations is not None:
            db.migrate(engine, PLUGIN.migrations)
        with Session(engine) as session:
            yield settings, MailStore(session)
    finally:
        engine.dispose()


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / 1024:.1f} KiB"


def _usage(mb: Any) -> str:
    if not mb.quota_bytes:
        return f"{_size(mb.used_bytes)} / unlimited"
    return (
        f"{_size(mb.used_bytes)} / {_size(mb.quota_bytes)} ({mb.used_bytes / mb.quota_bytes:.0%})"
    )


def _when(d: datetime | None) -> str:
    if d is None:
        return ""
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).strftime("%Y-%m-%d %H:%M UTC")


def _state(mb: Any) -> str:
    return "purged" if mb.purged else mb.status.name.lower()


def _mailboxes(args: argparse.Namespace) -> int:
    with _store(args) as (_, store):
        found, after = [], ""
        while page := store.list_mailboxes(
            agency_code=args.agency, kind=0, query="", after=after, limit=500
        ):
            found += page
            after = page[-1].address
    if args.json:
        rows = [
            {
                "address": m.address,
                "display_name": m.display_name,
                "kind": m.kind.name.lower(),
                "agency_code": m.agency_code,
                "status": _state(m),
                "used_bytes": m.used_bytes,
                "quota_bytes": m.quota_bytes,
            }
            for m in found
        ]
        print(json.dumps({"mailboxes": rows}, ensure_ascii=False, indent=1))
        return 0
    for m in found:
        print(
            f"{m.address:40}  {m.kind.name.lower():8}  {_state(m):8}  "
            f"{_usage(m):30}  {m.display_name}"
        )
    where = f" of agency {args.agency}" if args.agency else ""
    print(f"{len(found)} mailbox(es){where}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from services.mail.domain.errors import InvalidField
    from services.mail.domain.mailbox import Kind

    with _store(args) as (settings, store):
        try:
            address = _address(args.address)
        except InvalidField as e:
            return _fail(f"{args.address!r}: {e.reason}")
        mb = store.mailbox(address)
        if mb is None:
            return _fail(f"no mailbox {address}")
        counts = store.counts(mb.address)
        folders = store.folders(mb.address)
        owner = store.user(mb.owner_user_id) if mb.owner_user_id else None
    print(f"address       {mb.address}")
    print(f"display name  {mb.display_name}")
    print(f"kind          {mb.kind.name.lower()}    agency {mb.agency_code}")
    print(f"status        {_state(mb)}    created {_when(mb.create_time)}")
    if mb.disabled_time:
        print(f"disabled      {_when(mb.disabled_time)}")
    if mb.owner_user_id:
        who = f" ({owner['username']})" if owner else ""
        print(f"owner         {mb.owner_user_id}{who}")
    if mb.delegate_user_ids:
        print(f"delegates     {', '.join(mb.delegate_user_ids)}")
    print(f"usage         {_usage(mb)}")
    print("folders")
    for f in folders:
        total, unread = counts.get(f.id, (0, 0))
        print(f"  {f.name:24} {total:7} messages  {unread:6} unread  [{f.id}]")
    if mb.kind is Kind.PERSONAL and mb.owner_user_id:
        ca = _ca(settings)
        serial = ca.official_serial(mb.owner_user_id, mb.address)
        entry = ca.certificates().get(serial, {}) if serial else {}
        until = str(entry.get("not_after", ""))[:10]
        cert = f"{serial} (valid until {until})" if serial else "none yet"
        print(f"S/MIME cert   {cert}")
    return 0


def _address(text: str) -> str:
    from services.mail.domain.addresses import normalize_address

    return normalize_address(text, "address")


def _queue(args: argparse.Namespace) -> int:
    with _store(args) as (_, store):
        domains = store.outgoing_by_domain()
    total = sum(d.count for d in domains)
    oldest = min((d.oldest for d in domains), default=None)
    if args.json:
        document = {
            "count": total,
            "oldest": _when(oldest),
            "domains": [
                {
                    "domain": d.domain,
                    "count": d.count,
                    "oldest": _when(d.oldest),
                    "max_attempts": d.max_attempts,
                }
                for d in domains
            ],
        }
        print(json.dumps(document, indent=1))
        return 0
    print(f"{total} message(s) queued for outside recipients")
    if oldest is not None:
        print(f"oldest queued {_when(oldest)}")
    for d in domains:
        print(f"  {d.domain:40} {d.count:6}  oldest {_when(d.oldest)}  attempts ≤ {d.max_attempts}")
    return 0


def _ca(settings: Any) -> Any:
    from lgsp.ca import DevCA

    return DevCA.open_or_create(settings.mail.ca_dir or settings.data_dir / "ca")


def _cert_export(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        return _fail(f"{args.out} exists; --force to overwrite it")
    with _store(args) as (settings, store):
        user = store.user(args.user) or store.user_by_username(args.user)
        if user is None:
            return _fail(f"no official {args.user!r} known to the mail service")
        mb = store.mailbox_of(user["user_id"])
        if mb is None or mb.purged:
            return _fail(f"{args.user} has no mailbox: a mail certificate names one")
    ca = _ca(settings)
    agency_code = user["agency_code"] or mb.agency_code
    serial = ca.ensure_official(
        user_id=user["user_id"],
        full_name=user["display_name"] or mb.display_name,
        # Only printed in the certificate (O=); the agency code identifies the agency.
        agency_name=args.agency_name or agency_code,
        agency_code=agency_code,
        email=mb.address,
        auto_issue=settings.mail.smime_auto_issue,
    )
    if not serial:
        return _fail(
            f"{args.user} has no certificate for {mb.address}; issue one with `lgsp documents "
            f"ca issue --user {user['username']} --email {mb.address}`"
        )
    password = _password()
    if password is None:
        return _fail(f"a password of at least {MIN_PASSWORD} characters is required")
    credential = ca.credential(serial)
    data = credential.pkcs12(password.encode(), name=f"{user['display_name']} <{mb.address}>")
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    print(f"wrote {args.out}: certificate {serial} for {mb.address} with its key and chain")
    print(f"  valid until {credential.certificate.not_valid_after_utc:%Y-%m-%d}")
    print(f"  CA root to trust: {ca.root_path}")
    return 0


def _password() -> str | None:
    """From the terminal (asked twice), else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("PKCS#12 password: ")
        if first != getpass.getpass("again: "):
            print("the passwords differ", file=sys.stderr)
            return None
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    return first if len(first) >= MIN_PASSWORD else None


def _fail(message: str) -> int:
    print(f"lgsp mail: {message}", file=sys.stderr)
    return 1
