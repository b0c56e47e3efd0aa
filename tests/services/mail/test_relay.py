"""The relay of mail for outside recipients to a real SMTP server standing in for the
smarthost (tests/support/smarthost.py): delivered and DKIM-signed (verified by dkimpy against
the published key through a real DNS server), 4xx retried, 5xx bounced with an RFC 3464 DSN
in the sender's Inbox and MailBounced in the outbox, given up after bounce_after_s, the
smarthost down, two workers on one queue, and a relay process killed mid-send."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import logging
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path

import dkim
import dns.resolver
import pytest
import sqlalchemy as sa

from services.mail.adapters.dkim_keys import dkim_dns_record, keys_from_settings
from services.mail.adapters.store import MailStore
from services.mail.bootstrap import build_relay
from services.mail.domain.mailbox import INBOX, Status
from services.mail.service_layer.relay import Relay
from tests.services.mail.env import JUSTICE, ROOT, MailEnv, client_tls, mail_env
from tests.services.mail.test_durability import prepare
from tests.support import free_port
from tests.support.dns_server import DnsServer
from tests.support.smarthost import Smarthost

OUTSIDE = "ban@example.org"
PASSWORD = "Mat-khau-2026!"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def smarthost() -> Iterator[Smarthost]:
    with Smarthost() as s:
        yield s


def message(sender: str, to: str, subject: str = "Kế hoạch tháng 5") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = f"<{time.monotonic_ns()}@stp.hatinh.gov.vn>"
    m.set_content("Nội dung kế hoạch.")
    return m.as_bytes()


def relay(env: MailEnv, host: Smarthost, worker: str = "", **changes: object) -> Relay:
    changes = {"smarthost": host.address, "smarthost_tls": "none", **changes}
    section = dataclasses.replace(env.runtime.settings.mail, **changes)
    return build_relay(env.app, section, keys_from_settings(env.runtime.settings), worker=worker)


def queue(env: MailEnv, sender: str, rcpt: str = OUTSIDE, subject: str = "Kế hoạch") -> None:
    env.app.deliver(message(sender, rcpt, subject), sender, [rcpt])


def waiting(env: MailEnv) -> list[tuple[str, int, str]]:
    with env.app.uow() as uow:
        return MailStore(uow.session).queue_waiting()


def inbox(env: MailEnv, address: str) -> list[Message]:
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        found = []
        for mid in store.message_ids(address, INBOX):
            m = store.message(address, mid)
            assert m is not None
            found.append(
                email.message_from_bytes(store.blob(m.blob_sha256) or b"", policy=policy.default)
            )
    return found


def disable(env: MailEnv, address: str) -> None:
    """The mailbox disabled, as identity's UserDisabled would (between RCPT and DATA)."""
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        mb = store.mailbox(address)
        assert mb is not None
        mb.status, mb.disabled_time = Status.DISABLED, datetime.now(UTC)
        store.save_mailbox(mb, mb.version)
        uow.commit()


def report_fields(dsn: Message) -> dict[str, str]:
    part = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    fields: dict[str, str] = {}
    for block in part.get_payload():
        for k, v in block.items():
            fields[k.lower()] = str(v)
    return fields


