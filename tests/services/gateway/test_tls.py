"""Mutual TLS on the gateway's TLS port: the client certificate names the member, the token
must belong to the same member; certificates made here with `cryptography` (a CA, the
gateway's server certificate, one client certificate per member)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import socket
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
from lgsp.api.gateway.v1 import gateway_pb2 as gpb
from lgsp.config import load_settings
from services.gateway.app import options_from_settings
from services.gateway.proxy import Route
from tests.services.gateway.conftest import DVC, MOTCUA, Platform, bearer, start_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclasses.dataclass
class Pki:
    ca_pem: bytes
    server: tuple[bytes, bytes]  # (cert PEM, key PEM)
    clients: dict[str, tuple[bytes, bytes, str]]  # member → (cert PEM, key PEM, DER SHA-256)


def _pki(members: list[str]) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("LGSP test CA", ca_key, None, ca=True)
    issuer = (ca.subject, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("localhost", server_key, issuer, server=True)
    clients = {}
    for member in members:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(member, key, issuer)
        der = cert.public_bytes(serialization.Encoding.DER)
        clients[member] = (
            cert.public_bytes(serialization.Encoding.PEM),
            _pem_key(key),
            hashlib.sha256(der).hexdigest(),
        )
    pem = serialization.Encoding.PEM
    return Pki(ca.public_bytes(pem), (server.public_bytes(pem), _pem_key(server_key)), clients)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_mutual_tls_names_the_member(platform: Platform, tmp_path: Path) -> None:
    pki = await asyncio.to_thread(_pki, [MOTCUA, DVC])
    files = {
        "cert": (tmp_path / "gateway.crt", pki.server[0]),
        "key": (tmp_path / "gateway.key", pki.server[1]),
        "ca": (tmp_path / "members-ca.crt", pki.ca_pem),
    }
    for path, data in files.values():
        path.write_bytes(data)
    # The [gateway] keys as an operator writes them, read by options_from_settings.
    settings = load_settings(
        env={
            "LGSP_GATEWAY_TLS_PORT": str(_free_port()),
            "LGSP_GATEWAY_TLS_CERT": str(files["cert"][0]),
            "LGSP_GATEWAY_TLS_KEY": str(files["key"][0]),
            "LGSP_GATEWAY_TLS_CLIENT_CA": str(files["ca"][0]),
        }
    )
    opts = options_from_settings(settings)
    assert opts.tls is not None and opts.tls.client_ca_pem == pki.ca_pem
    routes = {"documents": Route("documents", platform.upstream.address, "documents")}
    runtime, gw = await start_gateway(tmp_path, platform.issuer, routes, options={"tls": opts.tls})
    try:
        reg = gw.registry
        for code, client_id in ((MOTCUA, "motcua-thanhsen"), (DVC, "dvc-hatinh")):
            await asyncio.to_thread(
                reg.register_member,
                "test",
                gpb.Member(
                    code=code,
                    name=code,
                    agency_code=code.partition(":")[0],
                    kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
                    client_id=client_id,
                    certificate_sha256=pki.clients[code][2],
                ),
            )
            await asyncio.to_thread(
                reg.grant,
                "test",
                gpb.AccessRight(
                    member_code=code,
                    service=gpb.ServiceTarget(service="lgsp.api.documents.v1.DocumentService"),
                ),
            )
        motcua = await platform.client_token("motcua-thanhsen")
        target = f"127.0.0.1:{gw.tls_port}"
        request = dpb.GetDocumentRequest(id="tls-1")

        def creds(member: str | None) -> grpc.ChannelCredentials:
            if member is None:
                return grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
            cert, key, _ = pki.clients[member]
            return grpc.ssl_channel_credentials(pki.ca_pem, key, cert)

        # The member's own certificate and token: served.
        async with grpc.aio.secure_channel(target, creds(MOTCUA)) as ch:
            got = await dpbg.DocumentServiceStub(ch).GetDocument(
                request, metadata=bearer(motcua), timeout=10
            )
        assert got.document.id == "tls-1"
        assert platform.seen.metadata[-1]["x-lgsp-client-member"] == MOTCUA

        # No client certificate: the handshake itself fails.
        async with grpc.aio.secure_channel(target, creds(None)) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await dpbg.DocumentServiceStub(ch).GetDocument(
                    request, metadata=bearer(motcua), timeout=5
                )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        # motcua's token presented with dvc's certificate: refused, and logged.
        async with grpc.aio.secure_channel(target, creds(DVC)) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await dpbg.DocumentServiceStub(ch).GetDocument(
                    request, metadata=bearer(motcua), timeout=10
                )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"certificate of member {DVC}" in (err.value.details() or "")

        # With mutual TLS on, the plaintext port does not serve members either.
        async with grpc.aio.insecure_channel(runtime.server.address) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await dpbg.DocumentServiceStub(ch).GetDocument(
                    request, metadata=bearer(motcua), timeout=10
                )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "client certificate is required" in (err.value.details() or "")

        await gw.msglog.flush()
        import sqlalchemy as sa

        from services.gateway import tables as t

        with runtime.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.message_log.c.client_member, t.message_log.c.status_code).order_by(
                    t.message_log.c.seq
                )
            ).all()
        # The refused handshake never became a call; the other three are in the log.
        assert [tuple(r) for r in rows] == [(MOTCUA, 0), ("", 7), ("", 7)]
    finally:
        await runtime.stop(grace=1)


async def test_options_from_settings_carries_the_gateway_keys() -> None:
    settings = load_settings(
        env={
            "LGSP_GATEWAY_RATE_PER_MINUTE": "600",
            "LGSP_GATEWAY_BURST_SECONDS": "2",
            "LGSP_GATEWAY_MAX_CONCURRENT_PER_MEMBER": "8",
            "LGSP_GATEWAY_SEAL_EVERY_ENTRIES": "50",
            "LGSP_GATEWAY_SEAL_EVERY_SECONDS": "1.5",
            "LGSP_GATEWAY_LOG_RETENTION_DAYS": "365",
        }
    )
    opts = options_from_settings(settings)
    assert opts.default_rate_per_minute == 600 and opts.burst_seconds == 2.0
    assert opts.max_concurrent_per_member == 8
    assert (opts.seal_every, opts.seal_interval, opts.log_retention_days) == (50, 1.5, 365)
    assert opts.tls is None


async def test_log_retention_days_deletes_old_sealed_batches(
    platform: Platform, tmp_path: Path
) -> None:
    """[gateway] log_retention_days: at start (then daily) the gateway deletes sealed batches
    older than that; the chain that remains still verifies from the checkpoint seal."""
    import sqlalchemy as sa

    from services.gateway import tables as t
    from services.gateway.msglog import verify_log
    from tests.services.gateway.test_msglog import _log

    data_dir = tmp_path / "gateway"
    data_dir.mkdir()
    # 30 entries from mid-2025, sealed every 10: all older than a day.
    old = await _log(f"sqlite:///{data_dir / 'gateway.db'}", data_dir, 30)
    old.engine.dispose()
    routes = {"documents": Route("documents", platform.upstream.address, "documents")}
    runtime, gw = await start_gateway(
        tmp_path, platform.issuer, routes, options={"log_retention_days": 1}
    )
    try:
        for _ in range(100):
            with runtime.engine.connect() as conn:
                left = conn.execute(sa.select(sa.func.count()).select_from(t.message_log)).scalar()
            if left == 0:
                break
            await asyncio.sleep(0.05)
        assert left == 0
        # New calls continue the chain after the checkpoint; the whole log verifies.
        gw.msglog.append(**{**_entry_fields(), "time": "2099-01-01T00:00:00.000000Z"})
        await gw.msglog.flush(seal=True)
        result = verify_log(runtime.engine)
        assert result.valid, result.describe()
        assert (result.first_seq, result.last_seq) == (31, 31)
    finally:
        await runtime.stop(grace=1)


def _entry_fields() -> dict:
    from tests.services.gateway.test_msglog import _entry

    return _entry(31)
