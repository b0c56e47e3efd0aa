"""The SMTP servers with Python's smtplib as the real client: STARTTLS, AUTH, submission and
local delivery into the store, and the refusals with their reply codes: AUTH before TLS,
wrong passwords (and the hang-up after three), another's address in MAIL FROM or From,
unknown and disabled local recipients, open relay on the inbound port, oversized and
malformed messages. A 250 means stored: the rows are there when the reply arrives."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.services.mail.env import HEALTH, JUSTICE, JUSTICE_UNIT, MailEnv, client_tls, mail_env

PASSWORD = "Mat-khau-2026!"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path, LGSP_MAIL_MAX_MESSAGE_BYTES="200000") as e:
        yield e


def submit(env: MailEnv) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10)
    s.ehlo("client.test")
    return s


def login(env: MailEnv, user: str, password: str = PASSWORD) -> smtplib.SMTP:
    s = submit(env)
    s.starttls(context=client_tls())
    s.ehlo("client.test")
    s.login(user, password)
    return s


def message(
    sender: str, to: str, subject: str = "Kế hoạch tháng 5", body: str = "Nội dung"
) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = "<abc-123@client.test>"
    m.set_content(body)
    return m.as_bytes()


def refused(fn: object, *args: object) -> tuple[int, str]:
    try:
        fn(*args)  # type: ignore[operator]
    except smtplib.SMTPResponseException as e:
        error = e.smtp_error
        return e.smtp_code, error.decode() if isinstance(error, bytes) else error
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        return code, text.decode()
    raise AssertionError("not refused")


async def test_submission_delivers_locally_and_queues_outside(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    assert (an, binh) == ("annv@stp.hatinh.gov.vn", "binhtt@syt.hatinh.gov.vn")

    def send() -> dict[str, tuple[int, bytes]]:
        with login(env, an) as s:  # the mail address works as login name
            return s.sendmail(an, [binh, "ban@example.org"], message(an, binh))

    assert await asyncio.to_thread(send) == {}
    # Stored before the 250 came back: Inbox of the recipient, queued for the outside one.
    assert env.rows("messages", f"mailbox_address = '{binh}' and folder_id = 'INBOX'") == 1
    assert env.rows("outgoing", "rcpt_to = 'ban@example.org'") == 1
    assert env.rows("message_blobs") == 1  # one copy of the bytes for both
    assert ("MailDelivered", binh) in env.events()

    # The username works as well as the address.
    def by_username() -> None:
        login(env, "u-an.test").quit()

    await asyncio.to_thread(by_username)


async def test_auth_needs_starttls_and_right_password(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

    def before_tls() -> tuple[int, str]:
        with submit(env) as s:
            assert not s.has_extn("auth")  # not even offered in the clear
            code, text = s.docmd("AUTH", "PLAIN AHUtYW4udGVzdABNYXQta2hhdS0yMDI2IQ==")
            mail = s.docmd("MAIL", f"FROM:<{an}>")
            return code, f"{text.decode()} / {mail[0]} {mail[1].decode()}"

    code, text = await asyncio.to_thread(before_tls)
    assert code == 530 or code == 538, text
    assert "530" in text  # MAIL before STARTTLS refused too

    def attempt(password: str) -> int:
        s = submit(env)
        s.starttls(context=client_tls())
        s.ehlo("client.test")
        token = base64.b64encode(f"\0{an}\0{password}".encode()).decode()
        return s.docmd("AUTH", f"PLAIN {token}")[0]  # one try (smtplib.login makes two)

    env.passwords.down = True
    assert await asyncio.to_thread(attempt, PASSWORD) == 454  # temporary: try again later
    env.passwords.down = False

    def guesses() -> list[int]:
        s = submit(env)
        s.starttls(context=client_tls())
        s.ehlo("client.test")
        codes = []
        for guess in ("sai1", "sai2", "sai3"):  # raw AUTH: smtplib.login tries two mechanisms
            token = base64.b64encode(f"\0{an}\0{guess}".encode()).decode()
            codes.append(s.docmd("AUTH", f"PLAIN {token}")[0])
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.noop()
        return codes

    for _ in range(3):  # three per session, then the server hangs up
        assert await asyncio.to_thread(guesses) == [535, 535, 421]
    # The tenth failure from this address; then the address is refused without asking
    # identity, whose own per-address throttle every SMTP login shares.
    assert await asyncio.to_thread(attempt, "sai10") == 535
    asked = env.passwords.calls
    assert await asyncio.to_thread(attempt, PASSWORD) == 454
    assert env.passwords.calls == asked


async def test_only_own_address_and_no_unknown_local_recipients(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)

    def attempts() -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str | bytes]] = {}
        with login(env, an) as s:
            out["mail_from_other"] = s.docmd("MAIL", f"FROM:<{binh}>")
            s.rset()
            s.mail(an)
            out["unknown_local"] = s.docmd("RCPT", "TO:<khongco@stp.hatinh.gov.vn>")
            out["bad_syntax"] = s.docmd("RCPT", "TO:<a b@@x>")
            s.rset()
            out["from_header"] = refused(s.sendmail, an, [binh], message(binh, binh))
        return {k: (v[0], v[1] if isinstance(v[1], str) else v[1].decode()) for k, v in out.items()}

    got = await asyncio.to_thread(attempts)
    assert got["mail_from_other"][0] == 553
    assert got["unknown_local"][0] == 550 and "5.1.1" in got["unknown_local"][1]
    assert got["bad_syntax"][0] in (501, 553)
    assert got["from_header"][0] == 550  # From: someone else's address
    assert env.rows("messages") == 0


async def test_inbound_port_refuses_relay_and_local_senders(env: MailEnv) -> None:
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)

    def attempts() -> dict[str, int]:
        out = {}
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
            s.ehlo("mx.example.org")
            assert not s.has_extn("auth") or not s.esmtp_features["auth"].strip()
            s.mail("spam@example.org")
            out["relay"] = s.docmd("RCPT", "TO:<victim@example.com>")[0]
            s.rset()
            out["local_sender"] = s.docmd("MAIL", f"FROM:<{binh}>")[0]
            s.rset()
            s.sendmail("ban@example.org", [binh], message("ban@example.org", binh))
        return out

    assert await asyncio.to_thread(attempts) == {"relay": 554, "local_sender": 553}
    assert env.rows("messages", f"mailbox_address = '{binh}'") == 1
    assert env.rows("outgoing") == 0


async def test_oversized_and_malformed_messages(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    big = message(an, binh, body="x" * 250_000)
    malformed = (
        f"From: {an}\r\nTo: {binh}\r\nSubject: =?utf-8?B?invalid!!?=\r\n"
        'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
        "--never-closed\r\nContent-Type: text/plain; charset=x-unknown\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@\r\n"
    ).encode()

    def send() -> tuple[tuple[int, bytes], tuple[int, str], dict[str, tuple[int, bytes]]]:
        with login(env, an) as s:
            declared = s.mail(an, ["SIZE=999999999"])
            s.rset()
            sent = refused(s.sendmail, an, [binh], big)
        with login(env, an) as s:
            ok = s.sendmail(an, [binh], malformed)
        return declared, sent, ok

    declared, sent, ok = await asyncio.to_thread(send)
    assert declared[0] == 552 and sent[0] == 552
    assert ok == {}  # malformed MIME is still mail: stored as it came
    assert env.rows("messages", f"mailbox_address = '{binh}'") == 1


async def test_disabled_and_full_mailboxes(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    chi = env.add_official("u-chi", "Lê Minh Chi", JUSTICE_UNIT)  # no domain: its parent's
    assert chi == "chilm@stp.hatinh.gov.vn"
    with env.app.uow() as uow:
        env.app.on_user_active(uow, "u-binh", False)
        uow.commit()
    import sqlalchemy as sa

    from services.mail.adapters.tables import mailboxes

    with env.runtime.engine.begin() as conn:
        conn.execute(
            sa.update(mailboxes)
            .where(mailboxes.c.address == chi)
            .values(quota_bytes=100, used_bytes=100)
        )

    def send() -> tuple[int, int]:
        with login(env, an) as s:
            s.mail(an)
            disabled = s.docmd("RCPT", f"TO:<{binh}>")[0]
            full = s.docmd("RCPT", f"TO:<{chi}>")[0]
        return disabled, full

    assert await asyncio.to_thread(send) == (550, 452)


async def test_swaks_submits_and_is_refused_as_open_relay(env: MailEnv) -> None:
    """swaks (Debian's SMTP test tool) as a second, independent client."""
    import shutil
    import subprocess

    from tests.fixtures import missing_server

    if shutil.which("swaks") is None:
        missing_server("swaks not installed (apt-get install swaks)")
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)

    def swaks(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--timeout", "10", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    sent = await asyncio.to_thread(
        swaks,
        "--port",
        str(env.ports["submission"]),
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        an,
        "--auth-password",
        PASSWORD,
        "--from",
        an,
        "--to",
        binh,
        "--header",
        "Subject: swaks",
    )
    assert sent.returncode == 0, sent.stdout
    assert env.rows("messages", f"mailbox_address = '{binh}' and subject = 'swaks'") == 1
    relay = await asyncio.to_thread(
        swaks,
        "--port",
        str(env.ports["inbound"]),
        "--from",
        "spam@example.org",
        "--to",
        "victim@example.com",
    )
    assert relay.returncode != 0 and "<** 554 5.7.1" in relay.stdout, relay.stdout