async def test_outside_mail_is_relayed_dkim_signed(tmp_path: Path, smarthost: Smarthost) -> None:
    with DnsServer() as dns_server:
        async with mail_env(
            tmp_path,
            LGSP_MAIL_SMARTHOST=smarthost.address,
            LGSP_MAIL_SMARTHOST_TLS="none",
            LGSP_MAIL_RELAY_INTERVAL_S="0.1",
        ) as env:
            an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10) as s:
                    s.starttls(context=client_tls())
                    s.login(an, PASSWORD)
                    s.sendmail(an, [OUTSIDE], message(an, OUTSIDE))

            await asyncio.to_thread(send)
            for _ in range(100):
                if smarthost.received:
                    break
                await asyncio.sleep(0.1)
            assert [(r.mail_from, r.rcpt_tos) for r in smarthost.received] == [(an, [OUTSIDE])]
            # The smarthost has the message once it accepted DATA; the relay marks the row
            # done when its transaction has ended, a moment later.
            for _ in range(50):
                if not waiting(env):
                    break
                await asyncio.sleep(0.1)
            assert waiting(env) == []  # the row is done
            assert env.rows("message_blobs") == 0  # no copy kept here: the bytes went with it
            # The operator publishes the record dkim_dns_record gives …
            record = dkim_dns_record(env.runtime.settings, "stp.hatinh.gov.vn")
            assert record.startswith(
                'lgsp._domainkey.stp.hatinh.gov.vn. IN TXT ( "v=DKIM1; k=rsa; p='
            )
            key_file = tmp_path / "mail-dkim" / "stp.hatinh.gov.vn.key"
            assert key_file.stat().st_mode & 0o777 == 0o600
            value = keys_from_settings(env.runtime.settings).txt_value("stp.hatinh.gov.vn")
            dns_server.add_txt("lgsp._domainkey.stp.hatinh.gov.vn", value)
        # … and the receiving side's dkimpy verifies the signature through DNS.
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], dns_server.port

        def txt(name: bytes, timeout: float = 5) -> bytes:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
            return b"".join(next(iter(answer)).strings)

        sent = smarthost.received[0].data
        signature = sent.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[:4]
        assert signature[0].startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert b" d=stp.hatinh.gov.vn;" in b"".join(signature)
        assert b"\r\n" in sent and b"\n" not in sent.replace(b"\r\n", b"")  # CRLF only
        assert await asyncio.to_thread(dkim.verify, sent, dnsfunc=txt)
        tampered = sent.replace("Nội dung".encode(), "Nội dung đã sửa".encode())
        assert tampered != sent
        assert not await asyncio.to_thread(dkim.verify, tampered, dnsfunc=txt)


async def test_a_4xx_is_retried_on_schedule_then_delivered(
    tmp_path: Path, smarthost: Smarthost
) -> None:
    clock = Clock()
    async with mail_env(tmp_path, options={"clock": clock}) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an)
        smarthost.handler.answers[OUTSIDE] = "450 4.2.0 Mailbox busy, try later"
        worker = relay(env, smarthost)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert waiting(env) == [(OUTSIDE, 1, "450 4.2.0 Mailbox busy, try later")]
        clock.advance(59)
        assert await asyncio.to_thread(worker.run_once) == 0  # not due before 60 s
        clock.advance(2)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert waiting(env)[0][1] == 2  # the next wait is 300 s
        clock.advance(299)
        assert await asyncio.to_thread(worker.run_once) == 0
        del smarthost.handler.answers[OUTSIDE]
        clock.advance(2)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert waiting(env) == []
        assert len(smarthost.received) == 1
        assert not [e for e in env.events() if e[0] == "MailBounced"]


async def test_a_5xx_bounces_once_with_a_dsn_in_the_senders_inbox(
    tmp_path: Path, smarthost: Smarthost
) -> None:
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an, subject="Báo cáo quý II")
        smarthost.handler.answers[OUTSIDE] = "550 5.1.1 No such user here"
        worker = relay(env, smarthost)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert await asyncio.to_thread(worker.run_once) == 0
        assert waiting(env) == []
        assert smarthost.received == []
        [dsn] = inbox(env, an)
        assert dsn.get_content_type() == "multipart/report"
        assert dsn.get_param("report-type") == "delivery-status"
        assert str(dsn["From"]).endswith("<MAILER-DAEMON@stp.hatinh.gov.vn>")
        assert "Báo cáo quý II" in str(dsn["Subject"])
        fields = report_fields(dsn)
        assert fields["final-recipient"] == f"rfc822; {OUTSIDE}"
        assert fields["action"] == "failed"
        assert fields["status"] == "5.1.1"
        assert fields["diagnostic-code"] == "smtp; 550 5.1.1 No such user here"
        human = dsn.get_body(("plain",))
        assert human is not None
        text = human.get_content()
        assert "không gửi được đến người nhận" in text and "could not be delivered" in text
        headers = next(p for p in dsn.walk() if p.get_content_type() == "text/rfc822-headers")
        assert b"Subject:" in headers.get_payload(decode=True) or "Subject:" in str(
            headers.get_payload()
        )
        bounced = [e for e in env.events() if e[0] == "MailBounced"]
        assert bounced == [("MailBounced", an)]
        assert ("MailDelivered", an) in env.events()  # the DSN, as any mail to the Inbox


