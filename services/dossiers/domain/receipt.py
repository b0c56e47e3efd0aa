"""The receipt code (mã số hồ sơ) of a dossier, in the form the national public service portal
uses (Thông tư 01/2018/TT-VPCP, art. 19(1), after Nghị định 61/2018/NĐ-CP art. 26):

    <agency identifier code>-<YYMMDD>-<4-digit sequence>   e.g. 000.00.61.H27-260212-0007

the identifier code of the receiving agency (QCVN 102:2016), the day of receipt (YYMMDD) and
the dossier's number among those received that day (4 digits). The agency codes are unique,
so a per-agency, per-day sequence makes the code unique in the province (and the country).
"""

from __future__ import annotations

import re
from datetime import date

from services.dossiers.domain.errors import Exhausted, InvalidField

MAX_SEQUENCE = 9999
AGENCY_CODE = re.compile(r"[0-9A-Za-z]+(\.[0-9A-Za-z]+)*")
MAX_AGENCY_CODE = 35
RECEIPT_CODE = re.compile(r"(?P<agency>[0-9A-Za-z.]{1,35})-(?P<day>\d{6})-(?P<seq>\d{4})")


def check_agency_code(code: str, *, field: str = "agency_code") -> str:
    code = code.strip()
    if not code:
        raise InvalidField(field, "required")
    if len(code) > MAX_AGENCY_CODE or not AGENCY_CODE.fullmatch(code):
        raise InvalidField(field, "not an agency identifier code (e.g. 000.00.61.H27)")
    return code


def receipt_code(agency_code: str, day: date, sequence: int) -> str:
    """The code of the `sequence`-th dossier `agency_code` received on `day`."""
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise Exhausted(
            f"agency {agency_code} has given all {MAX_SEQUENCE} receipt codes of {day:%d/%m/%Y}"
        )
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"


def parse_receipt_code(code: str) -> tuple[str, date, int]:
    """(agency code, day, sequence) of a receipt code; InvalidField("receipt_code") if it is
    not one."""
    m = RECEIPT_CODE.fullmatch(code.strip())
    if not m or not AGENCY_CODE.fullmatch(m["agency"]):
        raise InvalidField("receipt_code", "not a receipt code (e.g. 000.00.61.H27-260212-0007)")
    d = m["day"]
    try:
        day = date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))
    except ValueError:
        raise InvalidField("receipt_code", f"{d} is not a date") from None
    return m["agency"], day, int(m["seq"])
