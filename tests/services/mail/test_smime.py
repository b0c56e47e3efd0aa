"""S/MIME on the running service: a message signed through gRPC reads back VALID and passes
`openssl smime -verify` against the CA root (an independent verifier); and what reading
must catch: a body altered in transit, a revoked certificate, a self-signed stranger, a
From that is not the signer, garbage where the signature should be, an unsigned message.
Hostile messages arrive as outside mail does, over the inbound SMTP port (smtplib)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import re
import shutil
import smtplib
import subprocess
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from lgsp.api.mail.v1 import mail_pb2 as pb
from lgsp.ca import DevCA
from services.mail.adapters.store import MailStore
from tests.fixtures import missing_server
from tests.services.mail.env import HEALTH, JUSTICE, PROVINCE, MailEnv, client_tls, mail_env

TAMPERED = "Nội dung đã bị thay đổi sau khi ký"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[MailEnv]:
    async with mail_env(tmp_path) as e:
        yield e


def ca(env: MailEnv) -> DevCA:
    return DevCA.open_or_create(env.runtime.settings.data_dir / "ca")


async def send_signed(env: MailEnv, sender: str, user_id: str, to: str, **fields: object) -> str:
    request = pb.SendMessageRequest(
        mailbox_address=sender,
        to=[pb.Address(address=to)],
        subject="Công văn về việc cải cách hành chính",
        text_body="Kính gửi chị Bình,\nĐề nghị chị xem và cho ý kiến.\nTrân trọng.",
        sign=True,
        **fields,  # type: ignore[arg-type]
    )
    sent = await env.stub().SendMessage(request, metadata=env.md(user_id))
    return sent.message.id


async def read(env: MailEnv, address: str, user_id: str, agency: str = HEALTH) -> pb.MailMessage:
    listed = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=address), metadata=env.md(user_id, agency)
    )
    newest = listed.messages[0]
    got = await env.stub().GetMessage(
        pb.GetMessageRequest(mailbox_address=address, id=newest.id),
        metadata=env.md(user_id, agency),
    )
    return got.message


def raw_of(env: MailEnv, address: str, message_id: str) -> bytes:
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        m = store.message(address, message_id)
        assert m is not None
        raw = store.blob(m.blob_sha256)
    assert raw is not None
    return raw


async def deliver_from_outside(env: MailEnv, raw: bytes, rcpt: str) -> None:
    """Into the store as the inbound port delivers, from an outside envelope sender (in a
    thread). Not over SMTP: the inbound port refuses a From in a local domain outright
    (test_hostile.py), and these check what reading shows of such mail however it got
    into a mailbox (an IMAP APPEND, a copy from an archive)."""
    await asyncio.to_thread(env.app.deliver, raw, "gateway@example.org", [rcpt], partial=True)


async def signed_pair(env: MailEnv) -> tuple[str, str, bytes]:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    sent = await send_signed(env, an, "u-an", binh)
    return an, binh, raw_of(env, an, sent)


async def test_signed_through_grpc_reads_valid_and_openssl_agrees(
    env: MailEnv, tmp_path: Path
) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    sent = await send_signed(
        env,
        an,
        "u-an",
        binh,
        html_body="<p>Kính gửi chị <b>Bình</b></p>",
        attachments=[
            pb.OutgoingAttachment(
                file_name="báo cáo.pdf", content_type="application/pdf", content=b"%PDF-1.7 x"
            )
        ],
    )
    got = await read(env, binh, "u-binh")
    sig = got.signature
    assert sig.status == pb.SIGNATURE_STATUS_VALID, sig.reason
    assert (sig.signer_name, sig.signer_email, sig.reason) == ("Nguyễn Văn An", an, "")
    assert sig.certificate_serial == ca(env).official_serial("u-an", an)  # auto-issued
    assert sig.signing_time.seconds > 0
    # The signed message still reads as before; the signature is no attachment.
    assert "Đề nghị chị xem và cho ý kiến." in got.text_body
    assert got.html_body == "<p>Kính gửi chị <b>Bình</b></p>"
    assert [a.file_name for a in got.attachments] == ["báo cáo.pdf"]

    raw = raw_of(env, an, sent)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/signed"
    assert msg.get_param("protocol") == "application/pkcs7-signature"
    assert msg.get_param("micalg") == "sha-256"
    _, signature = msg.get_payload()  # type: ignore[misc]
    assert signature.get_content_type() == "application/pkcs7-signature"
    assert b"\n" not in raw.replace(b"\r\n", b"")  # canonical CRLF throughout
    assert all(ord(c) < 128 for c in raw.decode("ascii"))  # 7-bit, as RFC 8551 §3.1.1 asks
    certs = pkcs7.load_der_pkcs7_certificates(signature.get_content())
    assert len(certs) == 2  # the signer's and the intermediate: the chain below the root

    if shutil.which("openssl") is None:
        missing_server("openssl not installed")
    (tmp_path / "m.eml").write_bytes(raw)
    # Trust: the CA root; revocation: its CRLs, loaded from the same bundle (-crl_check_all).
    bundle = ca(env).root_pem() + b"".join(
        x509.load_der_x509_crl(c).public_bytes(serialization.Encoding.PEM) for c in ca(env).crls()
    )
    (tmp_path / "trust.pem").write_bytes(bundle)
    verify = [
        "openssl", "smime", "-verify", "-in", str(tmp_path / "m.eml"), "-CAfile",
        str(tmp_path / "trust.pem"), "-crl_check_all", "-purpose", "smimesign",
        "-out", str(tmp_path / "content"),
    ]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, verify, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr
    assert b"multipart/mixed" in (tmp_path / "content").read_bytes()
    # The independent verifier also catches a change of one character of the body.
    altered = raw.replace(b"filename*=utf-8''b%C3%A1o", b"filename*=utf-8''c%C3%A1o")
    assert altered != raw
    (tmp_path / "m.eml").write_bytes(altered)
    refused = await asyncio.to_thread(subprocess.run, verify, capture_output=True)
    assert refused.returncode != 0


async def test_a_body_altered_in_transit_is_invalid(env: MailEnv) -> None:
    _, binh, raw = await signed_pair(env)
    # A relay "fixing" the text: the base64 of the text part replaced.
    text = base64.b64encode("Kính gửi chị Bình,\r\nĐề nghị chị chuyển 100 triệu.".encode())
    altered = re.sub(
        rb"(Content-Transfer-Encoding: base64\r\n\r\n)[A-Za-z0-9+/=\r\n]+?\r\n\r\n",
        lambda m: m.group(1) + text + b"\r\n\r\n",
        raw,
        count=1,
    )
    assert altered != raw
    await deliver_from_outside(env, altered, binh)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_INVALID
    assert got.signature.reason == TAMPERED
    assert "100 triệu" in got.text_body  # still readable, shown as not signed by An


async def test_a_revoked_certificate_reads_revoked(env: MailEnv) -> None:
    an, binh, _ = await signed_pair(env)
    serial = ca(env).official_serial("u-an", an)
    before = await read(env, binh, "u-binh")
    assert before.signature.status == pb.SIGNATURE_STATUS_VALID
    ca(env).revoke(serial, "key_compromise")
    after = await read(env, binh, "u-binh")
    assert after.signature.status == pb.SIGNATURE_STATUS_REVOKED
    assert after.signature.reason == "Chứng thư số của người ký đã bị thu hồi"
    assert after.signature.certificate_serial == serial
    # A new signature by An gets a new certificate (auto-issue), valid again.
    await send_signed(env, an, "u-an", binh)
    newest = await read(env, binh, "u-binh")
    assert newest.signature.status == pb.SIGNATURE_STATUS_VALID
    assert newest.signature.certificate_serial != serial


def stranger_signed(sender: str, to: str) -> bytes:
    """A message signed with a self-signed certificate that names the sender's address."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Kẻ mạo danh"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, sender),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(sender)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    entity = b'Content-Type: text/plain; charset="utf-8"\r\n\r\nChuyen khoan ngay.\r\n'
    smime = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    head = f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: Khẩn\r\n".encode()
    return head + smime.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def test_a_self_signed_strangers_signature_is_untrusted(env: MailEnv) -> None:
    env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    binh = "binhtt@syt.hatinh.gov.vn"
    await deliver_from_outside(env, stranger_signed("giamdoc@example.org", binh), binh)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_UNTRUSTED
    assert got.signature.signer_name == "Kẻ mạo danh"
    assert "tin cậy" in got.signature.reason
    assert "Chuyen khoan ngay." in got.text_body