async def test_a_5xx_after_data_bounces_too(tmp_path: Path, smarthost: Smarthost) -> None:
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an)
        smarthost.handler.data_answers[OUTSIDE] = "552 5.3.4 Message too big for this system"
        await asyncio.to_thread(relay(env, smarthost).run_once)
        assert waiting(env) == [] and smarthost.received == []
        [dsn] = inbox(env, an)
        fields = report_fields(dsn)
        assert fields["status"] == "5.3.4"
        assert fields["remote-mta"] == "dns; 127.0.0.1"


async def test_give_up_after_bounce_after_s(tmp_path: Path, smarthost: Smarthost) -> None:
    clock = Clock()
    async with mail_env(tmp_path, options={"clock": clock}) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an)
        smarthost.handler.answers[OUTSIDE] = "451 4.3.0 Greylisted"
        worker = relay(env, smarthost, bounce_after_s=3600)
        for _ in range(4):  # 60, 300, 900 s … still within the hour
            await asyncio.to_thread(worker.run_once)
            clock.advance(901)
        assert waiting(env) and inbox(env, an) == []
        clock.advance(3600)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert waiting(env) == []
        [dsn] = inbox(env, an)
        fields = report_fields(dsn)
        assert fields["status"].startswith("4.")  # the last answer was temporary
        assert "gave up after" in fields["diagnostic-code"]


async def test_smarthost_down_nothing_lost(tmp_path: Path) -> None:
    clock = Clock()
    host = Smarthost()  # not started: connections are refused
    async with mail_env(tmp_path, options={"clock": clock}) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        for i in range(3):
            queue(env, an, f"kh{i}@example.org")
        worker = relay(env, host)
        assert await asyncio.to_thread(worker.run_once) == 3
        assert [w[1] for w in waiting(env)] == [1, 1, 1]
        assert "refused" in waiting(env)[0][2].lower()
        host.start()
        try:
            clock.advance(61)
            assert await asyncio.to_thread(worker.run_once) == 3
            assert sorted(r.rcpt_tos[0] for r in host.received) == [
                "kh0@example.org",
                "kh1@example.org",
                "kh2@example.org",
            ]
            assert waiting(env) == []
        finally:
            host.stop()


async def test_a_dropped_connection_is_retried(tmp_path: Path, smarthost: Smarthost) -> None:
    clock = Clock()
    async with mail_env(tmp_path, options={"clock": clock}) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an)
        smarthost.handler.answers[OUTSIDE] = "drop"
        worker = relay(env, smarthost)
        await asyncio.to_thread(worker.run_once)
        assert waiting(env)[0][:2] == (OUTSIDE, 1)
        del smarthost.handler.answers[OUTSIDE]
        clock.advance(61)
        await asyncio.to_thread(worker.run_once)
        assert len(smarthost.received) == 1 and waiting(env) == []


async def test_two_workers_on_one_queue_send_each_message_once(
    tmp_path: Path, smarthost: Smarthost, db_url: str
) -> None:
    """On SQLite and on PostgreSQL (FOR UPDATE SKIP LOCKED)."""
    async with mail_env(tmp_path, LGSP_MAIL_DATABASE_URL=db_url) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        rcpts = [f"kh{i}@example.org" for i in range(40)]
        for r in rcpts:
            queue(env, an, r)
        smarthost.handler.delay_s = 0.01  # so that the two workers' passes overlap
        workers = [relay(env, smarthost, worker=w) for w in ("w1", "w2")]
        for w in workers:
            w.policy = dataclasses.replace(w.policy, batch=5)

        def drain(w: Relay) -> int:
            total = 0
            while n := w.run_once():
                total += n
            return total

        done = await asyncio.gather(*(asyncio.to_thread(drain, w) for w in workers))
        assert sum(done) == 40 and all(done)  # both took part
        assert sorted(r.rcpt_tos[0] for r in smarthost.received) == sorted(rcpts)
        assert waiting(env) == []


async def test_starttls_opportunistic_and_required(tmp_path: Path) -> None:
    from services.mail.adapters.tls import ensure_self_signed

    clock = Clock()
    with Smarthost(
        tls=ensure_self_signed(tmp_path / "smarthost-tls", "smarthost.test")
    ) as tls_host:
        async with mail_env(tmp_path, options={"clock": clock}) as env:
            an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
            queue(env, an)
            await asyncio.to_thread(relay(env, tls_host, smarthost_tls="opportunistic").run_once)
            assert tls_host.handler.tls_seen == [True]
            # required: a self-signed certificate no CA vouches for → nothing sent, retried
            queue(env, an, "b@example.org")
            await asyncio.to_thread(relay(env, tls_host, smarthost_tls="required").run_once)
            assert len(tls_host.received) == 1
            assert waiting(env)[0][:2] == ("b@example.org", 1)
            assert "certificate" in waiting(env)[0][2].lower()


