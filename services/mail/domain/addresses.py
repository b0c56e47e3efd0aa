"""Mail addresses: the province's naming convention for officials, and the checks every
address and header text passes.

The convention (docs/mail.md, "Addresses"): the official's given name (the last word of the
Vietnamese full name) followed by the first letters of the family and middle names, all with
diacritics folded and lowercase: "Nguyễn Văn An" → "annv", "Đặng Thị Thu Hà" → "hadtt". The
domain is the agency's mail domain. A taken local part is numbered: annv, annv1, annv2, …;
an address once given is never given to anyone else (a purged mailbox keeps it reserved).
"""

from __future__ import annotations

import re

from lgsp.textfold import fold
from services.mail.domain.errors import InvalidField

# RFC 5321 limits; a conservative local part (what the convention and admins produce).
MAX_LOCAL = 64
MAX_ADDRESS = 254
LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?")
DOMAIN = re.compile(r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
MAX_DISPLAY_NAME = 200
MAX_SUBJECT = 998  # RFC 5322's line limit; a longer subject is folded by nobody here


def local_part_for(full_name: str) -> str:
    """The conventional local part of a Vietnamese full name ("Nguyễn Văn An" → "annv")."""
    # Anything but a letter or digit separates words ("Nguyễn-Văn An" → annv).
    words = re.findall(r"[a-z0-9]+", fold(full_name))
    if not words:
        raise InvalidField("display_name", "no letters to make an address from")
    given, rest = words[-1], words[:-1]
    return (given + "".join(w[0] for w in rest))[: MAX_LOCAL - 4]  # room for a number


def numbered(base: str, n: int) -> str:
    """The n-th candidate for a taken `base`: annv, annv1, annv2, …"""
    return base if n == 0 else f"{base}{n}"


def split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def normalize_address(address: str, field: str = "address") -> str:
    """The address lowercased and checked; InvalidField(field) if it is not one."""
    a = address.strip().lower()
    if not a:
        raise InvalidField(field, "required")
    if len(a) > MAX_ADDRESS or any(c in a for c in '\r\n\0 <>"(),;:\\[]'):
        raise InvalidField(field, f"not a mail address: {address[:80]!r}")
    local, domain = split(a)
    if not local or len(local) > MAX_LOCAL or not LOCAL_PART.fullmatch(local) or ".." in local:
        raise InvalidField(field, f"not a mail address: {address[:80]!r}")
    if not DOMAIN.fullmatch(domain):
        raise InvalidField(field, f"not a mail domain: {domain[:80]!r}")
    return a


def check_header_text(field: str, value: str, limit: int) -> str:
    """Text that goes into a header (subject, display name): no line breaks or NULs, which
    would let a caller add headers of their own (header injection)."""
    if any(c in value for c in "\r\n\0"):
        raise InvalidField(field, "line breaks are not allowed")
    if len(value) > limit:
        raise InvalidField(field, f"at most {limit} characters ({len(value)} given)")
    return value
