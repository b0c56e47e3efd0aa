"""Agency mailboxes by role (văn thư): identity's real event envelopes on the running
service's bus make and unmake the clerks of an agency mailbox; the clerks open it over gRPC
and send as it, get a short notice in their own Inbox when mail arrives there (over SMTP from
outside); a revoked, disabled, other-agency or plain official is refused."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from lgsp.api.identity.v1 import events_pb2 as iev
from lgsp.api.identity.v1 import identity_pb2 as ipb
from lgsp.api.mail.v1 import mail_pb2 as pb
from tests.services.mail.env import HEALTH, JUSTICE, PROVINCE, MailEnv, mail_env
from tests.services.mail.notice_support import envelope, inbox, publish, settle

USERS = "mail-users"
VANTHU = "vanthu@stp.hatinh.gov.vn"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path) as e:
        yield e


class Identity:
    """Identity's events for the test's officials, as its outbox publishes them."""

    def __init__(self, env: MailEnv) -> None:
        self.env = env
        self.sent = 0

    async def send(self, payload: object, subject: str) -> None:
        await publish(self.env, envelope(payload, "identity", subject))  # type: ignore[arg-type]
        self.sent += 1
        await settle(self.env, USERS, self.sent)

    async def created(self, user_id: str, name: str, agency: str, *roles: str) -> None:
        user = ipb.User(
            id=user_id,
            username=f"{user_id}.test",
            display_name=name,
            agency_code=agency,
            status=ipb.USER_STATUS_ACTIVE,
            role_grants=[
                ipb.RoleGrant(role=ipb.Role.Value(f"ROLE_{r.upper()}"), agency_code=agency)
                for r in roles
            ],
        )
        await self.send(iev.UserCreated(user=user), user_id)

    async def grant(self, user_id: str, role: str, agency: str) -> None:
        grant = ipb.RoleGrant(role=ipb.Role.Value(f"ROLE_{role.upper()}"), agency_code=agency)
        await self.send(iev.RoleGranted(user_id=user_id, grant=grant), user_id)

    async def revoke(self, user_id: str, role: str, agency: str) -> None:
        role_value = ipb.Role.Value(f"ROLE_{role.upper()}")
        await self.send(
            iev.RoleRevoked(user_id=user_id, role=role_value, agency_code=agency), user_id
        )


async def opens(env: MailEnv, user_id: str, agency: str = JUSTICE) -> grpc.StatusCode:
    try:
        await env.stub().ListMessages(
            pb.ListMessagesRequest(mailbox_address=VANTHU), metadata=env.md(user_id, agency)
        )
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def mail_from_outside(env: MailEnv, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = "Sở Tư pháp tỉnh Nghệ An <vanthu@stp.nghean.gov.vn>"
    msg["To"] = VANTHU
    msg["Subject"] = subject
    msg.set_content("Nội dung công văn: không được chép vào thông báo.")
    with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
        s.send_message(msg)


async def test_clerks_by_role_open_the_agency_mailbox_and_hear_of_its_mail(env: MailEnv) -> None:
    identity = Identity(env)
    await identity.created("u-thu", "Phạm Thị Thu", JUSTICE, "clerk")
    await identity.created("u-an", "Nguyễn Văn An", JUSTICE, "specialist")
    await identity.created("u-tam", "Lê Văn Tâm", HEALTH, "clerk")  # another agency's clerk
    await identity.created("u-ha", "Đặng Thị Thu Hà", JUSTICE, "specialist")
    admin = env.md("u-admin", PROVINCE, ("admin",))
    stub = env.stub()
    made = (
        await stub.CreateMailbox(
            pb.CreateMailboxRequest(
                mailbox=pb.Mailbox(
                    address=VANTHU,
                    display_name="Văn thư Sở Tư pháp",
                    kind=pb.MAILBOX_KIND_AGENCY,
                    agency_code=JUSTICE,
                    delegate_user_ids=["u-ha"],  # named by an administrator
                )
            ),
            metadata=admin,
        )
    ).mailbox

    assert await opens(env, "u-thu") == grpc.StatusCode.OK
    assert await opens(env, "u-an") == grpc.StatusCode.PERMISSION_DENIED
    assert await opens(env, "u-tam", HEALTH) == grpc.StatusCode.PERMISSION_DENIED
    assert await opens(env, "u-stranger") == grpc.StatusCode.PERMISSION_DENIED
    listed = await stub.ListMailboxes(pb.ListMailboxesRequest(), metadata=env.md("u-thu"))
    assert VANTHU in [m.address for m in listed.mailboxes]

    # Mail from outside lands once, in the agency mailbox; the clerk is told in her own.
    await asyncio.to_thread(mail_from_outside, env, "Về việc phối hợp xác minh lý lịch tư pháp")
    stored = await stub.ListMessages(
        pb.ListMessagesRequest(mailbox_address=VANTHU), metadata=env.md("u-thu")
    )
    assert [m.subject for m in stored.messages] == ["Về việc phối hợp xác minh lý lịch tư pháp"]
    thu = "thupt@stp.hatinh.gov.vn"
    [notice] = inbox(env, thu)
    assert notice["subject"] == (
        "Thư mới gửi Văn thư Sở Tư pháp: Về việc phối hợp xác minh lý lịch tư pháp"
    )
    text = notice["raw"].decode()
    assert "không được chép" not in text  # never the body
    assert inbox(env, "annv@stp.hatinh.gov.vn") == []
    assert inbox(env, "hadtt@stp.hatinh.gov.vn") == []  # a named delegate: no role, no notice

    # The clerk sends as the agency.
    sent = await stub.SendMessage(
        pb.SendMessageRequest(
            mailbox_address=VANTHU,
            to=[pb.Address(address="vanthu@stp.nghean.gov.vn")],
            subject="Trả lời: phối hợp xác minh",
            text_body="Sở Tư pháp tỉnh Hà Tĩnh đã nhận.",
        ),
        metadata=env.md("u-thu"),
    )
    assert sent.message.sender.address == VANTHU

    # Roles change: An becomes a clerk, Thu stops being one; the named delegate stays and
    # the administrator's etag stays good.
    await identity.grant("u-an", "clerk", JUSTICE)
    await identity.revoke("u-thu", "clerk", JUSTICE)
    assert await opens(env, "u-an") == grpc.StatusCode.OK
    assert await opens(env, "u-thu") == grpc.StatusCode.PERMISSION_DENIED
    assert await opens(env, "u-ha") == grpc.StatusCode.OK
    await identity.grant("u-tam", "clerk", HEALTH)  # a grant elsewhere changes nothing here
    assert await opens(env, "u-tam", HEALTH) == grpc.StatusCode.PERMISSION_DENIED
    renamed = await stub.UpdateMailbox(
        pb.UpdateMailboxRequest(
            mailbox=pb.Mailbox(address=VANTHU, display_name="Văn thư Sở Tư pháp", etag=made.etag),
            update_mask=FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
    )
    assert list(renamed.mailbox.delegate_user_ids) == ["u-ha"]
    await asyncio.to_thread(mail_from_outside, env, "Công văn thứ hai")
    assert len(inbox(env, "annv@stp.hatinh.gov.vn")) == 1
    assert len(inbox(env, thu)) == 1  # no longer a clerk: not told

    # A disabled account is no clerk; enabled again, it is.
    await identity.send(iev.UserDisabled(user_id="u-an", agency_code=JUSTICE), "u-an")
    assert await opens(env, "u-an") == grpc.StatusCode.PERMISSION_DENIED
    await identity.send(iev.UserEnabled(user_id="u-an"), "u-an")
    assert await opens(env, "u-an") == grpc.StatusCode.OK
    # A grant delivered twice is applied once.
    twice = envelope(
        iev.RoleGranted(
            user_id="u-ha", grant=ipb.RoleGrant(role=ipb.ROLE_CLERK, agency_code=JUSTICE)
        ),
        "identity",
        "u-ha",
    )
    await publish(env, twice)
    await publish(env, twice)
    identity.sent += 2
    await settle(env, USERS, identity.sent)
    assert env.runtime.processors[USERS].counts["duplicate"] == 1


async def test_clerks_named_before_the_agency_mailbox_exists_get_it_and_moves_follow(
    env: MailEnv,
) -> None:
    identity = Identity(env)
    await identity.created("u-thu", "Phạm Thị Thu", JUSTICE, "clerk")
    await identity.grant("u-thu", "clerk", JUSTICE)  # twice: still one entry
    await env.stub().CreateMailbox(
        pb.CreateMailboxRequest(
            mailbox=pb.Mailbox(
                address=VANTHU,
                display_name="Văn thư Sở Tư pháp",
                kind=pb.MAILBOX_KIND_AGENCY,
                agency_code=JUSTICE,
            )
        ),
        metadata=env.md("u-admin", PROVINCE, ("admin",)),
    )
    assert await opens(env, "u-thu") == grpc.StatusCode.OK
    # Moved to Sở Y tế, where identity now grants her the clerk role: she follows.
    moved = ipb.User(
        id="u-thu",
        username="u-thu.test",
        display_name="Phạm Thị Thu",
        agency_code=HEALTH,
        status=ipb.USER_STATUS_ACTIVE,
        role_grants=[ipb.RoleGrant(role=ipb.ROLE_CLERK, agency_code=HEALTH)],
    )
    await identity.send(iev.UserUpdated(user=moved, changed_fields=["agency_code"]), "u-thu")
    assert await opens(env, "u-thu", HEALTH) == grpc.StatusCode.PERMISSION_DENIED
    moved.role_grants.append(ipb.RoleGrant(role=ipb.ROLE_CLERK, agency_code=JUSTICE))
    await identity.send(iev.UserUpdated(user=moved, changed_fields=["role_grants"]), "u-thu")
    assert await opens(env, "u-thu", HEALTH) == grpc.StatusCode.OK
    with env.app.uow() as uow:
        from services.mail.adapters.store import MailStore

        mb = MailStore(uow.session).mailbox(VANTHU)
    assert mb is not None and mb.clerk_user_ids == ["u-thu"]
    assert env.app.sender_addresses("u-thu") == {"thupt@stp.hatinh.gov.vn", VANTHU}
