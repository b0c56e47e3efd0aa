"""gRPC MailService on a real server with tokens of a stand-in issuer: sending (local
delivery, outside recipients queued, idempotent retries), listing, reading, flags, moving,
deleting, folders, attachments, the administrators' mailboxes; and the refusals: another
official's mailbox, header injection, oversized messages, unknown recipients, bad fields."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from lgsp.api.mail.v1 import mail_pb2 as pb
from tests.integration.test_new_service import bad_request_fields
from tests.services.mail.env import HEALTH, JUSTICE, PROVINCE, MailEnv, mail_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path, LGSP_MAIL_MAX_MESSAGE_BYTES="100000") as e:
        yield e


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_send_read_file_and_delete(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    an2 = env.add_official("u-an2", "Nguyễn Văn An", JUSTICE)  # same name, same agency
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    assert an2 == "annv1@stp.hatinh.gov.vn"
    stub = env.stub()
    request_id = str(uuid.uuid4())
    send = pb.SendMessageRequest(
        mailbox_address=an,
        to=[pb.Address(address=binh, display_name="Trần Thị Bình")],
        cc=[pb.Address(address="ban@example.org")],
        bcc=[pb.Address(address=an2)],
        subject="Báo cáo cải cách hành chính",
        text_body="Kính gửi chị Bình,\nĐề nghị xem tệp đính kèm.",
        attachments=[
            pb.OutgoingAttachment(
                file_name="bao-cao.pdf", content_type="application/pdf", content=b"%PDF-1.7 x" * 300
            )
        ],
        related_receipt_code="000.00.61.H27-260504-0001",
        request_id=request_id,
    )
    sent = (await stub.SendMessage(send, metadata=env.md("u-an"))).message
    assert sent.folder_id == "Sent" and sent.flags.seen
    assert [a.address for a in sent.bcc] == [an2]
    again = (await stub.SendMessage(send, metadata=env.md("u-an"))).message
    assert again.id == sent.id  # a retry sends nothing more
    assert env.rows("messages") == 3 and env.rows("outgoing") == 1

    md = env.md("u-binh", HEALTH)
    listed = await stub.ListMessages(pb.ListMessagesRequest(mailbox_address=binh), metadata=md)
    assert listed.total_size == 1
    m = listed.messages[0]
    assert m.subject == "Báo cáo cải cách hành chính" and m.sender.address == an
    assert not m.text_body and not m.bcc  # no body in lists; Bcc only on the sender's copy
    assert m.related_receipt_code == "000.00.61.H27-260504-0001"
    found = await stub.ListMessages(
        pb.ListMessagesRequest(mailbox_address=binh, query="cai cach"), metadata=md
    )
    assert found.total_size == 1  # accent-insensitive
    got = (
        await stub.GetMessage(
            pb.GetMessageRequest(mailbox_address=binh, id=m.id, mark_seen=True), metadata=md
        )
    ).message
    assert "Đề nghị xem tệp đính kèm." in got.text_body and got.flags.seen
    assert [a.file_name for a in got.attachments] == ["bao-cao.pdf"]
    parts = [
        p
        async for p in stub.DownloadMessageAttachment(
            pb.DownloadMessageAttachmentRequest(
                mailbox_address=binh, message_id=m.id, attachment_id=got.attachments[0].id
            ),
            metadata=md,
        )
    ]
    assert parts[0].metadata.content_type == "application/pdf"
    assert b"".join(p.chunk for p in parts[1:]) == b"%PDF-1.7 x" * 300

    unread = await stub.ListMessages(
        pb.ListMessagesRequest(mailbox_address=binh, unread_only=True), metadata=md
    )
    assert unread.total_size == 0
    flags = await stub.UpdateMessageFlags(
        pb.UpdateMessageFlagsRequest(
            mailbox_address=binh,
            ids=[m.id],
            flags=pb.MessageFlags(flagged=True),
            update_mask=FieldMask(paths=["flagged"]),
        ),
        metadata=md,
    )
    assert flags.updated_count == 1

    folder = (
        await stub.CreateFolder(
            pb.CreateFolderRequest(mailbox_address=binh, name="Cải cách"), metadata=md
        )
    ).folder
    dup = await refusal(
        stub.CreateFolder(
            pb.CreateFolderRequest(mailbox_address=binh, name="cải cách"), metadata=md
        )
    )
    assert dup.code() == grpc.StatusCode.ALREADY_EXISTS
    moved = await stub.MoveMessage(
        pb.MoveMessageRequest(mailbox_address=binh, ids=[m.id], folder_id=folder.id), metadata=md
    )
    assert moved.moved_count == 1
    busy = await refusal(
        stub.DeleteFolder(
            pb.DeleteFolderRequest(mailbox_address=binh, folder_id=folder.id), metadata=md
        )
    )
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION
    folders = {
        f.id: f
        for f in (
            await stub.ListFolders(pb.ListFoldersRequest(mailbox_address=binh), metadata=md)
        ).folders
    }
    assert [folders[i].total_count for i in ("INBOX", folder.id)] == [0, 1]
    assert folders["INBOX"].name == "Hộp thư đến"

    first = await stub.DeleteMessage(
        pb.DeleteMessageRequest(mailbox_address=binh, ids=[m.id]), metadata=md
    )
    second = await stub.DeleteMessage(
        pb.DeleteMessageRequest(mailbox_address=binh, ids=[m.id]), metadata=md
    )
    assert (first.trashed_count, second.purged_count) == (1, 1)
    await stub.DeleteFolder(
        pb.DeleteFolderRequest(mailbox_address=binh, folder_id=folder.id), metadata=md
    )
    box = (await stub.GetMailbox(pb.GetMailboxRequest(address=binh), metadata=md)).mailbox
    assert box.used_bytes == 0 and box.kind == pb.MAILBOX_KIND_PERSONAL
    kinds = [k for k, _ in env.events()]
    assert kinds.count("MailboxCreated") == 3 and "MailSent" in kinds and "MailDelivered" in kinds


async def test_another_officials_mailbox_is_closed(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    stub, md = env.stub(), env.md("u-binh", HEALTH)
    for call in (
        stub.ListMessages(pb.ListMessagesRequest(mailbox_address=an), metadata=md),
        stub.ListFolders(pb.ListFoldersRequest(mailbox_address=an), metadata=md),
        stub.SendMessage(
            pb.SendMessageRequest(mailbox_address=an, to=[pb.Address(address=binh)]), metadata=md
        ),
    ):
        assert (await refusal(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    hidden = await refusal(stub.GetMailbox(pb.GetMailboxRequest(address=an), metadata=md))
    assert hidden.code() == grpc.StatusCode.NOT_FOUND
    anonymous = await refusal(stub.ListMessages(pb.ListMessagesRequest(mailbox_address=binh)))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    assert env.rows("messages") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "Chào\r\nBcc: victim@example.com"}, "subject"),
        (
            {
                "to": [
                    pb.Address(address="binhtt@syt.hatinh.gov.vn", display_name="X\nBcc: v@x.org")
                ]
            },
            "to[0].display_name",
        ),
        ({"to": [pb.Address(address="not an address")]}, "to[0].address"),
        ({"to": []}, "to"),
        ({"to": [pb.Address(address="khongco@syt.hatinh.gov.vn")]}, "to"),
        (
            {
                "attachments": [
                    pb.OutgoingAttachment(
                        file_name="a.bin",
                        content_type="application/octet-stream",
                        content=b"x" * 200_000,
                    )
                ]
            },
            "attachments",
        ),
        (
            {
                "attachments": [
                    pb.OutgoingAttachment(
                        file_name="a\r\n.pdf", content_type="application/pdf", content=b"x"
                    )
                ]
            },
            "attachments[0].file_name",
        ),
        ({"request_id": "not-a-uuid"}, "request_id"),
        ({"mailbox_address": ""}, "mailbox_address"),
    ],
)
async def test_bad_messages_are_refused_naming_the_field(
    env: MailEnv, change: dict[str, object], field: str
) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    values: dict[str, Any] = {
        "mailbox_address": an,
        "to": [pb.Address(address=binh)],
        "subject": "Chào",
    }
    values.update(change)
    error = await refusal(
        env.stub().SendMessage(pb.SendMessageRequest(**values), metadata=env.md("u-an"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert bad_request_fields(error) == [field]
    assert env.rows("messages") == 0 and env.rows("message_blobs") == 0


async def test_administrators_manage_agency_mailboxes(env: MailEnv) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    stub = env.stub()
    admin = env.md("u-admin", PROVINCE, ("admin",))
    vanthu = pb.Mailbox(
        address="VanThu@stp.hatinh.gov.vn",
        display_name="Văn thư Sở Tư pháp",
        kind=pb.MAILBOX_KIND_AGENCY,
        agency_code=JUSTICE,
        delegate_user_ids=["u-an"],
    )
    denied = await refusal(
        stub.CreateMailbox(pb.CreateMailboxRequest(mailbox=vanthu), metadata=env.md("u-an"))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    made = (
        await stub.CreateMailbox(pb.CreateMailboxRequest(mailbox=vanthu), metadata=admin)
    ).mailbox
    assert made.address == "vanthu@stp.hatinh.gov.vn" and made.quota_bytes > 0
    taken = await refusal(
        stub.CreateMailbox(pb.CreateMailboxRequest(mailbox=vanthu), metadata=admin)
    )
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
    outside = pb.Mailbox(address="x@gmail.com", kind=pb.MAILBOX_KIND_SHARED, agency_code=JUSTICE)
    assert bad_request_fields(
        await refusal(stub.CreateMailbox(pb.CreateMailboxRequest(mailbox=outside), metadata=admin))
    ) == ["mailbox.address"]

    # The delegate (the clerk) reads it; its listing shows both of hers.
    mine = await stub.ListMailboxes(pb.ListMailboxesRequest(), metadata=env.md("u-an"))
    assert sorted(m.address for m in mine.mailboxes) == [
        "annv@stp.hatinh.gov.vn",
        "vanthu@stp.hatinh.gov.vn",
    ]
    await stub.ListFolders(
        pb.ListFoldersRequest(mailbox_address=made.address), metadata=env.md("u-an")
    )

    update = pb.UpdateMailboxRequest(
        mailbox=pb.Mailbox(address=made.address, etag=made.etag, status=pb.MAILBOX_STATUS_DISABLED),
        update_mask=FieldMask(paths=["status"]),
    )
    changed = (await stub.UpdateMailbox(update, metadata=admin)).mailbox
    assert changed.status == pb.MAILBOX_STATUS_DISABLED and changed.etag != made.etag
    stale = await refusal(stub.UpdateMailbox(update, metadata=admin))
    assert stale.code() == grpc.StatusCode.ABORTED
    listed = await stub.ListMailboxes(
        pb.ListMailboxesRequest(agency_code=JUSTICE, query="van thu"), metadata=admin
    )
    assert [m.address for m in listed.mailboxes] == ["vanthu@stp.hatinh.gov.vn"]
