"""A citizen's mail address as a dossier carries it (typed at a desk or on a portal), checked
before any notice goes to it: a plain address and nothing else (the checks every address of
the service passes, addresses.normalize_address: a conservative dot-atom local part, a
domain of letters, digits and hyphens). A line break that would add a header ("a@b.c\\r\\n
Bcc: x@y"), a display name, a comment, spaces, a quoted local part, an IP literal are
refused: a notice to a citizen has no reason to reach an unusual address, and sending to it
would let whoever typed it steer the platform's mail. Lowercased, as the service stores
every address (the mail systems citizens use treat local parts case-insensitively)."""

from __future__ import annotations

from services.mail.domain.addresses import normalize_address
from services.mail.domain.errors import InvalidField


def citizen_address(text: str) -> str | None:
    """The address, lowercased, or None if it is not a plain address."""
    if any(c.isspace() or not c.isprintable() for c in text):
        return None
    try:
        return normalize_address(text, "applicant_email")
    except InvalidField:
        return None
