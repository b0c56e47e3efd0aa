"""The mail rules without servers: the address convention with its numbering, address and
header checks, parsing of malformed mail, composing, and the purge after retention."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lgsp import db
from lgsp.api.identity.v1 import identity_pb2
from services.mail.domain.addresses import check_header_text, local_part_for, normalize_address
from services.mail.domain.errors import InvalidField, TooLarge
from services.mail.domain.message import Address, Outgoing, compose, parse_summary, read_bodies
from services.mail.plugin import PLUGIN
from services.mail.service_layer.mail import MailApp, MailRules
from tests.services.mail.env import AGENCIES, HEALTH, JUSTICE, JUSTICE_UNIT


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("Nguyễn Văn An", "annv"),
        ("Đặng Thị Thu Hà", "hadtt"),
        ("Bùi Đức", "ducb"),
        ("Trương  Quốc   Việt", "viettq"),  # extra spaces
        (unicodedata.normalize("NFD", "Nguyễn Văn An"), "annv"),  # decomposed input
        ("Lò Văn Páo", "paolv"),
        ("Nguyễn-Văn An", "annv"),  # a hyphen separates words
    ],
)
def test_local_part_convention(name: str, local: str) -> None:
    assert local_part_for(name) == local


def test_local_part_needs_letters() -> None:
    with pytest.raises(InvalidField):
        local_part_for("  --  ")


@pytest.mark.parametrize(
    "bad",
    ["", "a b@x.vn", "a@b", "a@@x.vn", "<a@x.vn>", "a@x.vn\r\nBcc: y@z.vn", "a..b@x.vn", ".a@x.vn"],
)
def test_addresses_are_checked(bad: str) -> None:
    with pytest.raises(InvalidField):
        normalize_address(bad)


def test_header_text_refuses_line_breaks() -> None:
    for bad in ("a\rb", "a\nb", "a\0b"):
        with pytest.raises(InvalidField):
            check_header_text("subject", bad, 100)
    assert check_header_text("subject", "Về việc cải cách", 100) == "Về việc cải cách"


def test_compose_round_trips_vietnamese_and_refuses_oversize() -> None:
    out = Outgoing(
        Address("annv@stp.hatinh.gov.vn", "Nguyễn Văn An"),
        [Address("binhtt@syt.hatinh.gov.vn", "Trần Thị Bình")],
        subject="Về việc triển khai thư công vụ",
        text_body="Kính gửi chị Bình.",
        attachments=[("Tờ trình.pdf", "application/pdf", b"%PDF")],
    )
    now = datetime(2026, 5, 4, 9, tzinfo=UTC)
    raw, message_id, rcpts = compose(out, domain="stp.hatinh.gov.vn", max_bytes=10_000, now=now)
    s = parse_summary(raw)
    assert s.subject == "Về việc triển khai thư công vụ" and s.message_id == message_id
    assert s.sender == Address("annv@stp.hatinh.gov.vn", "Nguyễn Văn An")
    assert [a.file_name for a in s.attachments] == ["Tờ trình.pdf"]
    assert read_bodies(raw)[0].strip() == "Kính gửi chị Bình."
    assert rcpts == ["binhtt@syt.hatinh.gov.vn"] and s.send_time == now
    with pytest.raises(TooLarge):
        compose(out, domain="stp.hatinh.gov.vn", max_bytes=500, now=now)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"Subject: =?utf-8?B?!!!?=\r\nFrom: <<<>>>\r\nDate: yesterday\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Disposition: attachment;"
        b' filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%\r\n',
    ],
)
def test_malformed_mail_parses_to_what_can_be_read(raw: bytes) -> None:
    s = parse_summary(raw)  # never raises
    assert isinstance(s.subject, str)
    read_bodies(raw)


def test_collisions_are_numbered_stably_and_purge_keeps_the_address(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    assert PLUGIN.migrations is not None
    db.migrate(engine, PLUGIN.migrations)
    now = [datetime(2026, 5, 4, tzinfo=UTC)]
    app = MailApp(engine, AGENCIES, MailRules(retention_days=90), clock=lambda: now[0])

    def user(uid: str, name: str, agency: str, active: bool = True) -> str:
        u = identity_pb2.User(
            id=uid,
            username=uid,
            display_name=name,
            agency_code=agency,
            status=identity_pb2.USER_STATUS_ACTIVE if active else identity_pb2.USER_STATUS_DISABLED,
        )
        with app.uow() as uow:
            address = app.on_user(uow, u).address
            uow.commit()
        return address

    assert user("a", "Nguyễn Văn An", JUSTICE) == "annv@stp.hatinh.gov.vn"
    assert user("b", "Ngô Việt An", JUSTICE_UNIT) == "annv1@stp.hatinh.gov.vn"  # parent's domain
    assert user("c", "Nông Văn An", HEALTH) == "annv@syt.hatinh.gov.vn"  # another domain
    assert user("d", "Nguyễn Văn An", JUSTICE) == "annv2@stp.hatinh.gov.vn"
    # Renamed or moved, or the same event twice: the address stays.
    assert user("a", "Nguyễn Văn Ân", HEALTH) == "annv@stp.hatinh.gov.vn"
    assert user("a", "Nguyễn Văn Ân", HEALTH) == "annv@stp.hatinh.gov.vn"

    app.deliver(b"From: x@example.org\r\n\r\nhi", "x@example.org", ["annv1@stp.hatinh.gov.vn"])
    assert user("b", "Ngô Việt An", JUSTICE_UNIT, active=False) == "annv1@stp.hatinh.gov.vn"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from messages").scalar_one() == 1
    now[0] += timedelta(days=89)
    assert app.purge_expired() == []
    now[0] += timedelta(days=2)
    assert app.purge_expired() == ["annv1@stp.hatinh.gov.vn"]
    with engine.connect() as conn:
        import sqlalchemy as sa

        left = conn.execute(sa.text("select count(*) from messages")).scalar_one()
    assert left == 0
    # The purged address is never handed out again.
    assert user("e", "Ngô Văn An", JUSTICE) == "annv3@stp.hatinh.gov.vn"
    engine.dispose()
