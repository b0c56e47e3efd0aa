"""Delivery status notifications (RFC 3464) for mail that could not be delivered: a
multipart/report (RFC 6522) with report-type=delivery-status, whose first part tells the
sender in Vietnamese and English what happened, the second the machine-readable status
(per-message and per-recipient fields, RFC 3464 §2.2–2.3) and the third the headers of the
message that failed (text/rfc822-headers). Sent from MAILER-DAEMON with the null reverse
path `<>`, so it is never itself bounced (RFC 5321 §4.5.5)."""

from __future__ import annotations

import base64
import email.utils
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header

from services.mail.domain.message import parse_summary

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Failure:
    """One recipient that failed for good."""

    recipient: str
    smtp_code: int  # e.g. 550; 0 when no server answered (gave up after retries)
    reason: str  # the remote server's reply text, or the local reason
    remote_mta: str = ""  # the server that answered, when one did


def status_of(code: int, reason: str) -> str:
    """The RFC 3463 status: the enhanced code in the reply when it has one, else from the
    basic code (5xx → 5.0.0; no answer at all → 4.4.7, "delivery time expired")."""
    m = _STATUS.search(reason)
    if m and m.group(1) in "45":
        return f"5.{m.group(2)}.{m.group(3)}" if code >= 500 or code == 0 else m.group(0)
    if code >= 500:
        return "5.0.0"
    return "4.4.7"


def original_headers(raw: bytes) -> bytes:
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    return b"\r\n".join(head.splitlines()) + b"\r\n"


def _text(subject: str, failure: Failure, status: str) -> str:
    said = f"{failure.smtp_code} {failure.reason}".strip() if failure.smtp_code else failure.reason
    return (
        "Đây là thông báo tự động của hệ thống thư điện tử công vụ.\r\n\r\n"
        f"Thư của bạn với tiêu đề «{subject}» không gửi được đến người nhận:\r\n\r\n"
        f"    {failure.recipient}\r\n\r\n"
        f"Lý do: {said}\r\n"
        f"Mã trạng thái: {status}\r\n\r\n"
        "Thư sẽ không được gửi lại. Vui lòng kiểm tra địa chỉ người nhận hoặc liên hệ bộ "
        "phận quản trị thư điện tử của cơ quan.\r\n\r\n"
        "-- \r\n"
        "This is the mail system's automatic notice.\r\n\r\n"
        f'Your message "{subject}" could not be delivered to:\r\n\r\n'
        f"    {failure.recipient}\r\n\r\n"
        f"Reason: {said}\r\n"
        f"Status: {status}\r\n\r\n"
        "It will not be retried. Please check the address or contact your mail administrator.\r\n"
    )


def delivery_status_notification(
    original: bytes,
    failure: Failure,
    *,
    to: str,
    reporting_mta: str,
    domain: str,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """The RFC 5322 bytes of the DSN about `original` for `failure`, addressed to `to`."""
    subject = parse_summary(original).subject or "(không có tiêu đề)"
    status = status_of(failure.smtp_code, failure.reason)
    boundary = f"=_lgsp_dsn_{uuid.uuid4().hex}"
    diagnostic = (
        f"smtp; {failure.smtp_code} {_one_line(failure.reason)}"
        if failure.smtp_code
        else f"X-LGSP; {_one_line(failure.reason)}"
    )
    fields = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {email.utils.format_datetime(arrival)}",
        "",
        f"Final-Recipient: rfc822; {failure.recipient}",
        "Action: failed",
        f"Status: {status}",
    ]
    if failure.remote_mta:
        fields.append(f"Remote-MTA: dns; {failure.remote_mta}")
    fields += [f"Diagnostic-Code: {diagnostic}", f"Last-Attempt-Date: {_date(now)}"]
    human = base64.encodebytes(_text(subject, failure, status).encode()).replace(b"\n", b"\r\n")
    head = "\r\n".join(
        [
            f"From: {Header('Hệ thống thư điện tử', 'utf-8').encode()} <MAILER-DAEMON@{domain}>",
            f"To: <{to}>",
            "Subject: "
            + Header(
                f"Không gửi được thư / Undelivered mail: {subject}", "utf-8", maxlinelen=76
            ).encode(linesep="\r\n"),
            f"Date: {_date(now)}",
            f"Message-ID: <{uuid.uuid4()}@{domain}>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        ]
    )
    parts = [
        head.encode() + b"\r\n\r\nThis is a MIME-encapsulated delivery status notification.\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Description: Notification\r\nContent-Transfer-Encoding: base64\r\n\r\n" + human,
        f"--{boundary}\r\n".encode(),
        b"Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n"
        + "\r\n".join(fields).encode("utf-8", "replace")
        + b"\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered message headers"
        b"\r\n\r\n" + original_headers(original) + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _date(d: datetime) -> str:
    return email.utils.format_datetime(d)
