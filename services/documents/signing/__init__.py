"""Digital signatures: a development CA and PAdES signing/verification with pyHanko.

ca = DevCA.open_or_create(data_dir / "ca")
official = ca.issue_official(full_name="Nguyễn Văn An", agency_name="UBND tỉnh Hà Tĩnh",
                             agency_code="000.00.00.H27", email="an@hatinh.gov.vn")
signed = sign_pdf(pdf, official, reason="Ký ban hành", location="Hà Tĩnh")
result = verify_pdf(signed, [ca.root_cert], ca.crls(), [ca.intermediate_cert])
result.valid, result.refusal, result.reason_vi
"""

from lgsp.ca import REVOCATION_REASONS, CAError, Credential, DevCA

from .pades import Refusal, SigningError, VerificationResult, sign_pdf, verify_pdf


def verify_with_ca(pdf: bytes, ca: DevCA) -> VerificationResult:
    """Verify against the development CA as the trust anchor, with its published CRLs."""
    return verify_pdf(pdf, [ca.root_cert], ca.crls(), [ca.intermediate_cert])


__all__ = [
    "REVOCATION_REASONS",
    "CAError",
    "Credential",
    "DevCA",
    "Refusal",
    "SigningError",
    "VerificationResult",
    "sign_pdf",
    "verify_pdf",
    "verify_with_ca",
]
