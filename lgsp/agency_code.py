"""Agency identifier codes (mã định danh điện tử của cơ quan, tổ chức).

The national scheme (QĐ 20/2020/QĐ-TTg) writes a code as dotted groups of digits and capital
letters, e.g. ``000.00.00.H27`` for a provincial people's committee or ``G22`` for a ministry;
edXML carries it as OrganId. Shared by the documents and identity services, so it lives in the
platform core and knows nothing of either.
"""

from __future__ import annotations

import re

MAX_LENGTH = 35
# Non-empty groups of 0-9/A-Z separated by single dots: no leading, trailing or double dot.
PATTERN = re.compile(r"[0-9A-Z]+(?:\.[0-9A-Z]+)*")
# The same rule for XML Schema (edxml.xsd) so the schema and this module agree.
XSD_PATTERN = r"[0-9A-Z]+(\.[0-9A-Z]+)*"


def agency_code_problem(code: str) -> str | None:
    """Why `code` is not an agency code, or None when it is one."""
    if not code:
        return "is empty"
    if len(code) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if PATTERN.fullmatch(code) is None:
        return "must be dot-separated groups of digits and capital letters, e.g. 000.00.00.H27"
    return None


def is_agency_code(code: str) -> bool:
    return agency_code_problem(code) is None


def validate_agency_code(code: str, field: str = "agency_code") -> str:
    """`code` unchanged if valid, else ValueError naming `field` and the rule broken."""
    problem = agency_code_problem(code)
    if problem is not None:
        raise ValueError(f"{field} {code!r} {problem}")
    return code
