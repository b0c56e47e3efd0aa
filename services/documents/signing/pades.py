"""PAdES signatures on PDFs with pyHanko: sign with an official's key, verify on receipt.

Signing embeds a PAdES baseline B-B signature (CAdES detached, SHA-256) with the signer's
certificate and chain, in a new signature field, by an incremental update. Verification checks,
in order: that there is a signature, that the signed bytes are intact and cover the document
(nothing but signature-safe updates after it), that the chain ends at a trusted root, that no
certificate in it is revoked (CRLs, hard-fail) and that it was valid at the signing time.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from lgsp.ca import Credential


class SigningError(ValueError):
    """The PDF cannot be signed (not a PDF, encrypted, damaged…)."""


class Refusal(enum.StrEnum):
    """Why a signed document is refused (sent back with edXML status 02)."""

    NO_SIGNATURE = "no_signature"
    TAMPERED = "tampered"
    UNTRUSTED = "untrusted"
    REVOKED = "revoked"
    EXPIRED = "expired"
    MALFORMED = "malformed"

    @property
    def vietnamese(self) -> str:
        """The reason as officials read it in the refusal."""
        return _VIETNAMESE[self]


_VIETNAMESE = {
    Refusal.NO_SIGNATURE: "Văn bản không có chữ ký số.",
    Refusal.TAMPERED: "Văn bản đã bị thay đổi sau khi ký số; chữ ký không còn toàn vẹn.",
    Refusal.UNTRUSTED: "Chứng thư số của người ký không do tổ chức cung cấp dịch vụ chứng thực "
    "chữ ký số được tin cậy cấp.",
    Refusal.REVOKED: "Chứng thư số của người ký đã bị thu hồi.",
    Refusal.EXPIRED: "Chứng thư số của người ký đã hết hạn hoặc chưa có hiệu lực tại thời điểm ký.",
    Refusal.MALFORMED: "Tệp PDF bị lỗi, không đọc được chữ ký số.",
}


@dataclass(frozen=True)
class VerificationResult:
    """The verdict on a PDF's signatures; `valid` only if every signature passed."""

    valid: bool
    refusal: Refusal | None = None
    detail: str = ""  # English, for logs
    signer_name: str = ""
    signer_serial: str = ""  # lowercase hex, as DevCA names it
    signer_organization: str = ""
    # organizationIdentifier (OID 2.5.4.97): the agency code official certificates carry.
    signer_agency_code: str = ""
    signing_time: dt.datetime | None = None
    signatures: int = 0

    @property
    def reason_vi(self) -> str:
        return self.refusal.vietnamese if self.refusal else "Chữ ký số hợp lệ."


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(
    pdf: bytes,
    credential: Credential,
    *,
    reason: str = "",
    location: str = "",
    field_name: str | None = None,
    contact: str = "",
) -> bytes:
    """The PDF with the signer's PAdES-B-B signature appended (incremental update)."""
    key = asn1_keys.PrivateKeyInfo.load(
        credential.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(credential.certificate),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(c) for c in credential.chain]),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        existing = len(PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures)
        meta = signers.PdfSignatureMetadata(
            field_name=field_name or f"Signature{existing + 1}",
            reason=reason or None,
            location=location or None,
            contact_info=contact or None,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        out = signers.sign_pdf(writer, meta, signer=signer)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"cannot sign this PDF: {exc}") from None
    return out.getvalue()


def validation_context(
    trust_roots: Iterable[x509.Certificate],
    crls: Iterable[bytes],
    other_certs: Iterable[x509.Certificate] = (),
    moment: dt.datetime | None = None,
) -> ValidationContext:
    """Trust only `trust_roots`; revocation from the given CRLs, never fetched, required.

    "require": every certificate below the root must have revocation information here, so a
    missing or stale CRL refuses the signature rather than passing it unchecked.
    """
    return ValidationContext(
        trust_roots=[_asn1_cert(c) for c in trust_roots],
        other_certs=[_asn1_cert(c) for c in other_certs],
        crls=list(crls),
        allow_fetching=False,
        revocation_mode="require",
        moment=moment,
    )


# Documents are signed for non-repudiation; digitalSignature alone is accepted too, as some
# national CA profiles set only that bit.
_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature"}, match_all_key_usages=False)


def verify_pdf(
    pdf: bytes,
    trust_roots: Iterable[x509.Certificate],
    crls: Iterable[bytes],
    other_certs: Iterable[x509.Certificate] = (),
) -> VerificationResult:
    """Verify every signature of `pdf`; the first failure decides the refusal."""
    roots, crl_list, others = list(trust_roots), list(crls), list(other_certs)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        return VerificationResult(False, Refusal.MALFORMED, f"unreadable PDF: {exc}")
    if not signatures:
        return VerificationResult(False, Refusal.NO_SIGNATURE, "the PDF has no signature")
    last: VerificationResult | None = None
    for embedded in signatures:
        try:
            status = validate_pdf_signature(
                embedded,
                signer_validation_context=validation_context(roots, crl_list, others),
                key_usage_settings=_KEY_USAGE,
            )
        except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
            return VerificationResult(False, Refusal.MALFORMED, f"{embedded.field_name}: {exc}")
        cert = status.signing_cert
        subject = cert.subject.native if cert is not None else {}
        result = VerificationResult(
            valid=False,
            signer_name=str(subject.get("common_name", "")),
            signer_organization=str(subject.get("organization_name", "")),
            signer_agency_code=_organization_identifier(cert),
            signer_serial=format(cert.serial_number, "x") if cert is not None else "",
            signing_time=status.signer_reported_dt,
            signatures=len(signatures),
        )
        refusal, detail = _refusal(status, embedded.field_name)
        if refusal is not None:
            return _with(result, refusal, detail)
        last = result
    assert last is not None
    return VerificationResult(**{**last.__dict__, "valid": True, "detail": "all signatures valid"})


def _organization_identifier(cert: object) -> str:
    """The subject's organizationIdentifier, read by OID (asn1crypto versions name it
    differently or not at all)."""
    if cert is None:
        return ""
    for rdn in cert.subject.chosen:  # type: ignore[attr-defined]
        for attr in rdn:
            if attr["type"].dotted == "2.5.4.97":
                return str(attr["value"].native).strip()
    return ""


def _with(result: VerificationResult, refusal: Refusal, detail: str) -> VerificationResult:
    return VerificationResult(**{**result.__dict__, "refusal": refusal, "detail": detail})


def _refusal(status: object, field: str) -> tuple[Refusal | None, str]:
    s = status  # PdfSignatureStatus; attributes read defensively across pyHanko versions
    if not getattr(s, "intact", False) or not getattr(s, "valid", False):
        return Refusal.TAMPERED, f"{field}: signed bytes do not match the signature"
    level = getattr(s, "modification_level", None)
    # Later signatures and form filling are what co-signing adds; anything more (content,
    # annotations) means the signed text may read differently now.
    if getattr(s, "docmdp_ok", True) is False or (
        level is not None and level > ModificationLevel.FORM_FILLING
    ):
        return Refusal.TAMPERED, f"{field}: the document was changed after signing ({level})"
    if getattr(s, "trusted", False):
        return None, ""
    indication = str(getattr(s, "trust_problem_indic", "") or "")
    upper = indication.upper()
    if "REVOKED" in upper:
        return Refusal.REVOKED, f"{field}: {indication}"
    if "EXPIRED" in upper or "NOT_YET_VALID" in upper or "OUT_OF_BOUNDS" in upper:
        return Refusal.EXPIRED, f"{field}: {indication}"
    return Refusal.UNTRUSTED, f"{field}: {indication or 'no trusted chain'}"
