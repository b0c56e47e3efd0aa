"""SPF and DKIM results on mail coming in on the inbound port, with real lookups against a
tiny DNS server (tests/support/dns_server.py) and smtplib as the sending server: pass, fail,
softfail, none and temperror (a DNS server that never answers, within the time budget),
DKIM pass and fail (the body altered after signing), recorded in an Authentication-Results
header, in the message's columns and in gRPC's MailMessage.authentication; forged
Authentication-Results for our own authserv-id removed. Policy: recorded, never refused."""

from __future__ import annotations

import asyncio
import email
import smtplib
import time
from collections.abc import AsyncIterator, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from lgsp.api.mail.v1 import mail_pb2 as pb
from services.mail.adapters.dkim_keys import DkimKeys
from services.mail.adapters.store import MailStore
from services.mail.domain.mailbox import INBOX
from tests.services.mail.env import JUSTICE, MailEnv, mail_env
from tests.support.dns_server import DnsServer

SENDER = "ban@example.org"
ALLOW = "v=spf1 ip4:127.0.0.1 -all"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
async def env(tmp_path: Path, dns_server: DnsServer) -> AsyncIterator[MailEnv]:
    async with mail_env(
        tmp_path, LGSP_MAIL_DNS_RESOLVER=dns_server.address, LGSP_MAIL_DNS_BUDGET_S="1"
    ) as e:
        yield e


def message(subject: str = "Công văn số 12", extra: str = "") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = SENDER, "annv@stp.hatinh.gov.vn", subject
    m["Date"] = "Mon, 04 May 2026 08:00:00 +0700"
    m["Message-ID"] = f"<{time.monotonic_ns()}@example.org>"
    if extra:
        name, _, value = extra.partition(": ")
        m[name] = value
    m.set_content("Kính gửi Sở Tư pháp.")
    return m.as_bytes().replace(b"\n", b"\r\n")


def signed(raw: bytes, keys: DkimKeys) -> bytes:
    return keys.sign(raw, "example.org")


async def receive(env: MailEnv, raw: bytes, helo: str = "mx.example.org") -> float:
    def send() -> float:
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=20) as s:
            s.ehlo(helo)
            s.sendmail(SENDER, ["annv@stp.hatinh.gov.vn"], raw)
        return time.monotonic() - start

    return await asyncio.to_thread(send)


def stored(env: MailEnv, address: str = "annv@stp.hatinh.gov.vn") -> tuple[bytes, pb.MailMessage]:
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        [mid] = store.message_ids(address, INBOX)
        m = store.message(address, mid)
        assert m is not None
        raw = store.blob(m.blob_sha256) or b""
    return raw, m


async def grpc_authentication(env: MailEnv, message_id: str) -> pb.AuthenticationResults:
    reply = await env.stub().GetMessage(
        pb.GetMessageRequest(mailbox_address="annv@stp.hatinh.gov.vn", id=message_id),
        metadata=env.md("u-an"),
    )
    return reply.message.authentication


def keys_published(tmp_path: Path, dns_server: DnsServer) -> DkimKeys:
    keys = DkimKeys(tmp_path / "outside-dkim", "sel1")
    dns_server.add_txt("sel1._domainkey.example.org", keys.txt_value("example.org"))
    return keys


async def test_spf_pass_and_dkim_pass(env: MailEnv, dns_server: DnsServer, tmp_path: Path) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("example.org", ALLOW)
    keys = keys_published(tmp_path, dns_server)
    await receive(env, signed(message(), keys))
    raw, m = stored(env)
    head = email.message_from_bytes(raw, policy=policy.default)
    [results] = head.get_all("Authentication-Results")
    assert raw.startswith(b"Authentication-Results: mail.test;")  # prepended at receipt
    text = " ".join(str(results).split())
    assert "spf=pass (127.0.0.1) smtp.mailfrom=ban@example.org" in text
    assert "dkim=pass header.d=example.org header.s=sel1" in text
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("pass", "pass")
    shown = await grpc_authentication(env, m.id)
    assert (shown.spf, shown.dkim) == ("pass", "pass")
    assert shown.summary.startswith("mail.test;")


