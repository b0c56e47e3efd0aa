"""What the use cases need from the outside world, as small interfaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lgsp.agencies import Agency

__all__ = [
    "Agency",
    "AgencyDirectory",
    "DocumentSigner",
    "SignatureCheck",
    "SignatureVerifier",
    "SigningIdentity",
]


class AgencyDirectory(Protocol):
    """The province's agencies (lgsp.agencies: identity's tree in production, a static list in
    tests). It is also the agency tree the role checks walk."""

    def get(self, code: str) -> Agency | None: ...

    def codes(self) -> Sequence[str]:
        """Every agency code of the province."""
        ...

    def ancestors(self, code: str) -> Sequence[str]: ...

    def descendants(self, code: str) -> Sequence[str]: ...


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on a PDF's digital (PAdES) signatures."""

    valid: bool  # every signature verified against a trusted, unrevoked certificate
    signed: bool  # the file carries at least one signature
    reason_vi: str = ""  # why not valid, as sent back with edXML status 02
    detail: str = ""  # English, for logs
    signer_serial: str = ""
    signer_name: str = ""
    signer_agency_code: str = ""  # the certificate's organizationIdentifier


@dataclass(frozen=True)
class SigningIdentity:
    """Who signs: the official's user id (token subject), name and agency."""

    user_id: str
    full_name: str
    agency_code: str
    agency_name: str


class SignatureVerifier(Protocol):
    """Checks the PAdES signatures of a PDF (against the CA the province trusts)."""

    def verify(self, pdf: bytes) -> SignatureCheck: ...

    def owner_of(self, serial: str) -> str:
        """User id the certificate with `serial` was issued to ("" if unknown)."""
        ...


class DocumentSigner(Protocol):
    """Signs a PDF with the official's certificate; returns the signed PDF and the serial."""

    def sign(
        self, pdf: bytes, who: SigningIdentity, *, reason: str, location: str
    ) -> tuple[bytes, str]: ...
