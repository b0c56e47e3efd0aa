"""What the post adds to a dossier: the item's tracking number and the postmark's date.

The tracking number is the UPU S10 identifier every postal operator prints on a registered
item (VNPost's "EB123456785VN"): two letters of service, eight serial digits, a check digit,
the two-letter country. The check digit is UPU S10's: weights 8 6 4 2 3 5 9 7 over the
serial, 11 − (sum mod 11), where 10 becomes 0 and 11 becomes 5.

The time limit counts from the day the agency receives the dossier from the post, not from
the postmark (Quyết định 45/2016/QĐ-TTg, docs/dossiers.md), so the postmark is recorded
for the record only and may not be later than the receipt.
"""

from __future__ import annotations

import re
from datetime import date

from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.fields import check_date

_S10 = re.compile(r"([A-Z]{2})(\d{8})(\d)([A-Z]{2})")
_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def s10_check_digit(serial: str) -> int:
    """The check digit of an eight-digit S10 serial number."""
    check = 11 - sum(int(d) * w for d, w in zip(serial, _WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def check_tracking_number(value: str, field: str = "postal_tracking_number") -> str:
    """The tracking number, upper-cased without spaces; InvalidField if not a valid S10."""
    number = value.replace(" ", "").upper()
    m = _S10.fullmatch(number)
    if m is None:
        raise InvalidField(field, "a UPU S10 tracking number such as EB123456785VN")
    if s10_check_digit(m.group(2)) != int(m.group(3)):
        raise InvalidField(field, "the check digit does not match (mistyped number?)")
    return number


def check_postmark(value: str, received: date, field: str = "postmark_date") -> date | None:
    """The postmark's date (None when empty); never after the day of receipt."""
    day = check_date(field, value)
    if day is None:
        return None
    if day > received:
        raise InvalidField(field, f"after the day of receipt {received.isoformat()}")
    return day
