"""Messages as RFC 5322 bytes: what the store lists of them (parse_summary), their bodies and
attachments (read_bodies, read_attachment), and the composing of a message sent through the
API (compose). Mail from outside may be malformed: parsing never raises, it takes what it
can (Python's email package records defects instead of failing) and falls back to empty;
the one exception is parse_summary's refusal of a MIME bomb nested past MAX_MIME_DEPTH.
"""

from __future__ import annotations

import email.utils
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import Header
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser

from services.mail.domain.addresses import (
    MAX_DISPLAY_NAME,
    MAX_SUBJECT,
    check_header_text,
    normalize_address,
    split,
)
from services.mail.domain.authresults import Authentication
from services.mail.domain.errors import InvalidField, TooComplex, TooLarge
from services.mail.domain.html import text_of
from services.mail.domain.smime import is_signature_part, readable, signed_message


@dataclass(frozen=True)
class Address:
    address: str
    display_name: str = ""


@dataclass(frozen=True)
class Attachment:
    id: str  # its place among the message's attachments, "1", "2", …
    file_name: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Summary:
    """The headers the store keeps beside the raw bytes, for listing and searching."""

    message_id: str
    subject: str
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    send_time: datetime | None
    in_reply_to: str
    attachments: tuple[Attachment, ...] = field(default=())


# Multiparts and message/rfc822 inside each other. Postfix refuses past 100
# (mime_nesting_limit); ours is lower because pymap writes BODYSTRUCTURE recursively, and a
# stored message it cannot write breaks the IMAP connection of every FETCH of the mailbox.
MAX_MIME_DEPTH = 50


def _parse(raw: bytes) -> Message:
    return BytesParser(policy=policy.default).parsebytes(readable(raw))


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except Exception:  # an undecodable header in mail from outside
        return ""


def _addresses(msg: Message, name: str) -> tuple[Address, ...]:
    try:
        values = msg.get_all(name) or []
        pairs = email.utils.getaddresses([str(v) for v in values])
    except Exception:
        return ()
    return tuple(Address(a.lower(), " ".join(n.split())) for n, a in pairs if "@" in a)


def _date(msg: Message) -> datetime | None:
    try:
        d = email.utils.parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _strip_brackets(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">")[:250]


def _attachment_parts(msg: Message) -> list[Message]:
    try:
        return [
            p
            for p in msg.walk()
            if not p.is_multipart() and p.get_filename() is not None and not is_signature_part(p)
        ]
    except Exception:
        return []


