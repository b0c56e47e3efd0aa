"""Postfix as the scale-out form (docs/mail.md, "Scale-out: Postfix and Dovecot"): a real
Postfix (tests/support/postfix.py) in front of the running mail service as the province's
MX, and behind it as the smarthost for outside mail, with smtplib as the sending server.

- MX: mail for an official is relayed by Postfix to our inbound port and lands in the Inbox
  with Postfix's Received header; an unknown address is refused by Postfix at RCPT with our
  550 quoted (reject_unverified_recipient probes our inbound port first); a mailbox disabled
  after Postfix verified it ends as Postfix's bounce (a DSN to the sender) carrying our 550;
  Postfix's MX port relays nothing else.
- Smarthost: mail from 127.0.0.1 on the relay port goes on to the relayhost (a sink here),
  and so does the mail service's own relay, DKIM-signed.

Postfix is started once per module (about 2 s to start and 2 s to stop); each test has its
own mail service on the inbound port Postfix was configured with."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.mail.adapters.dkim_keys import keys_from_settings
from services.mail.adapters.mail_auth import InboundChecks, make_resolver
from services.mail.adapters.store import MailStore
from services.mail.bootstrap import build_relay
from tests.fixtures import missing_server
from tests.services.mail.env import JUSTICE, MailEnv, mail_env
from tests.support import free_port
from tests.support.dns_server import DnsServer
from tests.support.postfix import HOSTNAME, Postfix, running_postfix, unavailable

DOMAINS = ("hatinh.gov.vn", "stp.hatinh.gov.vn", "syt.hatinh.gov.vn")
OUTSIDE = "ban@example.org"
WAIT_S = 15.0  # Postfix relays from its queue within a second or two


class Sink:
    """The upstream smarthost Postfix relays to: keeps every envelope, answers 250."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()
        self.port = free_port()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.envelopes.append(envelope)
        return "250 2.0.0 OK"

    def wait_for(self, rcpt: str, text: bytes, timeout: float = 15.0) -> Envelope:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for e in self.envelopes:
                    if rcpt in e.rcpt_tos and text in (e.original_content or b""):
                        return e
            time.sleep(0.1)
        raise AssertionError(f"no mail for {rcpt} with {text!r} at the sink")


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def inbound_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def postfix(sink: Sink, inbound_port: int) -> Iterator[Postfix]:
    reason = unavailable()
    if reason:
        missing_server(reason)
    with running_postfix(
        domains=DOMAINS, inbound_port=inbound_port, relayhost_port=sink.port
    ) as pf:
        yield pf


@pytest.fixture(autouse=True)
def postfix_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Postfix's log of the test, printed (shown by pytest for a failing test only)."""
    if "postfix" not in request.fixturenames:
        yield
        return
    pf: Postfix = request.getfixturevalue("postfix")
    start = len(pf.log())
    yield
    print(f"--- Postfix's log during the test ({pf.root / 'maillog'}):\n{pf.log()[start:]}")


@pytest.fixture
async def env(tmp_path: Path, postfix: Postfix, inbound_port: int) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path, smtp_ports=(0, inbound_port)) as e:
        yield e


def message(sender: str, to: str, subject: str, marker: str = "") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    if marker:
        m["X-Test-Marker"] = marker
    m.set_content("Kính gửi Sở Tư pháp,\n\nĐề nghị quý Sở cho ý kiến về dự thảo kế hoạch.\n")
    return m.as_bytes()


