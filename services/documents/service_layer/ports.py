"""What the use cases need from the outside world, as small interfaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    short_name: str  # abbreviation used in notations: "UBND", "STP"
    parent_code: str = ""
    place_name: str = ""  # printed before the promulgation date: "Hà Tĩnh"


class AgencyDirectory(Protocol):
    """The province's agencies (identity service in production, a static list in tests).
    It is also the agency tree the role checks walk."""

    def get(self, code: str) -> Agency | None: ...

    def ancestors(self, code: str) -> Sequence[str]: ...

    def descendants(self, code: str) -> Sequence[str]: ...


class SignatureVerifier(Protocol):
    """Whether an attachment of a document holds a valid digital (PAdES) signature."""

    def verify(self, document_id: str, attachment_id: str) -> bool: ...


class NoSignatures:
    """Until the attachments store and PAdES checks are wired: no digital signature can be
    recorded (SignDocument with a signed_attachment_id is refused)."""

    def verify(self, document_id: str, attachment_id: str) -> bool:
        from services.documents.domain.errors import InvalidField

        raise InvalidField("signed_attachment_id", "no such attachment on the document")