async def test_a_from_that_is_not_the_signer_is_invalid(env: MailEnv) -> None:
    an, binh, raw = await signed_pair(env)
    # The headers outside the signed part are rewritten: the signature stays intact.
    forged = raw.replace(f"<{an}>".encode(), b"<giamdoc@stp.hatinh.gov.vn>", 1)
    assert forged != raw
    await deliver_from_outside(env, forged, binh)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_INVALID
    assert got.signature.signer_email == an
    assert got.signature.reason == (
        f"Địa chỉ thư điện tử trong chứng thư số của người ký ({an}) không khớp với "
        "người gửi (giamdoc@stp.hatinh.gov.vn)"
    )


GARBAGE_SIGNED = (
    b"From: <x@example.org>\r\nTo: <{to}>\r\nSubject: garbage\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
    b'micalg=sha-256; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
    b"Noi dung.\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n{sig}\r\n--b1--\r\n"
)


@pytest.mark.parametrize(
    "signature",
    [
        base64.encodebytes(b"\x30\x82\xff\xff" + bytes(range(256)) * 4),  # DER head, nonsense
        b"not base64 at all !!!",
        b"",
        base64.b64encode(bytes.fromhex("3003060100")),  # a valid-looking tiny SEQUENCE
    ],
    ids=["bad-der", "bad-base64", "empty", "tiny"],
)
async def test_garbage_pkcs7_is_invalid_never_a_crash(env: MailEnv, signature: bytes) -> None:
    env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    binh = "binhtt@syt.hatinh.gov.vn"
    sig = signature.strip().replace(b"\n", b"\r\n")
    raw = GARBAGE_SIGNED.replace(b"{to}", binh.encode()).replace(b"{sig}", sig)
    await deliver_from_outside(env, raw, binh)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_INVALID
    assert got.signature.reason == "Chữ ký số bị hỏng, không đọc được"
    assert got.text_body.strip() == "Noi dung."


