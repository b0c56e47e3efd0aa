"""Số và ký hiệu văn bản: the numbering rules of Nghị định 30/2020 (Appendix I, section II.3).

- Each agency keeps one book (sổ đăng ký) per year for its administrative documents and a
  separate one for legal documents; the incoming documents have their own book too. Numbers
  run from 1 on 1 January to 31 December, unique and without gaps (the storage layer
  increments the book's counter in the same transaction as the issue).
- The number is written in Arabic digits, with a leading 0 below 10: "05".
- Notation (ký hiệu): for a typed document "<type>-<agency>", e.g. "05/QĐ-UBND"; for a công
  văn (and a thư công) "<agency>-<drafting unit>", e.g. "123/UBND-VP"; for a legal document
  the year comes first: "28/2018/QĐ-TTg".
- Numbers follow dates (`check_promulgation_date`): a book closes when its year ends, so a
  document cannot be dated into a past year's book; within a year no number carries a date
  earlier than the number before it; and no document is dated after the day it is issued.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from .document_types import DocumentKind
from .errors import InvalidField, InvalidTransition


class Book(enum.StrEnum):
    """A register (sổ): which sequence a number comes from."""

    OUTGOING = "outgoing"  # văn bản hành chính đi
    LEGAL = "legal"  # văn bản quy phạm pháp luật
    INCOMING = "incoming"  # văn bản đến


def book_for(kind: DocumentKind) -> Book:
    return Book.LEGAL if kind.legal else Book.OUTGOING


_ABBREVIATION = re.compile(r"^[^\W_](?:[\w.]*[^\W_])?$")


def format_number(number: int) -> str:
    """ "05" for 5, "123" for 123: numbers below 10 get a leading zero."""
    if number < 1:
        raise ValueError("document numbers start at 1")
    return f"{number:02d}"


def notation(
    kind: DocumentKind, agency_abbreviation: str, year: int, drafting_unit: str = ""
) -> str:
    """The ký hiệu printed after the number and its slash."""
    agency = agency_abbreviation.strip()
    if not _ABBREVIATION.match(agency):
        raise InvalidField("agency_code", "the issuing agency has no usable abbreviation")
    unit = drafting_unit.strip()
    if unit and not _ABBREVIATION.match(unit):
        raise InvalidField("document.drafting_unit", "an abbreviation of letters and digits")
    if kind.legal:
        return f"{year}/{kind.abbreviation}-{agency}"
    if not kind.abbreviation:  # công văn, thư công
        return f"{agency}-{unit}" if unit else agency
    return f"{kind.abbreviation}-{agency}"


@dataclass(frozen=True)
class IssuedNumber:
    """A number taken from a book, with the notation it is printed with."""

    book: Book
    year: int
    number: int
    notation: str

    @property
    def number_notation(self) -> str:
        return f"{format_number(self.number)}/{self.notation}"


def split_number_notation(text: str) -> tuple[int, str]:
    """(123, "QĐ-UBND") from "123/QĐ-UBND" (an incoming document's printed number); (0, text)
    when it has no leading number."""
    head, sep, rest = text.strip().partition("/")
    if sep and head.isdigit():
        return int(head), rest
    return 0, text.strip()


def check_promulgation_date(on: date, today: date, last_in_book: date | None) -> None:
    """Refuse a promulgation date that would make numbers stop following dates.

    `today` is the province's date; `last_in_book` the date of the highest number already
    issued in the book of `on`'s year (None if the book is empty)."""
    if on > today:
        raise InvalidField(
            "promulgation_date",
            f"{on.isoformat()} is after today ({today.isoformat()}); a document is dated "
            "the day it is issued",
        )
    if on.year < today.year:
        raise InvalidTransition(
            f"promulgation_date: the {on.year} book is closed (numbers run from 1 January "
            f"to 31 December); issue the document in the {today.year} book with this "
            "year's date",
            subject="promulgation_date",
        )
    if last_in_book is not None and on < last_in_book:
        raise InvalidTransition(
            f"promulgation_date: {on.isoformat()} is earlier than the book's last number, "
            f"issued on {last_in_book.isoformat()}; numbers follow dates",
            subject="promulgation_date",
        )