async def test_spf_fail_and_dkim_fail_are_recorded_not_refused(
    env: MailEnv, dns_server: DnsServer, tmp_path: Path
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("example.org", "v=spf1 ip4:192.0.2.10 -all")
    keys = keys_published(tmp_path, dns_server)
    original = signed(message(), keys)
    tampered = original.replace("Kính gửi".encode(), "Kính gửi ông".encode())  # after signing
    assert tampered != original
    await receive(env, tampered)  # 250: recorded, not refused (docs/mail.md)
    _, m = stored(env)
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("fail", "fail")


async def test_spf_softfail_and_none(env: MailEnv, dns_server: DnsServer) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("example.org", "v=spf1 ip4:192.0.2.10 ~all")
    await receive(env, message())
    _, m = stored(env)
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("softfail", "none")
    dns_server.records.clear()  # example.org publishes nothing now
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        for mid in store.message_ids("annv@stp.hatinh.gov.vn"):
            found = store.message("annv@stp.hatinh.gov.vn", mid)
            assert found is not None
            store.delete_message(found)
        uow.commit()
    await receive(env, message())
    _, m = stored(env)
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("none", "none")


async def test_dns_not_answering_is_temperror_within_the_budget(
    env: MailEnv, dns_server: DnsServer, tmp_path: Path
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    keys = keys_published(tmp_path, dns_server)
    raw = signed(message(), keys)
    dns_server.silent = True
    took = await receive(env, raw)
    assert took < 3.0  # the budget is 1 s (LGSP_MAIL_DNS_BUDGET_S): never a stalled session
    _, m = stored(env)
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("temperror", "temperror")
    assert dns_server.queries  # real lookups were tried


async def test_forged_authentication_results_for_our_id_are_removed(
    env: MailEnv, dns_server: DnsServer
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    forged = message(extra="Authentication-Results: mail.test; spf=pass; dkim=pass")
    forged = forged.replace(
        b"Subject:", b"Authentication-Results: (x) MAIL.TEST;\r\n\tdkim=pass\r\nSubject:", 1
    )
    forged = forged.replace(
        b"Subject:", b"Authentication-Results: mx.example.org; spf=pass\r\nSubject:", 1
    )
    await receive(env, forged)
    raw, _m = stored(env)
    head = email.message_from_bytes(raw, policy=policy.default)
    results = [" ".join(str(v).split()) for v in head.get_all("Authentication-Results")]
    ours = [r for r in results if r.lower().startswith("mail.test")]
    assert len(ours) == 1 and "spf=none" in ours[0]  # only the one made here
    assert "mx.example.org; spf=pass" in results  # another server's stays
    assert "(x) MAIL.TEST" not in raw.decode("utf-8", "replace")


async def test_a_malformed_signature_is_permerror_and_still_delivered(
    env: MailEnv, dns_server: DnsServer
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("example.org", ALLOW)
    await receive(env, b"DKIM-Signature: v=1; a=rsa-sha256; d=; garbage\r\n" + message())
    _, m = stored(env)
    assert m.authentication is not None
    assert (m.authentication.spf, m.authentication.dkim) == ("pass", "permerror")


async def test_a_signature_whose_key_is_not_published_is_permerror(
    env: MailEnv, dns_server: DnsServer, tmp_path: Path
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("example.org", ALLOW)  # the domain exists, sel1._domainkey does not
    await receive(env, signed(message(), DkimKeys(tmp_path / "unpublished", "sel1")))
    _, m = stored(env)
    assert m.authentication is not None
    assert m.authentication.dkim == "permerror"


async def test_null_sender_is_checked_by_helo_and_hostile_names_stay_out_of_the_header(
    env: MailEnv, dns_server: DnsServer
) -> None:
    env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    dns_server.add_txt("mx.example.org", ALLOW)

    def send(helo: str) -> None:
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=20) as s:
            s.ehlo(helo)
            s.sendmail("", ["annv@stp.hatinh.gov.vn"], message())

    await asyncio.to_thread(send, "mx.example.org")
    _, m = stored(env)
    assert m.authentication is not None
    assert m.authentication.spf == "pass"
    assert "smtp.helo=mx.example.org" in m.authentication.summary
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        store.delete_message(m)
        uow.commit()
    await asyncio.to_thread(send, "x;dkim=pass(y)")  # a HELO dressed as a result
    raw, m = stored(env)
    assert m.authentication is not None
    header = raw.split(b"\r\nReceived:")[0].decode()
    assert header.count(";") == 2 and header.count("dkim=") == 1  # no result smuggled in
    assert "smtp.helo=xdkimpassy;" in header
