"""Hostile input found by trying the service as an attacker would, with the real clients:
a MIME bomb nested deeper than a mail client (or our IMAP writer) can follow is refused at
SMTP with a permanent reply, so one outside sender cannot make an official's mailbox
unreadable; a message with thousands of sibling parts is still mail."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.mail.domain.message import MAX_MIME_DEPTH
from tests.services.mail.env import JUSTICE, MailEnv, client_tls, mail_env

PASSWORD = "Mat-khau-2026!"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path) as e:
        yield e


def nested(to: str, depth: int) -> bytes:
    """multipart/mixed inside multipart/mixed, `depth` times, a text part at the bottom."""
    raw = f"From: x@example.org\r\nTo: {to}\r\nSubject: depth {depth}\r\nMIME-Version: 1.0\r\n"
    for i in range(depth):
        raw += f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
    raw += "Content-Type: text/plain\r\n\r\nbottom\r\n"
    raw += "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return raw.encode()


def wide(to: str, parts: int) -> bytes:
    head = f"From: x@example.org\r\nTo: {to}\r\nSubject: wide\r\nMIME-Version: 1.0\r\n"
    head += "Content-Type: multipart/mixed; boundary=W\r\n\r\n"
    body = "".join(f"--W\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(parts))
    return (head + body + "--W--\r\n").encode()


def inbound(env: MailEnv, to: str, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=30) as s:
        s.ehlo("mx.example.org")
        try:
            s.sendmail("x@example.org", [to], raw)
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error.decode()
        return 250, ""


async def test_mime_bombs_deep_refused_wide_stored_and_the_mailbox_stays_readable(
    env: MailEnv,
) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

    def attempts() -> dict[str, tuple[int, str]]:
        return {
            depth: inbound(env, an, nested(an, depth))
            for depth in (MAX_MIME_DEPTH, MAX_MIME_DEPTH + 1, 200, 3000)
        } | {"wide": inbound(env, an, wide(an, 3000))}

    got = await asyncio.to_thread(attempts)
    assert got[MAX_MIME_DEPTH] == (250, "") and got["wide"] == (250, "")
    for depth in (MAX_MIME_DEPTH + 1, 200, 3000):  # permanent: the sender must not retry
        assert got[depth][0] == 554 and got[depth][1].startswith("5.6.0"), got[depth]
    assert env.rows("messages", f"mailbox_address = '{an}'") == 2

    def read() -> tuple[str, list[int]]:
        c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls())
        c.login(an, PASSWORD)
        c.select("INBOX")
        typ, data = c.fetch("1:*", "(BODYSTRUCTURE)")
        sizes = [len(d[0] if isinstance(d, tuple) else d) for d in data]
        c.logout()
        return typ, sizes

    typ, sizes = await asyncio.to_thread(read)
    assert typ == "OK" and len(sizes) == 2

    # IMAP APPEND of the same bomb by the owner's own client: refused, not stored
    def append() -> str:
        c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls())
        c.login(an, PASSWORD)
        try:
            typ, data = c.append("INBOX", None, None, nested(an, 200))
        except imaplib.IMAP4.error as e:
            return str(e)
        finally:
            c.logout()
        return f"{typ} {data}"

    assert "too deeply nested" in await asyncio.to_thread(append)
    assert env.rows("messages", f"mailbox_address = '{an}'") == 2


def raw_imaps(env: MailEnv, lines: list[bytes]) -> list[bytes]:
    """Each line sent before login on a bare TLS socket, with the server's answer to it."""
    with socket.create_connection(("127.0.0.1", env.ports["imaps"]), timeout=5) as plain:
        with client_tls().wrap_socket(plain) as s:
            f = s.makefile("rb")
            f.readline()  # greeting
            answers = []
            for line in lines:
                s.sendall(line)
                answers.append(f.readline())
            return answers


