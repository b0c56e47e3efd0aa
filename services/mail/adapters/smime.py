"""S/MIME with the development CA (lgsp/ca.py): signing with an official's certificate
(cryptography's PKCS7SignatureBuilder) and verifying any signed message (pyHanko's CMS
validation with pyhanko-certvalidator: chain to the CA's root, revocation from its CRLs).

cryptography has no public PKCS#7 verification, and hand-written CMS checking is exactly
what the codebase's rules say not to write; pyHanko is already how documents verifies PDFs.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from pyhanko.sign.validation.generic_cms import (
    async_validate_cms_signature,
    async_validate_detached_cms,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import StandardCMSSignatureStatus
from pyhanko_certvalidator import ValidationContext

from lgsp.ca import DevCA, certificate_emails
from services.mail.domain.errors import Conflict
from services.mail.domain.smime import (
    MALFORMED,
    REVOKED,
    TAMPERED,
    UNTRUSTED,
    Detached,
    SignatureCheck,
    SignatureStatus,
    Signer,
    find_signature,
)

log = logging.getLogger("services.mail.smime")

# digitalSignature (RFC 8550 §4.4.2); the CA also sets nonRepudiation, not required here.
_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature"}, match_all_key_usages=False)


class DevCASmime:
    """Signs and verifies S/MIME with the DevCA in `directory`."""

    def __init__(self, directory: str | Path, *, auto_issue: bool = True) -> None:
        self.ca = DevCA.open_or_create(directory)
        self.auto_issue = auto_issue

    # --- signing ---------------------------------------------------------------------------

    def sign(self, data: bytes, who: Signer) -> bytes:
        """The detached DER signature of `data` (SHA-256, signer certificate and the chain
        below the root included) with the official's certificate for `who.email`."""
        serial = self.ca.ensure_official(
            user_id=who.user_id,
            full_name=who.full_name,
            agency_name=who.agency_name,
            agency_code=who.agency_code,
            email=who.email,
            auto_issue=self.auto_issue,
        )
        if not serial:
            raise Conflict(
                f"{who.user_id} has no valid certificate for {who.email}; an administrator "
                "issues one with `lgsp documents ca issue --user … --email …`"
            )
        credential = self.ca.credential(serial)
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
        builder = builder.add_signer(
            credential.certificate, credential.private_key, hashes.SHA256()
        )
        for cert in credential.chain:
            builder = builder.add_certificate(cert)
        # Binary: `data` is already canonical (CRLF); cryptography must not translate it.
        return builder.sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )

    # --- verifying -------------------------------------------------------------------------

    def verify(self, raw: bytes) -> SignatureCheck:
        """The verdict on `raw`'s S/MIME signature: UNSIGNED, or whether it is intact,
        chains to the CA's root and is not revoked. The sender match is the caller's
        (domain.smime.check_sender). Hostile input gives INVALID, never an exception."""
        found = find_signature(raw)
        if found is None:
            return SignatureCheck(SignatureStatus.UNSIGNED)
        try:
            if isinstance(found, Detached):
                return self._validate(_signed_data(found.signature), found.content)
            return self._validate(_signed_data(found.der), None)  # opaque: content inside
        except Exception as e:  # asn1crypto parses lazily: malformed DER fails anywhere
            log.info("unreadable S/MIME signature: %s", e)
            return SignatureCheck(
                SignatureStatus.INVALID, reason=MALFORMED, detail=f"unreadable: {e}"
            )

    def _validate(self, signed: cms.SignedData, detached: bytes | None) -> SignatureCheck:
        self.ca.refresh_crls()
        context = ValidationContext(
            trust_roots=[_asn1(self.ca.root_cert)],
            other_certs=[_asn1(self.ca.intermediate_cert)],
            crls=self.ca.crls(),
            allow_fetching=False,
            # Every certificate below the root must have revocation information here: a
            # missing or stale CRL refuses the signature rather than passing it unchecked.
            revocation_mode="require",
        )
        # pyHanko's validation is async; the use cases run in worker threads with no loop.
        if detached is None:
            status = asyncio.run(
                async_validate_cms_signature(
                    signed,
                    status_cls=StandardCMSSignatureStatus,
                    validation_context=context,
                    key_usage_settings=_KEY_USAGE,
                )
            )
        else:
            status = asyncio.run(
                async_validate_detached_cms(
                    detached,
                    signed,
                    signer_validation_context=context,
                    key_usage_settings=_KEY_USAGE,
                )
            )
        cert = status.signing_cert
        subject = cert.subject.native if cert is not None else {}
        emails = tuple(sorted(certificate_emails(_crypto(cert)))) if cert is not None else ()
        base = SignatureCheck(
            SignatureStatus.VALID,
            signer_name=str(subject.get("common_name", "")),
            signer_emails=emails,
            certificate_serial=format(cert.serial_number, "x") if cert is not None else "",
            signing_time=status.signer_reported_dt,
        )
        if not status.intact or not status.valid:
            return _with(base, SignatureStatus.INVALID, TAMPERED, "digest or signature mismatch")
        if status.trusted:
            return base
        indication = str(status.trust_problem_indic or "")
        if "REVOKED" in indication.upper():
            return _with(base, SignatureStatus.REVOKED, REVOKED, indication)
        return _with(base, SignatureStatus.UNTRUSTED, UNTRUSTED, indication or "no trusted chain")


def _with(
    base: SignatureCheck, status: SignatureStatus, reason: str, detail: str
) -> SignatureCheck:
    return SignatureCheck(
        status,
        base.signer_name,
        base.signer_emails,
        base.certificate_serial,
        reason,
        base.signing_time,
        detail,
    )


def _signed_data(der: bytes) -> cms.SignedData:
    if not der:
        raise ValueError("no signature")
    info = cms.ContentInfo.load(der)
    if info["content_type"].native != "signed_data":
        raise ValueError(f"not signed-data but {info['content_type'].native}")
    signed = info["content"]
    signed.native  # parse it all now, so a malformed one fails here  # noqa: B018
    return signed


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _crypto(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())