def _content(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _depth(msg: Message) -> int:
    """How many containers deep the message's MIME tree goes (walked without recursion)."""
    deepest, todo = 0, [(msg, 0)]
    while todo:
        part, depth = todo.pop()
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            depth += 1
            deepest = max(deepest, depth)
            todo.extend((child, depth) for child in children if isinstance(child, Message))
    return deepest


def parse_summary(raw: bytes) -> Summary:
    """Raises TooComplex for a MIME bomb, which the store must not take (see MAX_MIME_DEPTH)."""
    try:
        msg = _parse(raw)
    except RecursionError:  # the stdlib parser recurses once per level
        raise TooComplex("the message is too deeply nested") from None
    if _depth(msg) > MAX_MIME_DEPTH:
        raise TooComplex(f"the message is too deeply nested: at most {MAX_MIME_DEPTH} levels")
    senders = _addresses(msg, "From")
    attachments = []
    for i, part in enumerate(_attachment_parts(msg), 1):
        data = _content(part)
        attachments.append(
            Attachment(
                str(i),
                str(part.get_filename() or f"attachment-{i}")[:255],
                part.get_content_type(),
                len(data),
                hashlib.sha256(data).hexdigest(),
            )
        )
    return Summary(
        message_id=_strip_brackets(_header(msg, "Message-ID")),
        subject=_header(msg, "Subject")[:MAX_SUBJECT],
        sender=senders[0] if senders else Address(""),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        send_time=_date(msg),
        in_reply_to=_strip_brackets(_header(msg, "In-Reply-To")),
        attachments=tuple(attachments),
    )


def read_bodies(raw: bytes) -> tuple[str, str]:
    """The plain-text and HTML bodies ("" when absent or unreadable), lines ending LF."""
    msg = _parse(raw)
    out = []
    for kind in ("plain", "html"):
        try:
            part = msg.get_body(preferencelist=(kind,))  # type: ignore[attr-defined]
            out.append(part.get_content().replace("\r\n", "\n") if part is not None else "")
        except Exception:
            out.append("")
    return out[0], out[1]


def originators(raw: bytes) -> list[str]:
    """The From and Sender addresses (RFC 5322 §3.6.2), which a signer must match."""
    msg = _parse(raw)
    return [a.address for name in ("From", "Sender") for a in _addresses(msg, name)]


def read_attachment(raw: bytes, attachment_id: str) -> tuple[Attachment, bytes] | None:
    parts = _attachment_parts(_parse(raw))
    if not attachment_id.isdigit() or not 1 <= int(attachment_id) <= len(parts):
        return None
    part = parts[int(attachment_id) - 1]
    data = _content(part)
    meta = Attachment(
        attachment_id,
        str(part.get_filename())[:255],
        part.get_content_type(),
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    return meta, data


@dataclass(frozen=True)
class Outgoing:
    """A message to send, as the API gives it."""

    sender: Address
    to: Sequence[Address]
    cc: Sequence[Address] = ()
    bcc: Sequence[Address] = ()
    subject: str = ""
    text_body: str = ""
    html_body: str = ""
    attachments: Sequence[tuple[str, str, bytes]] = ()  # file name, content type, content
    in_reply_to: str = ""
    sender_agent: Address | None = None  # the official sending for an agency mailbox


def check_recipients(field_name: str, addresses: Sequence[Address]) -> list[Address]:
    out = []
    for i, a in enumerate(addresses):
        out.append(
            Address(
                normalize_address(a.address, f"{field_name}[{i}].address"),
                check_header_text(
                    f"{field_name}[{i}].display_name", a.display_name, MAX_DISPLAY_NAME
                ),
            )
        )
    return out


def compose(
    out: Outgoing,
    *,
    domain: str,
    max_bytes: int,
    now: datetime,
    sign: Callable[[bytes], bytes] | None = None,
) -> tuple[bytes, str, list[str]]:
    """The RFC 5322 bytes of `out`, its Message-ID and every envelope recipient. Refuses
    (InvalidField naming the field) what would break the headers or the size limit. With
    `sign` (signed bytes → detached DER signature) the message is S/MIME multipart/signed."""
    to = check_recipients("to", out.to)
    cc = check_recipients("cc", out.cc)
    bcc = check_recipients("bcc", out.bcc)
    if not (to or cc or bcc):
        raise InvalidField("to", "at least one recipient in to, cc or bcc")
    check_header_text("subject", out.subject, MAX_SUBJECT)
    check_header_text("mailbox_address", out.sender.display_name, MAX_DISPLAY_NAME)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _header_address(out.sender)
    if to:
        msg["To"] = [_header_address(a) for a in to]
    if cc:
        msg["Cc"] = [_header_address(a) for a in cc]
    msg["Date"] = email.utils.format_datetime(now)
    message_id = f"{uuid.uuid4()}@{domain}"
    msg["Message-ID"] = f"<{message_id}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{out.in_reply_to}>"
        msg["References"] = f"<{out.in_reply_to}>"
    if out.sender_agent is not None:  # RFC 5322 §3.6.2: who sends for the mailbox in From
        check_header_text("sign", out.sender_agent.display_name, MAX_DISPLAY_NAME)
        msg["Sender"] = _header_address(out.sender_agent)
    if sign is None:
        _fill(msg, out)
        raw = msg.as_bytes()
    else:
        # RFC 8551 §3.1: what is signed must survive 7-bit transport unchanged, so its text
        # is quoted-printable or base64, never 8bit; lines end CRLF (policy.SMTP).
        entity = EmailMessage(policy=policy.SMTP.clone(cte_type="7bit"))
        _fill(entity, out)
        del entity["MIME-Version"]
        signed = entity.as_bytes()
        head = b"".join(policy.SMTP.fold_binary(k, v) for k, v in msg.items())
        raw = signed_message(head, signed, sign(signed))
    raw = b"Subject: " + _subject_header(out.subject) + b"\r\n" + raw
    if len(raw) > max_bytes:
        raise TooLarge(f"the message is {len(raw)} bytes; at most {max_bytes}")
    return raw, message_id, [a.address for a in (*to, *cc, *bcc)]


def _fill(msg: EmailMessage, out: Outgoing) -> None:
    """The body: text, the HTML alternative, the attachments."""
    text = out.text_body or (text_of(out.html_body) if out.html_body else "")
    msg.set_content(text)
    if out.html_body:
        msg.add_alternative(out.html_body, subtype="html")
    for i, (name, ctype, content) in enumerate(out.attachments):
        check_header_text(f"attachments[{i}].file_name", name, 255)
        if not name.strip():
            raise InvalidField(f"attachments[{i}].file_name", "required")
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        if not maintype or not subtype or any(c in ctype for c in "\r\n;"):
            raise InvalidField(
                f"attachments[{i}].content_type", "a MIME type such as application/pdf"
            )
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)


def _subject_header(subject: str) -> bytes:
    """The Subject's value as RFC 2047 encoded words, folded. Not through EmailMessage:
    Python 3.11's folder turns the space between two encoded words into folding white space,
    which RFC 2047 §6.2 says a reader drops ("xử lý" arrived as "xửlý"); the legacy Header
    encoder keeps every space inside an encoded word."""
    if not subject:
        return b""
    charset = "us-ascii" if subject.isascii() else "utf-8"
    return Header(subject, charset, header_name="Subject").encode(linesep="\r\n").encode()


def _header_address(a: Address) -> HeaderAddress:
    local, domain = split(a.address)
    return HeaderAddress(display_name=a.display_name, username=local, domain=domain)


@dataclass
class Stored:
    """One copy of a message in one mailbox folder."""

    id: str
    mailbox_address: str
    folder_id: str
    uid: int
    summary: Summary
    internal_date: datetime
    size: int
    blob_sha256: str
    bcc: tuple[Address, ...] = ()
    seen: bool = False
    flagged: bool = False
    answered: bool = False
    related_document_id: str = ""
    related_receipt_code: str = ""
    request_id: str | None = None
    authentication: Authentication | None = None  # SPF/DKIM at receipt (inbound mail)