async def test_auth_at_the_smarthost_only_over_tls(tmp_path: Path) -> None:
    from services.mail.adapters.tls import ensure_self_signed

    pair = ensure_self_signed(tmp_path / "smarthost-tls", "smarthost.test")
    clock = Clock()
    with Smarthost(tls=pair, login=("lgsp-relay", "bi-mat")) as host:
        async with mail_env(tmp_path, options={"clock": clock}) as env:
            an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
            queue(env, an)
            wrong = relay(
                env,
                host,
                smarthost_tls="opportunistic",
                smarthost_user="lgsp-relay",
                smarthost_password="sai",
            )
            await asyncio.to_thread(wrong.run_once)  # a wrong password: retried, not bounced
            assert waiting(env)[0][:2] == (OUTSIDE, 1) and "535" in waiting(env)[0][2]
            worker = relay(
                env,
                host,
                smarthost_tls="opportunistic",
                smarthost_user="lgsp-relay",
                smarthost_password="bi-mat",
            )
            clock.advance(61)
            await asyncio.to_thread(worker.run_once)
            assert host.logins == ["lgsp-relay"] and len(host.received) == 1
            assert waiting(env) == []


async def test_rows_not_begun_before_the_lease_ends_are_released(
    tmp_path: Path, smarthost: Smarthost
) -> None:
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        queue(env, an)
        worker = relay(env, smarthost)
        worker.policy = dataclasses.replace(worker.policy, lease_s=0.0)  # ends at once
        assert await asyncio.to_thread(worker.run_once) == 1
        assert smarthost.received == []
        assert waiting(env)[0][:2] == (OUTSIDE, 0)  # no attempt counted, due again now
        worker.policy = dataclasses.replace(worker.policy, lease_s=300.0)
        assert await asyncio.to_thread(worker.run_once) == 1
        assert len(smarthost.received) == 1


async def test_a_null_sender_is_never_bounced(tmp_path: Path, smarthost: Smarthost) -> None:
    async with mail_env(tmp_path) as env:
        env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        raw = message("MAILER-DAEMON@hatinh.gov.vn", OUTSIDE)
        env.app.deliver(raw, "", [OUTSIDE])  # a DSN on its way out
        smarthost.handler.answers[OUTSIDE] = "550 5.1.1 No such user"
        await asyncio.to_thread(relay(env, smarthost).run_once)
        assert waiting(env) == []  # dropped, no DSN queued back
        assert env.rows("messages") == 0
        assert [e[0] for e in env.events()].count("MailBounced") == 1


async def test_an_empty_poll_logs_nothing(
    tmp_path: Path, smarthost: Smarthost, caplog: pytest.LogCaptureFixture
) -> None:
    async with mail_env(tmp_path) as env:
        # No smarthost configured: said once at start.
        unset = [r for r in caplog.records if "smarthost is not set" in r.getMessage()]
        assert len(unset) == 1 and unset[0].levelno == logging.WARNING
        worker = relay(env, smarthost)
        with caplog.at_level(logging.DEBUG, logger="services.mail"):
            caplog.clear()  # the start's own lines
            assert await asyncio.to_thread(worker.run_once) == 0
        assert [r for r in caplog.records if r.name.startswith("services.mail")] == []


async def test_inbound_recipient_disabled_after_rcpt_gets_the_sender_a_dsn(
    tmp_path: Path,
) -> None:
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        binh = env.add_official("u-binh", "Trần Thị Bình", JUSTICE)

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
                s.ehlo("mx.example.org")
                s.mail(OUTSIDE)
                s.rcpt(an)
                s.rcpt(binh)
                disable(env, binh)  # identity disables Bình in between
                code, _ = s.data(message(OUTSIDE, f"{an}, {binh}"))
                return {"code": (code, b"")}

        assert (await asyncio.to_thread(send))["code"][0] == 250
        assert len(inbox(env, an)) == 1 and inbox(env, binh) == []
        [(rcpt, attempts, _)] = waiting(env)
        assert (rcpt, attempts) == (OUTSIDE, 0)
        with env.runtime.engine.connect() as conn:
            row = conn.execute(sa.text("select mail_from, blob_sha256 from outgoing")).one()
            raw = conn.execute(
                sa.text("select raw from message_blobs where sha256 = :s"), {"s": row[1]}
            ).scalar_one()
        assert row[0] == ""  # the DSN goes out with the null sender
        fields = report_fields(email.message_from_bytes(raw, policy=policy.default))
        assert fields["final-recipient"] == f"rfc822; {binh}"
        assert fields["status"] == "5.2.1"