@pytest.mark.timeout(30)  # the server runs on this test's loop: a hang is a hang here
async def test_malformed_modified_utf7_mailbox_name_is_bad_not_a_hung_server(
    env: MailEnv,
) -> None:
    """pymap 0.36.7's modified UTF-7 decoder loops forever on '&' with no closing '-' (and
    raises on bad base64, ending the connection with a traceback): one line from anyone,
    before login, stopped the whole mail service's event loop (SMTP and IMAP)."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    lines = [b'a1 SELECT "&ZZZ"\r\n', b"a2 SELECT &Jjo\r\n", b'a3 LIST "" "&AB"\r\n']
    lines += [b'a4 STATUS "&&&-&ZZZ-" (MESSAGES)\r\n', b"a5 NOOP\r\n"]
    answers = await asyncio.wait_for(asyncio.to_thread(raw_imaps, env, lines), 15)
    assert [a.split(b" ", 2)[:2] for a in answers] == [
        [b"a1", b"BAD"],
        [b"a2", b"BAD"],
        [b"a3", b"BAD"],
        [b"a4", b"BAD"],
        [b"a5", b"OK"],
    ], answers

    def folders() -> list[bytes]:  # a well-formed name still decodes, and the server answers
        c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls())
        c.login(an, PASSWORD)
        assert c.create('"C&APQ-ng vi&Hsc-c"')[0] == "OK"
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):  # and the session goes on
            c.create('"&&&-&ZZZ"')
        _, data = c.list()
        c.logout()
        return [d for d in data if isinstance(d, bytes)]

    listed = await asyncio.wait_for(asyncio.to_thread(folders), 15)
    assert any(b'"C&APQ-ng vi&Hsc-c"' in d for d in listed), listed

    def smtp_noop() -> int:
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=5) as s:
            return s.noop()[0]

    assert await asyncio.to_thread(smtp_noop) == 250


async def test_inbound_mail_with_a_from_header_in_a_local_domain_is_refused(env: MailEnv) -> None:
    """The envelope's MAIL FROM a local address was already refused (553); the From header
    officials' clients show was not, so anyone outside could mail "the director" to an
    official: 'From: Giám đốc <andn@stp…>' with MAIL FROM <x@example.org>."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    director = env.add_official("u-gd", "Đặng Ngọc Giám", JUSTICE)

    def forged(from_header: str) -> tuple[int, str]:
        raw = (
            f"From: {from_header}\r\nTo: {an}\r\nSubject: Chỉ đạo khẩn\r\n\r\nChuyển khoản gấp\r\n"
        )
        return inbound(env, an, raw.encode())

    got = await asyncio.to_thread(forged, f"=?utf-8?b?R2nDoW0gxJHhu5Fj?= <{director}>")
    assert got[0] == 550 and got[1].startswith("5.7.1"), got
    upper = await asyncio.to_thread(forged, director.upper())
    assert upper[0] == 550, upper
    outside = await asyncio.to_thread(forged, "Đối tác <ban@example.org>")
    assert outside == (250, "")
    assert env.rows("messages", f"mailbox_address = '{an}'") == 1


async def test_bodystructure_disposition_is_a_list_with_its_parameters(env: MailEnv) -> None:
    """RFC 3501 §9: body-fld-dsp = "(" string SP body-fld-param ")" / nil. pymap wrote the
    whole Content-Disposition header as one string ('attachment; filename="…"', in raw
    UTF-8), so clients that read attachments from BODYSTRUCTURE (phones, Outlook) saw none."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "ban@example.org", an, "Quyết định"
    m.set_content("Nội dung")
    m.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="Quyết định 12.pdf")
    m.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="plan.pdf")
    await asyncio.to_thread(inbound, env, an, m.as_bytes())

    def fetch() -> bytes:
        c = imaplib.IMAP4_SSL("127.0.0.1", env.ports["imaps"], ssl_context=client_tls())
        c.login(an, PASSWORD)
        c.select("INBOX")
        _, data = c.fetch("1", "(BODYSTRUCTURE)")
        c.logout()
        return b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)

    line = await asyncio.to_thread(fetch)
    word = b'"=?utf-8?b?UXV54bq/dCDEkeG7i25oIDEyLnBkZg==?="'
    assert b'("attachment" ("filename" ' + word + b"))" in line, line
    assert b'("attachment" ("filename" "plan.pdf"))' in line, line
    assert line.isascii(), line
