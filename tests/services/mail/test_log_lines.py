"""The service's log as an operator reads it: one line per real piece of work. An SMTP
session that delivers one message is one line (ours), not aiosmtpd's trace of every
command (~10 INFO lines per session from its "mail.log" logger, 3 in 4 lines of a
platform's log while officials send mail)."""

from __future__ import annotations

import asyncio
import io
import logging
import smtplib
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from lgsp.logs import setup_logging
from tests.services.mail.env import JUSTICE, MailEnv, client_tls, mail_env

PASSWORD = "Mat-khau-2026!"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path) as e:
        yield e


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """The platform's own log set-up (lgsp.logs), into a string."""
    stream = io.StringIO()
    handler = setup_logging("mail", "INFO", json=False, stream=stream, background=False)
    yield stream
    logging.getLogger().removeHandler(handler)


async def test_one_line_per_smtp_delivery(env: MailEnv, log: io.StringIO) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = an, an, "Lịch họp giao ban"
    m.set_content("Nội dung")

    def sessions() -> None:
        with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10) as s:
            s.starttls(context=client_tls())
            s.login(an, PASSWORD)
            s.send_message(m)
        with smtplib.SMTP("127.0.0.1", env.ports["inbound"], timeout=10) as s:
            m.replace_header("From", "ban@example.org")
            s.sendmail("ban@example.org", [an], m.as_bytes())

    log.truncate(0)
    await asyncio.to_thread(sessions)
    await asyncio.sleep(0.2)  # the server's side of the QUITs
    # the bus's consumer groups may still be joining from the start: not this work
    lines = [x for x in log.getvalue().splitlines() if "lgsp.bus" not in x]
    assert len(lines) == 2, lines
    assert "SMTP submission from" in lines[0] and "SMTP inbound from" in lines[1]
