"""An official whose account has a second factor (TOTP) signs Thunderbird in to SMTP with an
app password: beside the real identity service (demo province) and the mail service, with
smtplib and imaplib. Their own password alone is refused there with an answer saying an app
password is needed (identity's answer, not counted as a failure anywhere)."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from email.message import EmailMessage

import sqlalchemy as sa

from services.identity.domain.access import SYSTEM, Actor
from services.identity.seed import officials, read_demo
from tests.services.mail.env import client_tls
from tests.services.mail.test_identity import Platform, platform, smtp_login

__all__ = ["platform"]  # the fixture, shared with test_identity.py


def imap_says(port: int, login: str, password: str) -> str:
    """The server's answer to LOGIN over IMAPS: "OK" or its NO text."""
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=20)
    try:
        c.login(login, password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0])
    finally:
        c.shutdown()


async def test_smtp_auth_with_an_app_password_for_an_account_with_totp(
    platform: Platform,
) -> None:
    username = next(o["username"] for o in officials() if o["agency_code"] == "000.00.12.H27")
    password = read_demo(platform.data).password(username)
    ident = platform.identity.app
    with platform.identity.engine.connect() as conn:
        uid = conn.execute(
            sa.text("select id from users where username = :u"), {"u": username}
        ).scalar_one()
    await asyncio.to_thread(ident.users.set_totp, SYSTEM, uid, True)
    made, secret = await asyncio.to_thread(
        ident.app_passwords.create, Actor(id=uid), "Thunderbird ở cơ quan"
    )
    address = next(a for owner, (a, _) in platform.addresses().items() if owner == uid)

    # The official's own password: refused (a mail client cannot send the code) with the
    # answer that says what to do, however often the client retries: more often than the
    # mail service's per-address failure limit (10), without locking the account or the
    # address.
    for _ in range(12):
        assert await asyncio.to_thread(smtp_login, platform.submission, username, password) == 534
    assert await asyncio.to_thread(imap_says, platform.imaps, username, password) == (
        "[ALERT] Application-specific password required: two-step verification is on for this"
        " account (create an app password)"
    )
    # A wrong password is a plain failure, as for anyone.
    assert await asyncio.to_thread(smtp_login, platform.submission, username, "sai-mật-khẩu") == 535
    # The app password, as shown and as typed without spaces; by username or address.
    assert await asyncio.to_thread(smtp_login, platform.submission, username, secret) == 235
    squeezed = secret.replace(" ", "")
    assert await asyncio.to_thread(smtp_login, platform.submission, address, squeezed) == 235

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", platform.submission, timeout=20) as s:
            s.starttls(context=client_tls())
            s.login(username, secret)
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = address, address, "Gửi bằng mật khẩu ứng dụng"
            msg.set_content("Thử nghiệm.")
            return s.sendmail(address, [address], msg.as_bytes())

    assert await asyncio.to_thread(send) == {}
    with platform.identity.engine.connect() as conn:
        status, failures = conn.execute(
            sa.text("select status, failed_logins from users where id = :u"), {"u": uid}
        ).one()
    assert (status, failures) == (1, 0)  # active, nothing counted
    listed = await asyncio.to_thread(ident.app_passwords.list_own, Actor(id=uid))
    assert [a.id for a in listed] == [made.id] and listed[0].HasField("last_use_time")

    # Revoked: the next login is refused.
    await asyncio.to_thread(ident.app_passwords.revoke_own, Actor(id=uid), made.id)
    assert await asyncio.to_thread(smtp_login, platform.submission, username, secret) == 535
