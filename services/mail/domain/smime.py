"""S/MIME signed messages (RFC 8551) as MIME structure: building a multipart/signed message
around a signature made elsewhere, finding the signed bytes and the signature in a message,
and what a verification found (`SignatureCheck`), with the reasons officials read.

The cryptography (signing, chain, CRLs) is `adapters/smime.py`; this module only knows where
the bytes are. Signed bytes are taken from the raw message, never from a re-serialised
parse: any re-folding of a header would break the signature.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from asn1crypto import cms


class SignatureStatus(enum.IntEnum):
    """The contract's SignatureStatus, value for value."""

    UNSPECIFIED = 0
    UNSIGNED = 1
    VALID = 2
    INVALID = 3
    UNTRUSTED = 4
    REVOKED = 5


# What officials read (MailMessage.signature.reason).
TAMPERED = "Nội dung đã bị thay đổi sau khi ký"
MALFORMED = "Chữ ký số bị hỏng, không đọc được"
NOT_SENDER = (
    "Địa chỉ thư điện tử trong chứng thư số của người ký ({signer}) không khớp với "
    "người gửi ({sender})"
)
UNTRUSTED = "Chứng thư số không do tổ chức chứng thực tin cậy cấp, hoặc đã hết hạn"
REVOKED = "Chứng thư số của người ký đã bị thu hồi"


@dataclass(frozen=True)
class SignatureCheck:
    status: SignatureStatus
    signer_name: str = ""
    signer_emails: tuple[str, ...] = ()
    certificate_serial: str = ""
    reason: str = ""
    signing_time: datetime | None = None
    detail: str = ""  # for logs, English

    @property
    def signer_email(self) -> str:
        return self.signer_emails[0] if self.signer_emails else ""


UNSIGNED = SignatureCheck(SignatureStatus.UNSIGNED)


@dataclass(frozen=True)
class Signer:
    """Who signs: their certificate names them, their agency and their own mail address
    (also when they send for an agency mailbox: they are then its Sender)."""

    user_id: str
    full_name: str
    agency_code: str
    agency_name: str
    email: str


def check_sender(check: SignatureCheck, senders: Iterable[str]) -> SignatureCheck:
    """RFC 8550 §3: the From or Sender address must be one the signer's certificate names;
    otherwise a valid signature is INVALID (someone signed, but not the sender)."""
    wanted = {s.lower() for s in senders if s}
    if check.status is not SignatureStatus.VALID or wanted & set(check.signer_emails):
        return check
    reason = NOT_SENDER.format(
        signer=", ".join(check.signer_emails) or "không có", sender=", ".join(sorted(wanted))
    )
    return replace(check, status=SignatureStatus.INVALID, reason=reason, detail="not the sender")


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detached:
    """multipart/signed: the first part's bytes as signed, and the DER signature."""

    content: bytes
    signature: bytes


@dataclass(frozen=True)
class Opaque:
    """application/pkcs7-mime signed-data: the DER ContentInfo holding content and signature."""

    der: bytes


def _headers(raw: bytes) -> Message:
    return BytesHeaderParser(policy=policy.compat32).parsebytes(raw)


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    m = re.search(rb"\r?\n\r?\n", raw)
    return (raw, b"") if m is None else (raw[: m.start()], raw[m.end() :])


def _canonical(data: bytes) -> bytes:
    """CRLF line ends (RFC 8551 §3.1.1), whatever a store or a relay made of them."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def find_signature(raw: bytes) -> Detached | Opaque | None:
    """The top-level S/MIME signature of `raw`, if it has one. Never raises: a message
    whose structure cannot be read as signed is given back as a Detached with an empty
    signature (verification then says MALFORMED) when it claims to be signed."""
    try:
        head = _headers(raw)
        ctype = head.get_content_type()
    except Exception:
        return None
    if ctype == "multipart/signed":
        return _detached(raw, str(head.get_param("boundary") or ""))
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        smime_type = str(head.get_param("smime-type") or "").lower()
        if smime_type not in ("", "signed-data"):
            return None  # enveloped-data (encrypted) etc.: not a signature
        return Opaque(_base64(_split_head(raw)[1]))
    return None


def _base64(body: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _detached(raw: bytes, boundary: str) -> Detached:
    broken = Detached(b"", b"")
    if not boundary:
        return broken
    _, body = _split_head(raw)
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*\r?\n")
    marks = list(delimiter.finditer(body))
    if len(marks) < 3 or marks[0].group(1) or marks[1].group(1):
        return broken
    content = body[marks[0].end() : marks[1].start()]
    signature_part = body[marks[1].end() : marks[2].start()]
    part_head, part_body = _split_head(signature_part)
    ptype = _headers(part_head + b"\r\n\r\n").get_content_type()
    if ptype not in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
        return broken
    return Detached(_canonical(content), _base64(part_body))


def opaque_content(der: bytes) -> bytes | None:
    """The MIME entity inside an opaque signed-data (unverified), for reading its text."""
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"].native
    except Exception:  # asn1crypto parses lazily; hostile DER fails anywhere
        return None
    return content if isinstance(content, bytes) else None


def readable(raw: bytes) -> bytes:
    """`raw` as a mail parser should read it: an opaque signed message becomes its outer
    headers (From, Subject…) over the signed entity, so its text and attachments read like
    any other; everything else is returned as it is."""
    found = find_signature(raw) if b"pkcs7-mime" in raw[:65536].lower() else None
    if not isinstance(found, Opaque):
        return raw
    inner = opaque_content(found.der)
    if inner is None:
        return raw
    head, _ = _split_head(raw)
    kept = [
        line
        for line in _unfolded(head)
        if not line.lower().startswith((b"content-", b"mime-version:"))
    ]
    return b"\r\n".join(kept) + b"\r\nMIME-Version: 1.0\r\n" + _canonical(inner)


def _unfolded(head: bytes) -> list[bytes]:
    lines: list[bytes] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\r\n" + line
        else:
            lines.append(line)
    return lines


# --- writing ---------------------------------------------------------------------------------

PREAMBLE = b"This is a cryptographically signed message in MIME format.\r\n"


def signed_message(head: bytes, entity: bytes, signature: bytes) -> bytes:
    """RFC 8551 §3.5.3 multipart/signed: `head` (the message's own header lines, CRLF-ended,
    no Content-Type), the signed `entity` exactly as signed, the detached DER `signature`."""
    boundary = f"----=_lgsp_smime_{uuid.uuid4().hex}"
    b64 = base64.encodebytes(signature).replace(b"\n", b"\r\n")
    return b"".join(
        [
            head,
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n',
            f' micalg=sha-256; boundary="{boundary}"\r\n'.encode(),
            b"\r\n",
            PREAMBLE,
            f"\r\n--{boundary}\r\n".encode(),
            entity,
            f"\r\n--{boundary}\r\n".encode(),
            b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n',
            b"Content-Transfer-Encoding: base64\r\n",
            b'Content-Disposition: attachment; filename="smime.p7s"\r\n',
            b"Content-Description: S/MIME Cryptographic Signature\r\n",
            b"\r\n",
            b64,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


def is_signature_part(part: Message) -> bool:
    """The signature of a multipart/signed: not an attachment the official opens."""
    return part.get_content_type() in (
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    )
