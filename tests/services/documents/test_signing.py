"""Development CA and PAdES signatures: sign, verify, refuse; pyHanko's own CLI agrees."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from services.documents.signing import (
    CAError,
    Credential,
    DevCA,
    Refusal,
    SigningError,
    sign_pdf,
    verify_pdf,
    verify_with_ca,
)
from tests.fixtures import free_port
from tests.support.pdf import minimal_pdf

PYHANKO = Path(sys.executable).parent / "pyhanko"


@pytest.fixture(scope="module")
def crl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The CA's directory and an HTTP server publishing its crl/ folder (for outside tools)."""
    directory = tmp_path_factory.mktemp("ca")
    (directory / "crl").mkdir()
    port = free_port()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(directory / "crl")
    )
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield directory, f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def ca(crl_server: tuple[Path, str]) -> DevCA:
    directory, url = crl_server
    return DevCA.open_or_create(directory, crl_base_url=url)


def official(ca: DevCA, **kwargs: Any) -> Credential:
    args = {
        "full_name": "Nguyễn Văn An",
        "agency_name": "Ủy ban nhân dân tỉnh Hà Tĩnh",
        "agency_code": "000.00.00.H27",
        "email": "an.nv@hatinh.gov.vn",
        "unit": "Văn phòng",
        **kwargs,
    }
    return ca.issue_official(**args)


