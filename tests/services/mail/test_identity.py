"""Mail beside the real identity service (demo province seeded, one event bus): every
official gets a mailbox from identity's UserCreated events, named by the convention on
their agency's mail domain (identity's agency tree); SMTP AUTH is identity's own password
check, with its lockout; a disabled account's mailbox stops receiving."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from lgsp.app import ServiceRuntime
from lgsp.bus import Bus, open_bus
from lgsp.config import load_settings
from services.identity.plugin import PLUGIN as IDENTITY
from services.identity.seed import AGENCIES, PROVINCE, officials, read_demo
from services.mail.adapters.store import MailStore
from services.mail.adapters.tables import mailboxes
from services.mail.plugin import PLUGIN as MAIL
from tests.services.identity.conftest import ADMIN_PASSWORD
from tests.services.mail.env import client_tls
from tests.support import free_port


@dataclass
class Platform:
    identity: ServiceRuntime
    mail: ServiceRuntime
    data: Path
    submission: int
    imaps: int

    def addresses(self) -> dict[str, tuple[str, int]]:
        """owner user id → (address, status)."""
        with self.mail.engine.connect() as conn:
            rows = conn.execute(
                sa.select(mailboxes.c.owner_user_id, mailboxes.c.address, mailboxes.c.status)
            )
            return {r[0]: (r[1], r[2]) for r in rows if r[0]}


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    submission, imaps = free_port(), free_port()
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_IDENTITY_HTTP_PORT": str(free_port()),
            "LGSP_IDENTITY_GRPC_PORT": str(free_port()),
            "LGSP_IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LGSP_IDENTITY_DEMO_SEED": "true",
            "LGSP_TELEMETRY_ENABLED": "false",
            "LGSP_MAIL_SMTP_SUBMISSION_PORT": str(submission),
            "LGSP_MAIL_SMTP_INBOUND_PORT": str(free_port()),
            "LGSP_MAIL_IMAP_PORT": str(free_port()),
            "LGSP_MAIL_IMAPS_PORT": str(imaps),
        }
    )
    bus: Bus = open_bus(settings.bus.url, client_id="test")
    identity = ServiceRuntime(IDENTITY, settings, bus=bus)
    await identity.start()
    mail = ServiceRuntime(MAIL, settings, port=0, bus=bus)
    await mail.start()
    p = Platform(identity, mail, tmp_path, submission, imaps)
    try:
        want = len(officials())
        for _ in range(600):
            if len(p.addresses()) >= want:
                break
            await asyncio.sleep(0.05)
        yield p
    finally:
        await mail.stop(0)
        await identity.stop(0)
        await bus.close()


def smtp_login(port: int, login: str, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.test")
        s.starttls(context=client_tls())
        s.ehlo("client.test")
        token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        return s.docmd("AUTH", f"PLAIN {token}")[0]


async def test_mailboxes_follow_identity_and_auth_is_identitys(platform: Platform) -> None:
    demo = read_demo(platform.data)
    users = {o["username"]: o for o in officials()}
    found = platform.addresses()
    assert len(found) == len(users)
    by_username = {}
    with platform.identity.engine.connect() as conn:
        for row in conn.execute(sa.text("select id, username from users")):
            by_username[row[1]] = row[0]
    # The seed gives identity's email by the same convention for officials of agencies
    # with a mail domain of their own; mail agrees but where two share initials on one
    # domain (the seed numbers from 2, mail from 1). Units (no domain) take their parent's.
    own_domain = {code for code, *_, sub in AGENCIES if sub} | {PROVINCE}
    with_domain = [u for u, o in users.items() if o["agency_code"] in own_domain]
    agree = [u for u in with_domain if found[by_username[u]][0] == users[u]["email"]]
    assert len(agree) >= len(with_domain) - 2, sorted(set(with_domain) - set(agree))
    unit = next(u for u, o in users.items() if o["agency_code"] == "000.01.12.H27")
    assert found[by_username[unit]][0].endswith("@stp.hatinh.gov.vn")
    justice = next(u for u, o in users.items() if o["agency_code"] == "000.00.12.H27")
    address = found[by_username[justice]][0]
    assert address.endswith("@stp.hatinh.gov.vn")

    # A mail client logs in with the address and the official's identity password.
    assert (
        await asyncio.to_thread(smtp_login, platform.submission, address, demo.password(justice))
        == 235
    )

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", platform.submission, timeout=20) as s:
            s.starttls(context=client_tls())
            s.login(justice, demo.password(justice))
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = address, address, "Tự gửi"
            msg.set_content("Thử nghiệm.")
            return s.sendmail(address, [address], msg.as_bytes())

    assert await asyncio.to_thread(send) == {}

    def imap_login(password: str) -> str:
        c = imaplib.IMAP4_SSL("127.0.0.1", platform.imaps, ssl_context=client_tls(), timeout=20)
        try:
            typ, data = c.login(address, password)
            c.select("INBOX")
            typ, data = c.search(None, "SUBJECT", '"tu gui"')
            c.logout()
            return f"{typ} {data}"
        except imaplib.IMAP4.error as e:
            return str(e)

    # IMAP logs in the same way, and finds the message just sent.
    assert await asyncio.to_thread(imap_login, demo.password(justice)) == "OK [b'1']"
    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(imap_login, "wrong")
    # Mail needs no session at identity: each one the password grant opened (two SMTP
    # logins, one IMAP) was ended.
    with platform.identity.engine.connect() as conn:
        open_sessions = conn.execute(
            sa.text(
                "select count(*) from sessions where user_id = :u and client_id = 'mail'"
                " and revoked_at is null"
            ),
            {"u": by_username[justice]},
        ).scalar_one()
        made = conn.execute(
            sa.text("select count(*) from sessions where user_id = :u and client_id = 'mail'"),
            {"u": by_username[justice]},
        ).scalar_one()
    assert (made, open_sessions) == (3, 0)

    # Five wrong passwords (over two connections: mail hangs up after three) lock the
    # account at identity: then even the right password is refused.
    other = next(u for u, o in users.items() if o["agency_code"] == "000.00.17.H27")
    codes = [
        await asyncio.to_thread(smtp_login, platform.submission, other, f"sai-{i}")
        for i in range(5)
    ]
    assert codes == [535] * 5
    assert (
        await asyncio.to_thread(smtp_login, platform.submission, other, demo.password(other)) == 535
    )
    with platform.identity.engine.connect() as conn:
        locked = conn.execute(
            sa.text("select locked_until from users where username = :u"), {"u": other}
        ).scalar_one()
    assert locked is not None


async def test_a_disabled_account_stops_receiving_and_comes_back(platform: Platform) -> None:
    from services.identity.domain.access import SYSTEM

    users = {o["username"]: o for o in officials()}
    username = next(u for u, o in users.items() if o["agency_code"] == "000.00.17.H27")
    with platform.identity.engine.connect() as conn:
        user_id = conn.execute(
            sa.text("select id from users where username = :u"), {"u": username}
        ).scalar_one()
    address, _ = platform.addresses()[user_id]
    ident = platform.identity.app
    await asyncio.to_thread(ident.users.set_status, SYSTEM, user_id, "", False, "nghỉ hưu")

    async def status_becomes(want: int) -> None:
        for _ in range(200):
            if platform.addresses()[user_id][1] == want:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"mailbox status stayed {platform.addresses()[user_id][1]}")

    await status_becomes(2)  # MAILBOX_STATUS_DISABLED

    def rcpt() -> int:
        with smtplib.SMTP(
            "127.0.0.1", platform.mail.settings.mail.smtp_inbound_port, timeout=10
        ) as s:
            s.ehlo("mx.example.org")
            s.mail("ban@example.org")
            return s.docmd("RCPT", f"TO:<{address}>")[0]

    assert await asyncio.to_thread(rcpt) == 550
    await asyncio.to_thread(ident.users.set_status, SYSTEM, user_id, "", True)
    await status_becomes(1)
    assert await asyncio.to_thread(rcpt) == 250
    assert platform.addresses()[user_id][0] == address  # the same address as before


async def test_the_agency_mailbox_follows_identitys_clerk_grants(platform: Platform) -> None:
    """Văn thư by role with identity's own grants and events (docs/mail.md, "Agency
    mailboxes"): the seed's clerk of Sở Tư pháp opens vanthu@ as soon as it exists; a revoke
    and a grant made at identity move it."""
    from lgsp.auth import Principal
    from services.identity.domain.access import SYSTEM
    from services.mail.domain.mailbox import Kind, Mailbox

    justice = "000.00.12.H27"
    with platform.identity.engine.connect() as conn:
        ids = {r[1]: r[0] for r in conn.execute(sa.text("select id, username from users"))}
    staff = [o for o in officials() if o["agency_code"] == justice]
    clerk = next(ids[o["username"]] for o in staff if "clerk" in o["roles"])
    other = next(ids[o["username"]] for o in staff if "clerk" not in o["roles"])
    mail = platform.mail.app
    admin = Principal("u-admin", "user", PROVINCE, frozenset({"admin"}))
    vanthu = Mailbox("vanthu@stp.hatinh.gov.vn", "Văn thư Sở Tư pháp", Kind.AGENCY, justice)
    made = await asyncio.to_thread(mail.create_mailbox, admin, vanthu)
    assert made.clerk_user_ids == [clerk]
    assert made.may_open(clerk) and not made.may_open(other)

    async def clerks_become(want: list[str]) -> None:
        for _ in range(200):
            with mail.uow() as uow:
                got = MailStore(uow.session).clerk_ids(made.address)
            if got == sorted(want):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"clerks stayed {got}, wanted {sorted(want)}")

    roles = platform.identity.app.roles
    await asyncio.to_thread(roles.grant, SYSTEM, other, "clerk", justice)
    await clerks_become([clerk, other])
    await asyncio.to_thread(roles.revoke, SYSTEM, clerk, "clerk", justice)
    await clerks_become([other])
    assert vanthu.address in await asyncio.to_thread(mail.sender_addresses, other)
    assert vanthu.address not in await asyncio.to_thread(mail.sender_addresses, clerk)
