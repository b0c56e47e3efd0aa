"""IMAP FETCH of the headers of a whole mailbox (issue 15's figure), beside pymap's own
in-memory dict backend holding the same messages, in the same process.

A mailbox is filled with 10,000 messages (quick: 1,000) straight through the store (one
transaction), then an imaplib client over IMAPS runs
`UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])` against the mail
service, and the same command against pymap's dict backend (parsed messages in memory: no
database, no login at identity) served by the same server classes on the same event loop
with the same TLS certificate. Called by bench/mail.py as `run(quick)`; alone:
`python -m bench._mail_imap [--quick]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import statistics
import sys
import tempfile
import time
import uuid
from argparse import Namespace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config as DictConfig
from pymap.backend.dict import DictBackend, Login
from pymap.backend.dict.filter import FilterSet
from pymap.backend.dict.mailbox import MailboxSet
from pymap.parsing.message import AppendMessage

from services.mail.adapters.store import MailStore
from services.mail.adapters.tls import ensure_self_signed, server_context
from services.mail.domain.mailbox import INBOX
from services.mail.domain.message import Stored, parse_summary
from services.mail.entrypoints.imap import StoreServer
from tests.services.mail.env import JUSTICE, client_tls, mail_env

COMMAND = "(FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"
PASSWORD = "Mat-khau-2026!"
ROUNDS = 3
SUBJECTS = (
    "Kế hoạch cải cách hành chính năm 2026",
    "Giấy mời họp giao ban tuần",
    "Báo cáo tình hình kinh tế - xã hội tỉnh Hà Tĩnh",
    "V/v góp ý dự thảo Quyết định",
)


def messages(n: int, to: str) -> list[bytes]:
    out = []
    for i in range(n):
        m = EmailMessage()
        m["From"] = f"Chuyên viên {i % 50} <cv{i % 50}@syt.hatinh.gov.vn>"
        m["To"] = to
        m["Subject"] = f"{SUBJECTS[i % len(SUBJECTS)]} (số {i})"
        m["Date"] = "Fri, 04 Dec 2026 08:00:00 +0700"
        m["Message-ID"] = f"<{i}.bench@hatinh.gov.vn>"
        m.set_content("Kính gửi các đồng chí,\n" + "Nội dung văn bản. " * 60)
        out.append(m.as_bytes(policy=policy.SMTP))
    return out


def fill_store(app: object, address: str, raws: list[bytes]) -> None:
    """Straight into the store, one transaction (delivery would be one per message)."""
    now = datetime.now(UTC)
    with app.uow() as uow:  # type: ignore[attr-defined]
        store = MailStore(uow.session)
        for raw in raws:
            sha = hashlib.sha256(raw).hexdigest()
            store.put_blob(sha, raw)
            store.add_message(
                Stored(
                    id=str(uuid.uuid4()),
                    mailbox_address=address,
                    folder_id=INBOX,
                    uid=store.take_uid(address, INBOX),
                    summary=parse_summary(raw),
                    internal_date=now,
                    size=len(raw),
                    blob_sha256=sha,
                )
            )
        store.add_used(address, sum(map(len, raws)))
        uow.commit()


def fetch_all(port: int, user: str, password: str, n: int) -> list[float]:
    """SELECT, then the timed FETCH, ROUNDS times on one connection; seconds per round."""
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=300)
    c.login(user, password)
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0] or 0) == n, (typ, data)
    took = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        typ, data = c.uid("FETCH", "1:*", COMMAND)
        took.append(time.perf_counter() - started)
        answered = sum(1 for x in data if isinstance(x, tuple))
        assert typ == "OK" and answered == n, (typ, answered)
    c.logout()
    return took


async def dict_server(raws: list[bytes], tls_dir: Path) -> tuple[asyncio.Server, int]:
    """pymap's in-memory backend with the same messages, on IMAPS."""
    tls = server_context(*ensure_self_signed(tls_dir, "bench.test"))
    args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
    config = DictConfig(
        args,
        host=None,
        port=0,
        ssl_context=tls,
        tls_enabled=False,
        demo_data=False,
        demo_user="demouser",
        demo_password="demopass",
        reject_dnsbl=False,
        invalid_user_sleep=0.0,
    )
    login = Login(config)
    await DictBackend._add_demo_user(config, login)
    mailbox_set = MailboxSet()
    config.set_cache["demouser"] = (mailbox_set, FilterSet())
    inbox = await mailbox_set.get_mailbox("INBOX")
    now = datetime.now(UTC)
    for raw in raws:
        await inbox.append(AppendMessage(raw, now, frozenset()))
    # Served by our connection classes too (bounded literals, whole-line writes), so the
    # two figures differ by the backend alone: the store in SQLite vs parsed messages in RAM.
    imap = StoreServer(login, config, max_literal=1 << 30)  # type: ignore[arg-type]
    callback = ProxyProtocolReader(config.proxy_protocol).get_callback(imap)
    server = await asyncio.start_server(callback, "127.0.0.1", 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1]


async def measure(n: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        async with mail_env(Path(d)) as env:
            address = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
            raws = messages(n, address)
            started = time.perf_counter()
            await asyncio.to_thread(fill_store, env.app, address, raws)
            print(f"filled {n} messages into the store in {time.perf_counter() - started:.1f} s")
            ours = await asyncio.to_thread(fetch_all, env.ports["imaps"], address, PASSWORD, n)
            server, port = await dict_server(raws, Path(d) / "dict-tls")
            try:
                reference = await asyncio.to_thread(fetch_all, port, "demouser", "demopass", n)
            finally:
                server.close()
    a, b = statistics.median(ours), statistics.median(reference)
    print(f"UID FETCH 1:* {COMMAND} over IMAPS, {n} messages; first round, median of {ROUNDS}:")
    for label, took in (
        ("mail service (SQLite store)", ours),
        ("pymap dict backend (RAM)", reference),
    ):
        median = statistics.median(took)
        print(f"  {label:28} {took[0]:7.3f} s  {median:7.3f} s  {n / median:8.0f} messages/s")
    print(f"  ratio mail/dict (medians)    {a / b:7.2f}")
    return 0


def run(quick: bool) -> int:
    return asyncio.run(measure(1000 if quick else 10_000))


if __name__ == "__main__":
    sys.exit(run("--quick" in sys.argv[1:]))
