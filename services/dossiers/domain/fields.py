"""What the free-text fields of a dossier may hold. Every one is bounded (a 2 MB "address"
would be stored, synced to the portal and printed on the slip), NFC-normalised (a name typed
on a Mac arrives decomposed, then compares and sorts apart from the same name typed
elsewhere) and free of control and format characters (NUL breaks PostgreSQL text, a
right-to-left override or zero-width space makes a name print as something it is not)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from services.dossiers.domain.errors import InvalidField

# Unicode categories refused in text: controls, format characters (bidi overrides, zero
# widths), surrogates, private use, unassigned.
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_PHONE_SEPARATORS = re.compile(r"[ .\-()]")
_PHONE = re.compile(r"\+?\d{8,15}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: ids and codes of other systems
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def normalized(value: str) -> str:
    """NFC, surrounding whitespace removed; no refusal (the checks below refuse)."""
    value = value.strip()
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def check_text(field: str, value: str, max_len: int) -> str:
    """`value` normalised if it fits; InvalidField naming `field` otherwise."""
    value = normalized(value)
    if len(value) > max_len:
        raise InvalidField(field, f"at most {max_len} characters")
    if any(unicodedata.category(c) in _REFUSED for c in value):
        raise InvalidField(field, "control or invisible formatting characters are not allowed")
    return value


def check_phone(field: str, value: str) -> str:
    """A telephone number as written (spaces, dots, dashes, brackets, a leading +): 8 to 15
    digits. The last four digits verify a public lookup, so letters are refused."""
    value = check_text(field, value, 32)
    if value and not _PHONE.fullmatch(_PHONE_SEPARATORS.sub("", value)):
        raise InvalidField(field, "a telephone number of 8 to 15 digits")
    return value


def check_email(field: str, value: str) -> str:
    value = check_text(field, value, 254)
    if value and not _EMAIL.fullmatch(value):
        raise InvalidField(field, "an e-mail address")
    return value


def check_token(field: str, value: str, max_len: int) -> str:
    """An identifier made by another system (request id, attachment id): visible ASCII."""
    value = value.strip()
    if len(value) > max_len:
        raise InvalidField(field, f"at most {max_len} characters")
    if value and not _TOKEN.fullmatch(value):
        raise InvalidField(field, "visible ASCII characters only")
    return value


def check_sha256(field: str, value: str) -> str:
    value = value.strip().lower()
    if value and not _SHA256.fullmatch(value):
        raise InvalidField(field, "64 hexadecimal digits (SHA-256)")
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_date(field: str, value: str) -> date | None:
    """A calendar date written YYYY-MM-DD (None when empty). Python's fromisoformat alone
    would also take 20261204 and 2026-W49-5, which no form means."""
    value = value.strip()
    if not value:
        return None
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidField(field, "a date YYYY-MM-DD")
