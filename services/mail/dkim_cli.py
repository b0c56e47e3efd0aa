"""`lgsp mail dkim-record DOMAIN`: the DNS TXT record an operator publishes for a domain's
DKIM key (docs/mail.md, "DKIM and SPF"), made now if the domain has no key yet, so the
record can be in DNS before the first mail leaves. Registered by cli.py."""

from __future__ import annotations

import argparse
import sys

from lgsp.cli import settings_from_args


def dkim_record(args: argparse.Namespace) -> int:
    from services.mail.adapters.dkim_keys import dkim_dns_record
    from services.mail.settings import DOMAIN

    domain = str(args.domain).strip().lower().rstrip(".")
    if not DOMAIN.fullmatch(domain):
        print(f"lgsp mail: not a mail domain: {args.domain!r}", file=sys.stderr)
        return 2
    print(dkim_dns_record(settings_from_args(args), domain))
    return 0
