"""SMTP throughput of the mail service: messages accepted and delivered per second with 16
concurrent smtplib clients, beside a bare aiosmtpd server that only answers 250.

Every client is a thread with its own connection: EHLO, STARTTLS, EHLO, (AUTH), then its
share of the messages one after another (MAIL, RCPT ×1-3, DATA), timed from the moment all
clients are connected. Each message is a Vietnamese official letter of 2-5 KB to 1-3 local
mailboxes. Rows:

- submission (STARTTLS + AUTH PLAIN, each client a different official): the service in this
  process (tests/services/mail/env.py: the real SMTP servers and store, the password check
  a stand-in for identity's, which is asked once per connection);
- inbound (STARTTLS, outside senders): the same in-process service, and the real
  `python -m services.mail` process on a temporary data directory (what a province runs);
- inbound SPF/DKIM lookups go to a DNS server in this process (tests/support/dns_server.py)
  holding the senders' SPF records;
- reference: aiosmtpd's Controller in this process with the same TLS (and AUTH, accepting
  any password) whose handler answers 250 without storing anything.

After each row the messages are counted in the store: every delivery must be there (a 250
means stored). Figures: msgs/s, the ratio to the reference, p50/p99 of one message's
sendmail() in ms.

    python -m bench._mail_smtp [--quick]    (bench/mail.py calls run(quick))
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import smtplib
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from lgsp import db
from lgsp.api.identity.v1 import identity_pb2
from services.mail.adapters.tls import ensure_self_signed, server_context
from services.mail.plugin import PLUGIN
from services.mail.service_layer.mail import MailApp, MailRules
from tests.services.mail.env import (
    AGENCIES,
    JUSTICE,
    PROVINCE,
    MailEnv,
    client_tls,
    mail_env,
    start_process,
)
from tests.support import free_port
from tests.support.dns_server import DnsServer

CLIENTS = 16
PASSWORD = "Mat-khau-2026!"

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Thu", "Quốc", "Ngọc", "Đức"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hùng", "Lan", "Long", "Mai", "Nam"]
SUBJECTS = [
    "Về việc góp ý dự thảo Kế hoạch cải cách hành chính năm 2026",
    "Báo cáo kết quả giải quyết thủ tục hành chính quý I",
    "Giấy mời họp giao ban công tác tư pháp tháng 5",
    "Đề nghị cung cấp số liệu phục vụ tổng kết chuyển đổi số",
    "V/v triển khai hệ thống thư điện tử công vụ đến cấp xã",
]
SENTENCES = [
    "Thực hiện Kế hoạch số 125/KH-UBND ngày 15/3/2026 của Ủy ban nhân dân tỉnh về cải cách "
    "hành chính, Sở Tư pháp đề nghị các cơ quan, đơn vị rà soát thủ tục thuộc phạm vi quản lý.",
    "Văn bản góp ý xin gửi về Sở trước ngày 20 tháng 5 năm 2026 để tổng hợp, báo cáo Ủy ban "
    "nhân dân tỉnh theo đúng thời hạn quy định.",
    "Đề nghị quý cơ quan phân công cán bộ đầu mối, cung cấp họ tên, chức vụ, số điện thoại và "
    "địa chỉ thư điện tử công vụ để tiện liên hệ trong quá trình triển khai.",
    "Tỷ lệ hồ sơ giải quyết đúng hạn trong quý đạt 97,8%, tăng 2,1% so với cùng kỳ năm trước; "
    "không có hồ sơ quá hạn đối với lĩnh vực hộ tịch và chứng thực.",
    "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc, đề nghị phản ánh kịp thời về Phòng "
    "Hành chính tư pháp để được hướng dẫn, giải quyết.",
    "Việc ứng dụng chữ ký số trong gửi, nhận văn bản điện tử giữa các cơ quan hành chính nhà "
    "nước phải bảo đảm tuân thủ Nghị định số 30/2020/NĐ-CP về công tác văn thư.",
]
SENDERS_OUTSIDE = ["lienhe@congty-anphat.vn", "hotro@vnpt.vn", "vanphong@truonghoc.edu.vn"]


@dataclass
class Mail:
    mail_from: str
    rcpts: list[str]
    raw: bytes


@dataclass
class Row:
    name: str
    messages: int = 0
    deliveries: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    stored: int | None = None  # deliveries found in the store afterwards (None: a reference)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else 0.0


# --- the mail ------------------------------------------------------------------------------


def names(n: int) -> list[str]:
    rnd = random.Random(7)
    found: set[str] = set()
    while len(found) < n:
        found.add(f"{rnd.choice(FAMILY)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}")
    return sorted(found)


def letter(rnd: random.Random, sender: str, rcpts: list[str]) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(rcpts)
    m["Subject"] = rnd.choice(SUBJECTS)
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = make_msgid(domain="bench.hatinh.gov.vn")
    paragraphs = [  # wrapped at 76 as mail clients do
        textwrap.fill(" ".join(rnd.choice(SENTENCES) for _ in range(rnd.randint(2, 4))), 76)
        for _ in range(rnd.randint(3, 6))
    ]
    body = "Kính gửi: Các cơ quan, đơn vị\n\n" + "\n\n".join(paragraphs) + "\n\nTrân trọng./."
    m.set_content(body, cte="8bit")
    return m.as_bytes(policy=policy.SMTP)  # CRLF: smtplib sends bytes as they are


def workload(
    rnd: random.Random, senders: list[str], locals_: list[str], per_client: int
) -> list[list[Mail]]:
    """Per client: its messages, each to 1-3 local recipients (never the sender itself)."""
    jobs = []
    for c in range(CLIENTS):
        sender = senders[c % len(senders)]
        mine = []
        for _ in range(per_client):
            rcpts = rnd.sample([a for a in locals_ if a != sender], rnd.randint(1, 3))
            mine.append(Mail(sender, rcpts, letter(rnd, sender, rcpts)))
        jobs.append(mine)
    return jobs


# --- the clients ---------------------------------------------------------------------------


def drive(row: Row, port: int, jobs: list[list[Mail]], logins: list[str] | None) -> None:
    """16 threads, each its own connection (STARTTLS, AUTH if `logins`), sending its share."""
    ready = threading.Barrier(CLIENTS + 1)
    done: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        latencies: list[float] = []
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            s.ehlo("client.bench")
            s.starttls(context=client_tls())
            s.ehlo("client.bench")
            if logins is not None:
                s.login(logins[i], PASSWORD)
        except BaseException as e:
            errors.append(e)
            ready.abort()
            return
        try:
            ready.wait()
            for mail in jobs[i]:
                t0 = time.perf_counter()
                refused = s.sendmail(mail.mail_from, mail.rcpts, mail.raw)
                latencies.append((time.perf_counter() - t0) * 1000)
                assert not refused, refused
            s.quit()
        except BaseException as e:
            errors.append(e)
        finally:
            with lock:
                done.append(time.perf_counter())
                row.latencies_ms.extend(latencies)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, first: {errors[0]!r}") from errors[0]
    row.seconds += max(done) - started
    row.messages += sum(len(j) for j in jobs)
    row.deliveries += sum(len(m.rcpts) for j in jobs for m in j)


# --- the servers ---------------------------------------------------------------------------


class Bare:
    """The reference handler: 250 for every message, nothing stored."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


