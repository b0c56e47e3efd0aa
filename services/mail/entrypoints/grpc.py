"""gRPC MailService: proto request → use case → proto response, for the caller's own
mailboxes (and the administrators' mailbox management).

The servicer only translates. Domain refusals become the platform's errors here, at the edge
(`to_service_error`); the use cases are synchronous (SQLAlchemy), so they run in threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from lgsp.api.mail.v1 import mail_pb2 as pb
from lgsp.api.mail.v1 import mail_pb2_grpc
from lgsp.auth import current_principal
from lgsp.grpc import errors
from services.mail.adapters.proto import (
    attachment_to_proto,
    folder_to_proto,
    mailbox_to_proto,
    message_to_proto,
)
from services.mail.domain import errors as domain
from services.mail.domain.mailbox import Kind, Mailbox, Status
from services.mail.domain.message import Address, Outgoing
from services.mail.service_layer.mail import MailApp

T = TypeVar("T")
CHUNK = 1024 * 1024  # the contract: chunks of at most 1 MiB


def to_service_error(e: domain.DomainError) -> errors.ServiceError:
    """The status a domain refusal gets."""
    if isinstance(e, domain.InvalidField):
        return errors.InvalidArgument(e.field, e.reason)
    if isinstance(e, domain.TooLarge):
        return errors.InvalidArgument("attachments", e.message)
    if isinstance(e, domain.NotFound):
        return errors.NotFound(e.message)
    if isinstance(e, domain.AlreadyExists):
        return errors.AlreadyExists(e.message)
    if isinstance(e, domain.Forbidden):
        return errors.PermissionDenied(e.message)
    if isinstance(e, domain.StaleEtag):
        return errors.Aborted(e.message)
    if isinstance(e, domain.QuotaExceeded):
        return errors.ResourceExhausted(e.message)
    return errors.FailedPrecondition(e.message)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
    except domain.DomainError as e:
        raise to_service_error(e) from None


def _addresses(items: Any) -> list[Address]:
    return [Address(a.address, a.display_name) for a in items]


def _mailbox(m: pb.Mailbox) -> Mailbox:
    return Mailbox(
        address=m.address,
        display_name=m.display_name,
        kind=Kind(m.kind) if m.kind in Kind._value2member_map_ else Kind.PERSONAL,
        agency_code=m.agency_code,
        delegate_user_ids=list(m.delegate_user_ids),
        quota_bytes=m.quota_bytes,
        status=Status(m.status) if m.status in Status._value2member_map_ else Status.ACTIVE,
        daily_digest=m.daily_digest,
    )


class MailServicer(mail_pb2_grpc.MailServiceServicer):
    def __init__(self, app: MailApp) -> None:
        self.app = app

    # --- mailboxes --------------------------------------------------------------------------

    async def CreateMailbox(
        self, request: pb.CreateMailboxRequest, context: Any
    ) -> pb.CreateMailboxResponse:
        if not request.mailbox.kind:
            raise errors.InvalidArgument("mailbox.kind", "required")
        mb = await call(self.app.create_mailbox, current_principal(), _mailbox(request.mailbox))
        return pb.CreateMailboxResponse(mailbox=mailbox_to_proto(mb))

    async def UpdateMailbox(
        self, request: pb.UpdateMailboxRequest, context: Any
    ) -> pb.UpdateMailboxResponse:
        m = request.mailbox
        if m.status and m.status not in Status._value2member_map_:
            raise errors.InvalidArgument("mailbox.status", "ACTIVE or DISABLED")
        changed = _mailbox(m)
        if "status" in request.update_mask.paths and not m.status:
            raise errors.InvalidArgument("mailbox.status", "ACTIVE or DISABLED")
        mb = await call(
            self.app.update_mailbox,
            current_principal(),
            changed,
            m.etag,
            list(request.update_mask.paths),
        )
        return pb.UpdateMailboxResponse(mailbox=mailbox_to_proto(mb))

    async def GetMailbox(
        self, request: pb.GetMailboxRequest, context: Any
    ) -> pb.GetMailboxResponse:
        mb = await call(self.app.get_mailbox, current_principal(), request.address)
        return pb.GetMailboxResponse(mailbox=mailbox_to_proto(mb))

    async def ListMailboxes(
        self, request: pb.ListMailboxesRequest, context: Any
    ) -> pb.ListMailboxesResponse:
        found, token = await call(
            self.app.list_mailboxes,
            current_principal(),
            agency_code=request.agency_code,
            kind=int(request.kind),
            query=request.query,
            page_token=request.page_token,
            page_size=request.page_size,
        )
        return pb.ListMailboxesResponse(
            mailboxes=[mailbox_to_proto(m) for m in found], next_page_token=token
        )

    # --- folders ----------------------------------------------------------------------------

    async def ListFolders(
        self, request: pb.ListFoldersRequest, context: Any
    ) -> pb.ListFoldersResponse:
        found = await call(self.app.list_folders, current_principal(), request.mailbox_address)
        return pb.ListFoldersResponse(folders=[folder_to_proto(f, t, u) for f, t, u in found])

    async def CreateFolder(
        self, request: pb.CreateFolderRequest, context: Any
    ) -> pb.CreateFolderResponse:
        f = await call(
            self.app.create_folder, current_principal(), request.mailbox_address, request.name
        )
        return pb.CreateFolderResponse(folder=folder_to_proto(f))

    async def DeleteFolder(
        self, request: pb.DeleteFolderRequest, context: Any
    ) -> pb.DeleteFolderResponse:
        await call(
            self.app.delete_folder, current_principal(), request.mailbox_address, request.folder_id
        )
        return pb.DeleteFolderResponse()

    # --- messages ---------------------------------------------------------------------------

    async def SendMessage(
        self, request: pb.SendMessageRequest, context: Any
    ) -> pb.SendMessageResponse:
        out = Outgoing(
            Address(""),
            _addresses(request.to),
            _addresses(request.cc),
            _addresses(request.bcc),
            request.subject,
            request.text_body,
            request.html_body,
            [(a.file_name, a.content_type, a.content) for a in request.attachments],
        )
        if request.reply_to_message_id:
            replied = await call(
                self.app.read_message,
                current_principal(),
                request.mailbox_address,
                request.reply_to_message_id,
                verify=False,
            )
            out = Outgoing(**{**out.__dict__, "in_reply_to": replied.message.summary.message_id})
        copy = await call(
            self.app.send_message,
            current_principal(),
            request.mailbox_address,
            out,
            request_id=request.request_id,
            related=(request.related_document_id, request.related_receipt_code),
            sign=request.sign,
        )
        return pb.SendMessageResponse(message=message_to_proto(copy))

    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: Any
    ) -> pb.ListMessagesResponse:
        found, token, total = await call(
            self.app.list_messages,
            current_principal(),
            request.mailbox_address,
            request.folder_id,
            unread_only=request.unread_only,
            query=request.query,
            page_token=request.page_token,
            page_size=request.page_size,
        )
        return pb.ListMessagesResponse(
            messages=[message_to_proto(m) for m in found], next_page_token=token, total_size=total
        )

    async def GetMessage(
        self, request: pb.GetMessageRequest, context: Any
    ) -> pb.GetMessageResponse:
        found = await call(
            self.app.read_message,
            current_principal(),
            request.mailbox_address,
            request.id,
            mark_seen=request.mark_seen,
        )
        return pb.GetMessageResponse(
            message=message_to_proto(found.message, found.text, found.html, found.signature)
        )

    async def UpdateMessageFlags(
        self, request: pb.UpdateMessageFlagsRequest, context: Any
    ) -> pb.UpdateMessageFlagsResponse:
        paths = list(request.update_mask.paths)
        flags = {
            p: bool(getattr(request.flags, p, False)) for p in paths if hasattr(request.flags, p)
        }
        if len(flags) != len(paths) or not paths:
            raise errors.InvalidArgument("update_mask", "name some of seen, flagged, answered")
        n = await call(
            self.app.update_flags,
            current_principal(),
            request.mailbox_address,
            list(request.ids),
            flags,
        )
        return pb.UpdateMessageFlagsResponse(updated_count=n)

    async def MoveMessage(
        self, request: pb.MoveMessageRequest, context: Any
    ) -> pb.MoveMessageResponse:
        n = await call(
            self.app.move,
            current_principal(),
            request.mailbox_address,
            list(request.ids),
            request.folder_id,
        )
        return pb.MoveMessageResponse(moved_count=n)

    async def DeleteMessage(
        self, request: pb.DeleteMessageRequest, context: Any
    ) -> pb.DeleteMessageResponse:
        trashed, purged = await call(
            self.app.delete, current_principal(), request.mailbox_address, list(request.ids)
        )
        return pb.DeleteMessageResponse(trashed_count=trashed, purged_count=purged)

    async def DownloadMessageAttachment(
        self, request: pb.DownloadMessageAttachmentRequest, context: Any
    ) -> AsyncIterator[pb.DownloadMessageAttachmentResponse]:
        meta, data = await call(
            self.app.attachment,
            current_principal(),
            request.mailbox_address,
            request.message_id,
            request.attachment_id,
        )
        yield pb.DownloadMessageAttachmentResponse(metadata=attachment_to_proto(meta))
        for i in range(0, len(data), CHUNK):
            yield pb.DownloadMessageAttachmentResponse(chunk=data[i : i + CHUNK])