def run_cli(pdf: Path, root: Path) -> subprocess.CompletedProcess[str]:
    if not PYHANKO.exists():
        pytest.fail("pyhanko CLI missing: install pyhanko-cli")
    return subprocess.run(
        [str(PYHANKO), "sign", "validate", "--trust", str(root), "--trust-replace", str(pdf)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_signed_pdf_verifies_here_and_in_pyhanko_cli(ca: DevCA, tmp_path: Path) -> None:
    cred = official(ca)
    signed = sign_pdf(minimal_pdf(), cred, reason="Ký ban hành", location="Hà Tĩnh")
    result = verify_with_ca(signed, ca)
    assert result.valid, result.detail
    assert result.refusal is None
    assert result.signer_name == "Nguyễn Văn An"
    assert result.signer_organization == "Ủy ban nhân dân tỉnh Hà Tĩnh"
    assert result.signer_agency_code == "000.00.00.H27"  # organizationIdentifier
    assert result.signer_serial == cred.serial
    assert result.signing_time is not None
    assert abs(result.signing_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=2)
    assert b"/ETSI.CAdES.detached" in signed  # PAdES, not adbe.pkcs7.detached
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    cli = run_cli(path, ca.root_path)  # fetches the CRL from crl_server, as any validator would
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert ":INTACT:TRUSTED" in cli.stdout


def test_tampered_bytes_are_refused_here_and_in_cli(ca: DevCA, tmp_path: Path) -> None:
    signed = bytearray(sign_pdf(minimal_pdf(), official(ca)))
    at = signed.index(b"Quyet dinh")
    signed[at : at + 5] = b"Huy b"
    result = verify_with_ca(bytes(signed), ca)
    assert not result.valid and result.refusal is Refusal.TAMPERED
    assert "thay đổi" in result.reason_vi
    path = tmp_path / "tampered.pdf"
    path.write_bytes(bytes(signed))
    cli = run_cli(path, ca.root_path)
    assert cli.returncode != 0
    assert ":INTACT:" not in cli.stdout


def test_content_changed_in_a_later_revision_is_refused(ca: DevCA) -> None:
    signed = sign_pdf(minimal_pdf(), official(ca))
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 720 Td (Huy bo) Tj ET")
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    result = verify_with_ca(out.getvalue(), ca)
    assert not result.valid and result.refusal is Refusal.TAMPERED


def test_certificate_from_another_ca_is_untrusted(ca: DevCA, tmp_path: Path) -> None:
    other = DevCA.open_or_create(tmp_path / "rogue", name="Rogue CA")
    signed = sign_pdf(minimal_pdf(), official(other))
    result = verify_with_ca(signed, ca)
    assert not result.valid and result.refusal is Refusal.UNTRUSTED
    assert result.signer_name == "Nguyễn Văn An"  # who claims to have signed, for the log
    path = tmp_path / "rogue.pdf"
    path.write_bytes(signed)
    cli = run_cli(path, ca.root_path)
    assert "UNTRUSTED" in cli.stdout


def test_revoked_certificate_is_refused_here_and_in_cli(ca: DevCA, tmp_path: Path) -> None:
    cred = official(ca, full_name="Trần Thị Bình")
    signed = sign_pdf(minimal_pdf(), cred)
    assert verify_with_ca(signed, ca).valid
    ca.revoke(cred.serial, "key_compromise")
    revoked = {int(s, 16) for s, e in ca.certificates().items() if e["revoked_at"]}
    crl = x509.load_der_x509_crl((ca.directory / "crl" / "intermediate.crl").read_bytes())
    assert {r.serial_number for r in crl} == revoked
    result = verify_with_ca(signed, ca)
    assert not result.valid and result.refusal is Refusal.REVOKED
    assert result.reason_vi == "Chứng thư số của người ký đã bị thu hồi."
    path = tmp_path / "revoked.pdf"
    path.write_bytes(signed)
    cli = run_cli(path, ca.root_path)
    assert cli.returncode != 0 or ":TRUSTED" not in cli.stdout
    with pytest.raises(CAError, match="already revoked"):
        ca.revoke(cred.serial)


def test_missing_crl_is_not_a_pass(ca: DevCA) -> None:
    signed = sign_pdf(minimal_pdf(), official(ca))
    result = verify_pdf(signed, [ca.root_cert], [], [ca.intermediate_cert])
    assert not result.valid and result.refusal is Refusal.UNTRUSTED


def test_expired_certificate_is_refused(ca: DevCA) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    cred = official(ca, not_before=long_ago, valid_days=30)
    result = verify_with_ca(sign_pdf(minimal_pdf(), cred), ca)
    assert not result.valid and result.refusal is Refusal.EXPIRED


def test_unsigned_and_broken_pdfs(ca: DevCA) -> None:
    assert verify_with_ca(minimal_pdf(), ca).refusal is Refusal.NO_SIGNATURE
    assert verify_with_ca(b"not a pdf", ca).refusal is Refusal.MALFORMED
    with pytest.raises(SigningError):
        sign_pdf(b"%PDF-1.7 garbage", official(ca))


def test_second_signature_keeps_the_first_valid(ca: DevCA) -> None:
    once = sign_pdf(minimal_pdf(), official(ca))
    twice = sign_pdf(once, ca.issue_agency(agency_name="Sở Tư pháp", agency_code="000.01.30.H27"))
    result = verify_with_ca(twice, ca)
    assert result.valid, result.detail
    assert result.signatures == 2


def test_ca_persists_and_exports(ca: DevCA) -> None:
    cred = official(ca)
    again = DevCA.open_or_create(ca.directory)
    assert again.root_pem() == ca.root_pem()
    assert again.credential(cred.serial).certificate == cred.certificate
    key, cert, chain = pkcs12.load_key_and_certificates(
        again.export_pkcs12(cred.serial, b"mat-khau"), b"mat-khau"
    )
    assert cert == cred.certificate and key is not None
    assert [c.subject for c in chain] == [ca.intermediate_cert.subject]
    assert (ca.directory / "root.key.pem").stat().st_mode & 0o077 == 0
    entry = again.certificates()[cred.serial]
    assert entry["kind"] == "official" and entry["agency_code"] == "000.00.00.H27"
    assert "CN=Nguyễn Văn An" in str(entry["subject"])


def test_ca_refuses_bad_requests(ca: DevCA) -> None:
    with pytest.raises(CAError):
        official(ca, agency_code="ubnd-ha-tinh")
    with pytest.raises(CAError):
        official(ca, full_name=" ")
    with pytest.raises(CAError, match="no certificate"):
        ca.revoke("abc123")
    with pytest.raises(CAError, match="reason"):
        ca.revoke(official(ca).serial, "because")