def accept_any(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    return AuthResult(success=True, auth_data="bench")


@contextmanager
def reference(tls: ssl.SSLContext, *, submission: bool) -> Iterator[int]:
    controller = Controller(
        Bare(),
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="mail.bench",
        tls_context=tls,
        require_starttls=submission,
        auth_required=submission,
        auth_require_tls=True,
        authenticator=accept_any,
        decode_data=False,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@contextmanager
def in_process(data: Path, **env_vars: str) -> Iterator[MailEnv]:
    """The service as tests/services/mail/env.py runs it, on its own event loop thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        try:
            async with mail_env(data, **env_vars) as env:
                holder["env"] = env
                ready.set()
                await stop.wait()
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(60)
    if "env" not in holder:
        raise RuntimeError("the in-process mail service did not start")
    try:
        yield holder["env"]
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(30)
        loop.close()


def prepare_store(data: Path, people: list[str]) -> list[str]:
    """The process's database with a mailbox per official, as identity's events make them."""
    engine = db.create_engine(f"sqlite:///{data / 'mail.db'}")
    assert PLUGIN.migrations is not None
    db.migrate(engine, PLUGIN.migrations)
    app = MailApp(engine, AGENCIES, MailRules())
    found = []
    for i, name in enumerate(people):
        user = identity_pb2.User(
            id=f"u-{i}",
            username=f"u{i}.bench",
            display_name=name,
            agency_code=PROVINCE,  # the province's domain: local without identity's tree
            status=identity_pb2.USER_STATUS_ACTIVE,
        )
        with app.uow() as uow:
            found.append(app.on_user(uow, user).address)
            uow.commit()
    engine.dispose()
    return found


@contextmanager
def service_process(data: Path) -> Iterator[int]:
    """`python -m services.mail` on `data` (its log in service.log); its inbound port."""
    inbound = free_port()
    with open(data / "service.log", "wb") as log:
        proc = start_process(data, inbound, output=log)
    try:
        yield inbound
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            tail = (data / "service.log").read_text(errors="replace")[-3000:]
            print(f"the mail service did not stop in 30 s on SIGTERM; its log ends:\n{tail}")


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from messages")).scalar_one())


def stored(
    row: Row, read: Callable[[], int], port: int, jobs: list[list[Mail]], logins: list[str] | None
) -> None:
    """`drive`, then the deliveries found in the store (every 250 must be there)."""
    before = read()
    drive(row, port, jobs, logins)
    row.stored = (row.stored or 0) + read() - before


# --- the run -------------------------------------------------------------------------------


def run(quick: bool) -> int:
    # aiosmtpd 1.4 logs a warning about its own deprecated Session.login_data on every AUTH
    # (the reference's too; the service filters it out of its logger, see entrypoints/smtp.py).
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    per_client = 10 if quick else 60
    rounds = 1 if quick else 2
    rnd = random.Random(2026)
    people = names(48)
    rows = {
        k: Row(k)
        for k in (
            "aiosmtpd 250-only, STARTTLS+AUTH (ref)",
            "mail submission, STARTTLS+AUTH",
            "aiosmtpd 250-only, STARTTLS (ref)",
            "mail inbound, STARTTLS",
            "mail inbound, STARTTLS, own process",
        )
    }
    r_sub_ref, r_sub, r_in_ref, r_in, r_proc = rows.values()
    with tempfile.TemporaryDirectory(prefix="lgsp-bench-mail-") as tmp_s:
        tmp = Path(tmp_s)
        tls = server_context(*ensure_self_signed(tmp / "tls", "mail.bench"))
        (tmp / "inproc").mkdir()
        (tmp / "proc").mkdir()
        proc_addresses = prepare_store(tmp / "proc", people)
        # Inbound mail gets SPF and DKIM checks: a DNS server answering at once (with the
        # senders' SPF records), as the province's resolver would, not this machine's, which
        # reaches no DNS and would make every check wait out its time budget.
        dns = DnsServer()
        for outside in SENDERS_OUTSIDE:
            dns.add_txt(outside.split("@")[1], "v=spf1 ip4:127.0.0.0/8 -all")
        os.environ["LGSP_MAIL_DNS_RESOLVER"] = dns.address  # the service process's too
        with (
            dns,
            in_process(tmp / "inproc", LGSP_MAIL_DNS_RESOLVER=dns.address) as env,
            reference(tls, submission=True) as ref_sub_port,
            reference(tls, submission=False) as ref_in_port,
            service_process(tmp / "proc") as proc_port,
        ):
            addresses = [env.add_official(f"u-{i}", n, JUSTICE) for i, n in enumerate(people)]
            logins = addresses[:CLIENTS]
            proc_engine = sa.create_engine(f"sqlite:///{tmp / 'proc' / 'mail.db'}")

            def env_count() -> int:
                return env.rows("messages")

            def proc_count() -> int:
                return count(proc_engine)

            for _ in range(rounds):
                sub_jobs = workload(rnd, logins, addresses, per_client)
                in_jobs = workload(rnd, SENDERS_OUTSIDE, addresses, per_client)
                proc_jobs = workload(rnd, SENDERS_OUTSIDE, proc_addresses, per_client)
                drive(r_sub_ref, ref_sub_port, sub_jobs, logins)
                stored(r_sub, env_count, env.ports["submission"], sub_jobs, logins)
                drive(r_in_ref, ref_in_port, in_jobs, None)
                stored(r_in, env_count, env.ports["inbound"], in_jobs, None)
                stored(r_proc, proc_count, proc_port, proc_jobs, None)
            proc_engine.dispose()
    return report(rows, per_client, rounds)


def report(rows: dict[str, Row], per_client: int, rounds: int) -> int:
    print(
        f"mail SMTP: {CLIENTS} smtplib clients (threads, one connection each), "
        f"{per_client} messages each × {rounds} round(s), 2-5 KB Vietnamese letters to 1-3 "
        "local mailboxes"
    )
    print(f"{'':<40} {'msgs/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'stored':>12}")
    failed = 0
    ref = 0.0
    for name, row in rows.items():
        ref = row.rate if "(ref)" in name else ref
        if row.stored is None:
            stored = "-"
        else:
            stored = f"{row.stored}/{row.deliveries}"
            failed += row.stored != row.deliveries
        print(
            f"{name:<40} {row.rate:>8.0f} {row.rate / ref:>6.2f} {row.pct(0.5):>8.1f} "
            f"{row.pct(0.99):>8.1f} {stored:>12}"
        )
    if failed:
        print("FAILED: a message answered 250 is missing from the store (or stored twice)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run("--quick" in sys.argv[1:]))