async def test_broken_structures_and_opaque_garbage_are_invalid(env: MailEnv) -> None:
    env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    binh = "binhtt@syt.hatinh.gov.vn"
    head = f"From: <x@example.org>\r\nTo: <{binh}>\r\nSubject: hỏng\r\n".encode()
    for body in (
        b'Content-Type: multipart/signed; boundary="nope"\r\n\r\nno parts at all\r\n',
        b"Content-Type: multipart/signed\r\n\r\nno boundary\r\n",
        b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nMIIBAAAA\r\n",
    ):
        await deliver_from_outside(env, head + body, binh)
        got = await read(env, binh, "u-binh")
        assert got.signature.status == pb.SIGNATURE_STATUS_INVALID, body


async def test_opaque_signed_data_is_verified_and_read(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    authority = ca(env)
    serial = authority.ensure_official(
        user_id="u-an",
        full_name="Nguyễn Văn An",
        agency_name="Sở Tư pháp",
        agency_code=JUSTICE,
        email=an,
    )
    cred = authority.credential(serial)
    entity = b'Content-Type: text/plain; charset="utf-8"\r\n\r\nVan ban ky dang opaque.\r\n'
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(entity)
        .add_signer(cred.certificate, cred.private_key, hashes.SHA256())
        .add_certificate(cred.chain[0])
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])  # content inside
    )
    raw = (
        f"From: <{an}>\r\nTo: <{binh}>\r\nSubject: opaque\r\nMIME-Version: 1.0\r\n"
        'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
        'Content-Disposition: attachment; filename="smime.p7m"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(der).replace(b"\n", b"\r\n")
    await deliver_from_outside(env, raw, binh)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_VALID, got.signature.reason
    assert got.signature.certificate_serial == serial
    assert got.text_body.strip() == "Van ban ky dang opaque."
    assert not got.attachments  # the smime.p7m is the message, not an attachment


async def test_unsigned_mail_reads_unsigned(env: MailEnv) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    await env.stub().SendMessage(
        pb.SendMessageRequest(mailbox_address=an, to=[pb.Address(address=binh)], subject="x"),
        metadata=env.md("u-an"),
    )
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_UNSIGNED and not got.signature.reason
    listed = await env.stub().ListMessages(
        pb.ListMessagesRequest(mailbox_address=binh), metadata=env.md("u-binh", HEALTH)
    )
    assert listed.messages[0].signature.status == pb.SIGNATURE_STATUS_UNSPECIFIED  # lists


async def test_signing_for_an_agency_mailbox_uses_the_officials_certificate(
    env: MailEnv,
) -> None:
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    vanthu = pb.Mailbox(
        address="vanthu@stp.hatinh.gov.vn",
        display_name="Văn thư Sở Tư pháp",
        kind=pb.MAILBOX_KIND_AGENCY,
        agency_code=JUSTICE,
        delegate_user_ids=["u-an"],
    )
    admin = env.md("u-admin", PROVINCE, ("admin",))
    await env.stub().CreateMailbox(pb.CreateMailboxRequest(mailbox=vanthu), metadata=admin)
    sent = await send_signed(env, "vanthu@stp.hatinh.gov.vn", "u-an", binh)
    raw = raw_of(env, "vanthu@stp.hatinh.gov.vn", sent)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert "vanthu@stp.hatinh.gov.vn" in str(msg["From"]) and an in str(msg["Sender"])
    got = await read(env, binh, "u-binh")
    assert got.sender.address == "vanthu@stp.hatinh.gov.vn"
    assert got.signature.status == pb.SIGNATURE_STATUS_VALID, got.signature.reason
    assert got.signature.signer_email == an  # the official signs, not the agency


async def test_without_auto_issue_an_official_needs_a_mail_certificate(tmp_path: Path) -> None:
    async with mail_env(tmp_path, LGSP_MAIL_SMIME_AUTO_ISSUE="false") as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
        # A certificate without the mail address (as documents issues for PDFs) is not one.
        ca(env).issue_official(
            full_name="Nguyễn Văn An", agency_name="Sở Tư pháp", agency_code=JUSTICE, user_id="u-an"
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await send_signed(env, an, "u-an", binh)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "lgsp documents ca issue" in (info.value.details() or "")
        assert env.rows("messages") == 0  # nothing sent unsigned instead
        ca(env).issue_official(
            full_name="Nguyễn Văn An",
            agency_name="Sở Tư pháp",
            agency_code=JUSTICE,
            user_id="u-an",
            email=an,
        )
        await send_signed(env, an, "u-an", binh)
        got = await read(env, binh, "u-binh")
        assert got.signature.status == pb.SIGNATURE_STATUS_VALID


async def test_a_caller_without_a_mailbox_of_their_own_cannot_sign(env: MailEnv) -> None:
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    vanthu = pb.Mailbox(
        address="vanthu@syt.hatinh.gov.vn",
        kind=pb.MAILBOX_KIND_AGENCY,
        agency_code=HEALTH,
        delegate_user_ids=["u-robot"],
    )
    admin = env.md("u-admin", PROVINCE, ("admin",))
    await env.stub().CreateMailbox(pb.CreateMailboxRequest(mailbox=vanthu), metadata=admin)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await send_signed(env, "vanthu@syt.hatinh.gov.vn", "u-robot", binh)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sign" in (info.value.details() or "")


async def test_mail_a_client_signs_with_the_exported_certificate_verifies(env: MailEnv) -> None:
    """What Thunderbird does after `lgsp mail cert export`: the PKCS#12 loaded, the message
    signed client-side (cryptography's own S/MIME writer: another layout than ours, the
    legacy x-pkcs7-signature type), submitted over SMTP with STARTTLS and AUTH."""
    an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
    binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
    authority = ca(env)
    serial = authority.ensure_official(
        user_id="u-an",
        full_name="Nguyễn Văn An",
        agency_name="Sở Tư pháp",
        agency_code=JUSTICE,
        email=an,
    )
    exported = authority.credential(serial).pkcs12(b"Mat-khau-p12!")
    key, cert, chain = pkcs12.load_key_and_certificates(exported, b"Mat-khau-p12!")
    assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
    entity = (
        b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes("Ký từ máy trạm.\n".encode())
    )
    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity).add_signer(cert, key, hashes.SHA256())
    for c in chain:
        builder = builder.add_certificate(c)
    smime = builder.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    head = f"From: Nguyễn Văn An <{an}>\r\nTo: <{binh}>\r\nSubject: Thunderbird\r\n"
    raw = head.encode() + smime.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", env.ports["submission"], timeout=10) as s:
            s.starttls(context=client_tls())
            s.login("u-an.test", "Mat-khau-2026!")
            s.sendmail(an, [binh], raw)

    await asyncio.to_thread(submit)
    got = await read(env, binh, "u-binh")
    assert got.signature.status == pb.SIGNATURE_STATUS_VALID, got.signature.reason
    assert got.signature.certificate_serial == serial
    assert got.text_body == "Ký từ máy trạm.\n"