def send(port: int, mail_from: str, rcpts: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("mta.example.org")
        return s.sendmail(mail_from, rcpts, raw)


async def inbox(env: MailEnv, address: str, count: int = 1) -> list[bytes]:
    """The raw messages in the Inbox once `count` have arrived (Postfix relays from its queue)."""
    deadline = time.monotonic() + WAIT_S
    where = f"mailbox_address = '{address}' and folder_id = 'INBOX'"
    while env.rows("messages", where) < count:
        assert time.monotonic() < deadline, f"{address} got no mail through Postfix"
        await asyncio.sleep(0.1)
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        ids = store.message_ids(address, "INBOX")
        found = [store.message(address, i) for i in ids]
        return [store.blob(m.blob_sha256) or b"" for m in found if m is not None]


async def test_postfix_as_mx_relays_to_the_mailbox(env: MailEnv, postfix: Postfix) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    raw = message(OUTSIDE, an, "Góp ý dự thảo kế hoạch")
    assert await asyncio.to_thread(send, postfix.mx_port, OUTSIDE, [an], raw) == {}

    (stored,) = await inbox(env, an)
    parsed = message_from_bytes(stored, policy=policy.default)
    received = [str(h) for h in parsed.get_all("Received") or []]
    # Ours on top (from Postfix), Postfix's below it (from the sending server).
    assert received[0].startswith(f"from {HOSTNAME} (127.0.0.1) by mail.test"), received
    assert f"by {HOSTNAME} (Postfix) with ESMTP id" in received[1], received
    assert parsed["Subject"] == "Góp ý dự thảo kế hoạch"
    await asyncio.to_thread(postfix.wait_log, f"to=<{an}>, relay=127.0.0.1[127.0.0.1]:")
    assert "status=sent (250 2.0.0 OK stored)" in await asyncio.to_thread(
        postfix.wait_log, "OK stored"
    )


async def test_unknown_recipient_is_refused_by_postfix_with_our_550(
    env: MailEnv, postfix: Postfix
) -> None:
    binh = env.add_official("u-binh", "Trần Thị Bình", JUSTICE)
    unknown = "khongco@stp.hatinh.gov.vn"
    raw = message(OUTSIDE, binh, "Thư gửi nhầm địa chỉ")

    # Postfix probes our inbound port (RCPT only) before it answers the sending server.
    refused = await asyncio.to_thread(send, postfix.mx_port, OUTSIDE, [binh, unknown], raw)
    assert list(refused) == [unknown]
    code, text = refused[unknown]
    assert code == 550
    assert b"Recipient address rejected: undeliverable address" in text, text
    assert b"said: 550 5.1.1 No such mailbox" in text, text  # our reply, quoted
    assert len(await inbox(env, binh)) == 1  # the known recipient still gets it
    log = await asyncio.to_thread(
        postfix.wait_log, f"reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <{unknown}>"
    )
    assert "status=bounced" not in log  # refused at RCPT: nothing accepted to bounce later

    def only_unknown() -> int:
        with smtplib.SMTP("127.0.0.1", postfix.mx_port, timeout=30) as s:
            s.ehlo("mta.example.org")
            s.mail(OUTSIDE)
            return s.rcpt(unknown)[0]

    assert await asyncio.to_thread(only_unknown) == 550  # cached verdict, same refusal


async def test_a_refusal_after_postfix_accepted_ends_as_its_bounce(
    env: MailEnv, postfix: Postfix, sink: Sink
) -> None:
    """A mailbox disabled after Postfix verified it: Postfix has said 250 to the sender, our
    550 at delivery makes Postfix bounce (a DSN to the sender, through its relayhost)."""
    ha = env.add_official("u-ha", "Đặng Thị Thu Hà", JUSTICE)
    first = message(OUTSIDE, ha, "Thư thứ nhất")
    assert await asyncio.to_thread(send, postfix.mx_port, OUTSIDE, [ha], first) == {}
    await inbox(env, ha)  # verified (cached by Postfix) and delivered
    with env.app.uow() as uow:
        env.app.on_user_active(uow, "u-ha", False)
        uow.commit()

    second = message(OUTSIDE, ha, "Thư thứ hai")
    assert await asyncio.to_thread(send, postfix.mx_port, OUTSIDE, [ha], second) == {}
    log = await asyncio.to_thread(postfix.wait_log, "status=bounced")
    assert f"to=<{ha}>" in log and "said: 550 5.2.1 Mailbox disabled" in log, log
    dsn = await asyncio.to_thread(sink.wait_for, OUTSIDE, b"Mailbox disabled")
    assert dsn.mail_from == "<>"  # a bounce has the null sender (RFC 5321 4.5.5)
    assert b"multipart/report; report-type=delivery-status" in (dsn.original_content or b"")
    assert env.rows("messages", f"mailbox_address = '{ha}'") == 1  # only the first


async def test_postfix_mx_is_no_open_relay(postfix: Postfix) -> None:
    raw = message("annv@stp.hatinh.gov.vn", OUTSIDE, "Chuyển tiếp")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        await asyncio.to_thread(send, postfix.mx_port, "annv@stp.hatinh.gov.vn", [OUTSIDE], raw)
    code, text = e.value.recipients[OUTSIDE]
    assert (code, b"Relay access denied" in text) == (554, True), text


def test_postfix_as_smarthost_relays_outside_mail(postfix: Postfix, sink: Sink) -> None:
    """What the mail service's relay ([mail] smarthost) will do: hand outside mail to
    Postfix's relay port from 127.0.0.1; Postfix takes it on to its relayhost."""
    an = "annv@stp.hatinh.gov.vn"
    raw = message(an, OUTSIDE, "Công văn gửi đối tác", marker="smarthost-check")
    assert send(postfix.relay_port, an, [OUTSIDE], raw) == {}
    got = sink.wait_for(OUTSIDE, b"smarthost-check")
    assert got.mail_from == an
    assert f"by {HOSTNAME} (Postfix) with ESMTP id".encode() in (got.original_content or b"")
    postfix.wait_log(f"to=<{OUTSIDE}>, relay=127.0.0.1[127.0.0.1]:{sink.port}")


async def test_the_relay_sends_through_postfix_dkim_signed(
    env: MailEnv, postfix: Postfix, sink: Sink
) -> None:
    """The mail service's own relay ([mail] smarthost = Postfix's relay port) hands a queued
    message to Postfix, which takes it to its relayhost; the DKIM signature the relay made
    still verifies there (dkimpy, the key published in a real DNS server)."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    raw = message(an, OUTSIDE, "Công văn qua Postfix", marker="relay-through-postfix")
    await asyncio.to_thread(env.app.deliver, raw, an, [OUTSIDE])
    section = dataclasses.replace(
        env.runtime.settings.mail, smarthost=f"127.0.0.1:{postfix.relay_port}"
    )
    keys = keys_from_settings(env.runtime.settings)
    assert await asyncio.to_thread(build_relay(env.app, section, keys).run_once) == 1
    got = await asyncio.to_thread(sink.wait_for, OUTSIDE, b"relay-through-postfix")
    assert got.mail_from == an
    data = got.original_content or b""
    assert f"by {HOSTNAME} (Postfix)".encode() in data and b"DKIM-Signature:" in data
    with DnsServer() as dns_server:
        dns_server.add_txt("lgsp._domainkey.stp.hatinh.gov.vn", keys.txt_value("stp.hatinh.gov.vn"))
        checks = InboundChecks(make_resolver(dns_server.address), "sink.test")
        auth = await asyncio.to_thread(checks.check, data, "127.0.0.1", "postfix", an)
    assert auth.dkim == "pass"
    with env.app.uow() as uow:
        assert MailStore(uow.session).queue_waiting() == []
