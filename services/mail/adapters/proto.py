"""Domain ↔ contract (lgsp.api.mail.v1): the one place that knows both."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.mail.v1 import events_pb2
from lgsp.api.mail.v1 import mail_pb2 as pb
from services.mail.domain.mailbox import Folder, Mailbox
from services.mail.domain.message import Address, Attachment, Stored
from services.mail.domain.smime import SignatureCheck


def _ts(d: datetime | None) -> Timestamp | None:
    if d is None:
        return None
    t = Timestamp()
    t.FromDatetime(d)
    return t


def address_to_proto(a: Address) -> pb.Address:
    return pb.Address(address=a.address, display_name=a.display_name)


def mailbox_to_proto(mb: Mailbox) -> pb.Mailbox:
    return pb.Mailbox(
        address=mb.address,
        display_name=mb.display_name,
        kind=pb.MailboxKind.ValueType(int(mb.kind)),
        owner_user_id=mb.owner_user_id,
        agency_code=mb.agency_code,
        delegate_user_ids=mb.delegate_user_ids,
        quota_bytes=mb.quota_bytes,
        used_bytes=mb.used_bytes,
        status=pb.MailboxStatus.ValueType(int(mb.status)),
        create_time=_ts(mb.create_time),
        etag=mb.etag,
        daily_digest=mb.daily_digest,
    )


def folder_to_proto(f: Folder, total: int = 0, unread: int = 0) -> pb.Folder:
    return pb.Folder(
        id=f.id,
        mailbox_address=f.mailbox_address,
        name=f.name,
        role=pb.FolderRole.ValueType(int(f.role)),
        total_count=total,
        unread_count=unread,
    )


def attachment_to_proto(a: Attachment) -> pb.MailAttachment:
    return pb.MailAttachment(
        id=a.id,
        file_name=a.file_name,
        content_type=a.content_type,
        size_bytes=a.size,
        sha256=a.sha256,
    )


def signature_to_proto(c: SignatureCheck) -> pb.MessageSignature:
    return pb.MessageSignature(
        status=pb.SignatureStatus.ValueType(int(c.status)),
        signer_name=c.signer_name,
        signer_email=c.signer_email,
        certificate_serial=c.certificate_serial,
        reason=c.reason,
        signing_time=_ts(c.signing_time),
    )


def message_to_proto(
    m: Stored,
    text_body: str = "",
    html_body: str = "",
    signature: SignatureCheck | None = None,
) -> pb.MailMessage:
    s = m.summary
    return pb.MailMessage(
        id=m.id,
        mailbox_address=m.mailbox_address,
        folder_id=m.folder_id,
        message_id=s.message_id,
        sender=address_to_proto(s.sender),
        to=[address_to_proto(a) for a in s.to],
        cc=[address_to_proto(a) for a in s.cc],
        bcc=[address_to_proto(a) for a in m.bcc],
        subject=s.subject,
        text_body=text_body,
        html_body=html_body,
        attachments=[attachment_to_proto(a) for a in s.attachments],
        flags=pb.MessageFlags(seen=m.seen, flagged=m.flagged, answered=m.answered),
        in_reply_to=s.in_reply_to,
        send_time=_ts(s.send_time),
        receive_time=_ts(m.internal_date),
        size_bytes=m.size,
        related_document_id=m.related_document_id,
        related_receipt_code=m.related_receipt_code,
        authentication=pb.AuthenticationResults(
            spf=m.authentication.spf,
            dkim=m.authentication.dkim,
            summary=m.authentication.summary,
        )
        if m.authentication
        else None,
        signature=signature_to_proto(signature) if signature is not None else None,
    )


def mailbox_created(mb: Mailbox, actor_id: str) -> events_pb2.MailboxCreated:
    return events_pb2.MailboxCreated(mailbox=mailbox_to_proto(mb), actor_id=actor_id)


def mail_delivered(m: Stored) -> events_pb2.MailDelivered:
    s = m.summary
    return events_pb2.MailDelivered(
        id=m.id,
        message_id=s.message_id,
        mailbox_address=m.mailbox_address,
        sender=address_to_proto(s.sender),
        subject=s.subject,
        folder_id=m.folder_id,
    )


def mail_sent(m: Stored, recipients: list[str], actor_id: str) -> events_pb2.MailSent:
    s = m.summary
    return events_pb2.MailSent(
        id=m.id,
        message_id=s.message_id,
        mailbox_address=m.mailbox_address,
        recipients=[pb.Address(address=r) for r in recipients],
        subject=s.subject,
        size_bytes=m.size,
        related_document_id=m.related_document_id,
        related_receipt_code=m.related_receipt_code,
        actor_id=actor_id,
    )