async def test_inbound_bounce_with_a_null_sender_gets_no_dsn(tmp_path: Path) -> None:
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        binh = env.add_official("u-binh", "Trần Thị Bình", JUSTICE)

        def send() -> int:
            with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
                s.ehlo("mx.example.org")
                s.mail("<>")
                s.rcpt(an)
                s.rcpt(binh)
                disable(env, binh)
                return s.data(message("MAILER-DAEMON@example.org", an))[0]

        assert await asyncio.to_thread(send) == 250
        assert len(inbox(env, an)) == 1
        assert waiting(env) == []  # a bounce is never bounced
        assert [e[0] for e in env.events()].count("MailBounced") == 1


def test_a_relay_killed_mid_send_sends_again_at_most_once(tmp_path: Path) -> None:
    address = prepare(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    from services.mail.service_layer.mail import MailApp, MailRules
    from tests.services.mail.env import AGENCIES

    app = MailApp(engine, AGENCIES, MailRules())
    app.deliver(message(address, OUTSIDE), address, [OUTSIDE])
    engine.dispose()
    log = tmp_path / "mail-service.log"
    with Smarthost() as host:

        def start(faults: str) -> subprocess.Popen[bytes]:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
                "LGSP_MAIL_GRPC_PORT": str(free_port()),
                "LGSP_MAIL_SMTP_SUBMISSION_PORT": str(free_port()),
                "LGSP_MAIL_SMTP_INBOUND_PORT": str(free_port()),
                "LGSP_MAIL_IMAP_PORT": str(free_port()),
                "LGSP_MAIL_IMAPS_PORT": str(free_port()),
                "LGSP_IDENTITY_GRPC_PORT": str(free_port()),
                "LGSP_IDENTITY_HTTP_PORT": str(free_port()),
                "LGSP_MAIL_SMARTHOST": host.address,
                "LGSP_MAIL_SMARTHOST_TLS": "none",
                "LGSP_MAIL_RELAY_INTERVAL_S": "0.2",
                "LGSP_MAIL_RELAY_LEASE_S": "2",
                "LGSP_FAULTS": faults,
            }
            with log.open("ab") as out:  # the service's log, shown when an assertion fails
                return subprocess.Popen(
                    [sys.executable, "-m", "services.mail"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=out,
                )

        def queued() -> int:
            e = sa.create_engine(f"sqlite:///{tmp_path / 'mail.db'}")
            try:
                with e.connect() as conn:
                    return int(conn.execute(sa.text("select count(*) from outgoing")).scalar_one())
            finally:
                e.dispose()

        def tail() -> str:
            return log.read_text(errors="replace")[-3000:]

        proc = start("mail.relay.after_send")
        try:
            assert proc.wait(45) == -signal.SIGKILL, tail()  # killed after the smarthost's 250
        finally:
            proc.kill()
        assert (len(host.received), queued()) == (1, 1), tail()  # sent, not yet settled
        proc = start("")
        try:
            deadline = time.monotonic() + 60  # a start on a busy machine takes long
            while queued() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert queued() == 0, tail()
            time.sleep(1.0)
            assert len(host.received) == 2, tail()  # once more after the lease, and no more
        finally:
            proc.kill()
            proc.wait(10)


def test_lgsp_mail_dkim_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lgsp.cli import main

    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    assert main(["mail", "dkim-record", "STP.hatinh.gov.vn."]) == 0
    record = capsys.readouterr().out.strip()
    assert record.startswith('lgsp._domainkey.stp.hatinh.gov.vn. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert (tmp_path / "mail-dkim" / "stp.hatinh.gov.vn.key").stat().st_mode & 0o777 == 0o600
    assert main(["mail", "dkim-record", "stp.hatinh.gov.vn"]) == 0  # the same key again
    assert capsys.readouterr().out.strip() == record
    assert main(["mail", "dkim-record", "../etc/passwd"]) == 2
    assert "not a mail domain" in capsys.readouterr().err
