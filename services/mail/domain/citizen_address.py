"""A citizen's mail address as a dossier carries it (typed at a desk or on a portal): checked
before any notice goes to it. The RFC 5322 dot-atom form (§3.4.1, §3.2.3) with a domain of
letters, digits and hyphens; anything else — a line break that would add a header ("a@b.c\\r\\n
Bcc: x@y"), a display name, a comment, spaces, a quoted local part, an IP literal — is refused:
a notice to a citizen has no reason to reach an unusual address, and sending to it would let
whoever typed it steer the platform's mail."""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_DOMAIN = re.compile(r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def citizen_address(text: str) -> str | None:
    """The address, its domain lowercased, or None if it is not a plain address."""
    if len(text) > 254 or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = domain.lower()
    if len(local) > 64 or not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        return None
    return f"{local}@{domain}"
