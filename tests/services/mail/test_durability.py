"""A message answered 250 is durably stored: the service process (`python -m services.mail`)
is killed (SIGKILL) the moment the client has its 250, and the message is in the store when
the process comes back. A crash in the middle of a delivery (before its transaction
commits) leaves nothing half-stored, and the client, which got no 250, still holds it."""

from __future__ import annotations

import signal
import smtplib
from pathlib import Path

import sqlalchemy as sa

from lgsp import db
from lgsp.api.identity.v1 import identity_pb2
from services.mail.plugin import PLUGIN
from services.mail.service_layer.mail import MailApp, MailRules
from tests.services.mail.env import AGENCIES, PROVINCE, start_process
from tests.support import free_port


def prepare(data: Path) -> str:
    """The mail database with one mailbox, as identity's UserCreated would have made it."""
    engine = db.create_engine(f"sqlite:///{data / 'mail.db'}")
    assert PLUGIN.migrations is not None
    db.migrate(engine, PLUGIN.migrations)
    app = MailApp(engine, AGENCIES, MailRules())
    user = identity_pb2.User(
        id="u-an",
        username="annv.ubnd",
        display_name="Nguyễn Văn An",
        agency_code=PROVINCE,
        status=identity_pb2.USER_STATUS_ACTIVE,
    )
    with app.uow() as uow:
        address = app.on_user(uow, user).address
        uow.commit()
    engine.dispose()
    return address


def stored(data: Path, address: str) -> int:
    engine = sa.create_engine(f"sqlite:///{data / 'mail.db'}")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "select count(*) from messages m join message_blobs b"
                        " on b.sha256 = m.blob_sha256 where m.mailbox_address = :a"
                    ),
                    {"a": address},
                ).scalar_one()
            )
    finally:
        engine.dispose()


MESSAGE = b"From: ban@example.org\r\nTo: annv@hatinh.gov.vn\r\nSubject: test\r\n\r\nNoi dung.\r\n"


def test_a_message_answered_250_survives_a_kill(tmp_path: Path) -> None:
    address = prepare(tmp_path)
    inbound = free_port()
    proc = start_process(tmp_path, inbound)
    try:
        with smtplib.SMTP("127.0.0.1", inbound, timeout=10) as s:
            s.ehlo("mx.example.org")
            s.mail("ban@example.org")
            s.rcpt(address)
            code, _ = s.data(MESSAGE)
            proc.send_signal(signal.SIGKILL)  # the instant the 250 arrived
        assert code == 250
        proc.wait(10)
        assert stored(tmp_path, address) == 1
        proc = start_process(tmp_path, inbound)  # and the service comes back over it
        assert stored(tmp_path, address) == 1
    finally:
        proc.kill()
        proc.wait(10)


def test_a_crash_before_commit_stores_nothing_and_gives_no_250(tmp_path: Path) -> None:
    address = prepare(tmp_path)
    inbound = free_port()
    proc = start_process(tmp_path, inbound, faults="uow.before_commit")
    try:
        with smtplib.SMTP("127.0.0.1", inbound, timeout=10) as s:
            s.ehlo("mx.example.org")
            s.mail("ban@example.org")
            s.rcpt(address)
            try:
                code, _ = s.data(MESSAGE)
            except smtplib.SMTPServerDisconnected:
                code = -1
        assert code == -1  # no 250: the sending server keeps the message and retries
        assert proc.wait(10) == -signal.SIGKILL
        assert stored(tmp_path, address) == 0
    finally:
        proc.kill()
        proc.wait(10)
