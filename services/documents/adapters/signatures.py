"""Digital signatures with the development CA (services/documents/signing): PAdES signing
with the official's own certificate, and verification against the CA's root and CRLs.

Certificates: SignDocument looks for the signer's valid official certificate (issued to its
user id, e.g. by `lgsp documents ca issue --user …`). With `auto_issue` (the embedded default) a
signer without one gets one on first use; without it the signature is refused until an admin
issues one."""

from __future__ import annotations

from pathlib import Path

from services.documents.domain.errors import InvalidTransition
from services.documents.service_layer.ports import SignatureCheck, SigningIdentity
from services.documents.signing import DevCA, Refusal, sign_pdf, verify_with_ca


class DevCASignatures:
    """SignatureVerifier and DocumentSigner over the DevCA in `directory` (<data_dir>/ca)."""

    def __init__(self, directory: str | Path, *, auto_issue: bool = True) -> None:
        self.ca = DevCA.open_or_create(directory)
        self.auto_issue = auto_issue

    def verify(self, pdf: bytes) -> SignatureCheck:
        self.ca.refresh_crls()
        r = verify_with_ca(pdf, self.ca)
        return SignatureCheck(
            valid=r.valid,
            signed=r.refusal != Refusal.NO_SIGNATURE,
            reason_vi="" if r.valid else r.reason_vi,
            detail=r.detail,
            signer_serial=r.signer_serial,
            signer_name=r.signer_name,
            signer_agency_code=r.signer_agency_code,
        )

    def owner_of(self, serial: str) -> str:
        entry = self.ca.certificates().get(serial.lower())
        return str(entry.get("user_id") or "") if entry else ""

    def certificate_of(self, user_id: str) -> str:
        """Serial of the signer's newest valid official certificate; "" if none."""
        return self.ca.official_serial(user_id)

    def sign(
        self, pdf: bytes, who: SigningIdentity, *, reason: str, location: str
    ) -> tuple[bytes, str]:
        serial = self.ca.ensure_official(
            user_id=who.user_id,
            full_name=who.full_name,
            agency_name=who.agency_name,
            agency_code=who.agency_code,
            auto_issue=self.auto_issue,
        )
        if not serial:
            raise InvalidTransition(
                f"sign: {who.user_id} has no valid signing certificate; an admin issues "
                f"one with `lgsp documents ca issue --user …`"
            )
        credential = self.ca.credential(serial)
        return sign_pdf(pdf, credential, reason=reason, location=location), serial
