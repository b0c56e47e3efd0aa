"""A notice (thông báo): one short announcement of one agency, and the rules of posting it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services._template.domain.errors import InvalidField

MAX_TITLE = 500
# An agency identifier code (mã định danh): dotted groups, e.g. 000.00.12.H27.
AGENCY_CODE = re.compile(r"[0-9A-Za-z]+(\.[0-9A-Za-z]+)*")
MAX_AGENCY_CODE = 35


@dataclass(frozen=True)
class Notice:
    id: str
    agency_code: str
    title: str
    author_id: str
    posted_time: datetime


def post_notice(
    agency_code: str,
    title: str,
    *,
    author_id: str,
    now: datetime | None = None,
    notice_id: str | None = None,
) -> Notice:
    """A new notice, if the rules allow it; InvalidField names the first field that fails."""
    agency_code = agency_code.strip()
    if not agency_code:
        raise InvalidField("agency_code", "required")
    if len(agency_code) > MAX_AGENCY_CODE or not AGENCY_CODE.fullmatch(agency_code):
        raise InvalidField("agency_code", "not an agency identifier code (e.g. 000.00.12.H27)")
    title = title.strip()
    if not title:
        raise InvalidField("title", "required")
    if len(title) > MAX_TITLE:
        raise InvalidField("title", f"at most {MAX_TITLE} characters ({len(title)} given)")
    return Notice(
        id=notice_id or str(uuid.uuid4()),
        agency_code=agency_code,
        title=title,
        author_id=author_id,
        posted_time=now or datetime.now(UTC),
    )
