"""Rules on a document that arrives (registered by a clerk or received as an edXML package)
before it enters the incoming book: its number and dates, whether the incoming book holds it
already, and whether its digital signature is the sender's.

- Số và ký hiệu (Nghị định 30/2020, Appendix I, II.3): Arabic digits, a slash, then the
  notation — for a legal document the year first ("28/2018/QĐ-TTg"), then abbreviations joined
  by hyphens ("123/QĐ-UBND", "45/UBND-VP"). "abc" or "12" alone is not one.
- Dates: a document cannot be promulgated after the day it arrives, and a due date (hạn xử
  lý) before its promulgation date is a slip of the sender's; both are refused, not guessed.
- The same document: one agency never gives one number and notation to two documents of the
  same date, so (sender, number and notation, promulgation date) names a document whatever
  DocumentId a package carries. A re-send under a new DocumentId is not registered twice.
- Signature: an official certificate names its agency (organizationIdentifier = the agency's
  identifier code, lgsp/ca.py); a main text signed under another agency's code than the
  sender's is shown to the clerk as a warning (a province may legitimately sign for a body it
  is in charge of, so it is not refused).
"""

from __future__ import annotations

import re
from datetime import date

from .errors import InvalidField
from .model import OPEN_INCOMING, ArrivalWarning, Direction, Document, IncomingStatus

# 1-7 digits / optional 4-digit year / abbreviations of letters or digits joined by "-"
# (a dot may join a unit to its agency, e.g. "TB-VP.UBND").
_NUMBER_NOTATION = re.compile(
    r"^\d{1,7}/(?:\d{4}/)?[^\W_][^\W_.]*(?:[-.][^\W_][^\W_.]*)*$", re.UNICODE
)
MAX_NUMBER_NOTATION = 100

SIGNER_AGENCY_MISMATCH = "SIGNER_AGENCY_MISMATCH"


def check_number_notation(text: str, field: str = "document.number_notation") -> None:
    value = text.strip()
    if not value:
        raise InvalidField(field, "the sender's number and notation are required")
    if len(value) > MAX_NUMBER_NOTATION:
        raise InvalidField(field, f"at most {MAX_NUMBER_NOTATION} characters")
    if not _NUMBER_NOTATION.match(value):
        raise InvalidField(
            field,
            f"{value!r} is not a number and notation such as 123/QĐ-UBND or 28/2018/QĐ-TTg "
            "(digits, a slash, then the notation)",
        )
    if int(value.split("/", 1)[0]) < 1:
        raise InvalidField(field, "document numbers start at 1")


def check_dates(
    promulgation: date | None,
    due: date | None,
    today: date,
    *,
    prefix: str = "document.",
) -> None:
    """A promulgation date not after `today` (the province's date), a due date not before
    the promulgation date."""
    if promulgation is not None and promulgation > today:
        raise InvalidField(
            f"{prefix}promulgation_date",
            f"{promulgation.isoformat()} is in the future (today is {today.isoformat()})",
        )
    if promulgation is not None and due is not None and due < promulgation:
        raise InvalidField(
            f"{prefix}due_date",
            f"{due.isoformat()} is before the promulgation date {promulgation.isoformat()}",
        )


def check_arrival(doc: Document, today: date) -> None:
    """Everything RegisterIncoming and an edXML arrival check alike."""
    check_number_notation(doc.number_notation)
    check_dates(doc.promulgation_date, doc.due_date, today)


def arrival_refusal_vi(doc: Document, today: date) -> str:
    """ "" when `doc` passes `check_arrival`; else the Vietnamese sentence a status 02 carries."""
    try:
        check_arrival(doc, today)
    except InvalidField as e:
        if e.field.endswith("number_notation"):
            return f"Số và ký hiệu văn bản không hợp lệ: “{doc.number_notation.strip()[:100]}”."
        if e.field.endswith("promulgation_date") and doc.promulgation_date:
            return f"Ngày ban hành {doc.promulgation_date:%d/%m/%Y} sau ngày nhận {today:%d/%m/%Y}."
        if e.field.endswith("due_date") and doc.due_date and doc.promulgation_date:
            return (
                f"Hạn xử lý {doc.due_date:%d/%m/%Y} trước ngày ban hành "
                f"{doc.promulgation_date:%d/%m/%Y}."
            )
        return "Văn bản không hợp lệ."
    return ""


def same_document(earlier: Document, sender: str, number_notation: str, on: date | None) -> bool:
    """Whether `earlier` (in the incoming book) is the document (sender, number, date). One
    refused or recalled does not count: sending it again is how a sender corrects it."""
    return (
        earlier.direction == Direction.INCOMING
        and earlier.sender_agency_code == sender
        and earlier.number_notation.strip().casefold() == number_notation.strip().casefold()
        and earlier.promulgation_date == on
        and (
            earlier.incoming_status in OPEN_INCOMING
            or earlier.incoming_status == IncomingStatus.DONE
        )
    )


def signer_warning(sender_code: str, signer_code: str) -> ArrivalWarning | None:
    """A warning when the main text's certificate names another agency than the sender."""
    if not signer_code or signer_code == sender_code:
        return None
    return ArrivalWarning(
        SIGNER_AGENCY_MISMATCH,
        f"Văn bản được ký số bằng chứng thư của đơn vị có mã định danh {signer_code}, "
        f"không phải của đơn vị gửi ({sender_code}). Đề nghị kiểm tra trước khi tiếp nhận.",
    )
