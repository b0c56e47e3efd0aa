"""TLS on every listener ([tls], lgsp.tls): a service process started with TLS on answers its
gRPC and metrics ports over TLS to a client trusting the development CA, refuses plaintext,
and fails verification for a client that does not trust the CA; the HTTP servers, the console's
probes, `buf curl --cacert` and the settings checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from console.health import probe
from lgsp.ca import DevCA
from lgsp.config import ConfigError, Endpoint, Settings, load_settings
from lgsp.grpc.client import channel, channel_credentials
from lgsp.grpc.server import build_server, server_credentials
from lgsp.http_server import serve_asgi
from lgsp.tls import client_ssl_context, files, server_hosts, trust_env, uvicorn_ssl
from tests.fixtures import free_port, missing_server

ROOT = Path(__file__).resolve().parents[2]


def tls_settings(data_dir: Path, **extra: str) -> Settings:
    env = {"LGSP_PLATFORM_DATA_DIR": str(data_dir), "LGSP_TLS_ENABLED": "true", **extra}
    return load_settings(env=env)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> Settings:
    return tls_settings(data_dir)


async def check(target: str, creds: grpc.ChannelCredentials | None) -> int:
    make = grpc.aio.secure_channel if creds is not None else grpc.aio.insecure_channel
    args = (target, creds) if creds is not None else (target,)
    async with make(*args) as ch:  # type: ignore[operator]
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=3
        )
    return int(reply.status)


# --- a service process with TLS on ----------------------------------------------------------


@pytest.fixture(scope="module")
def service(data_dir: Path, settings: Settings) -> Iterator[tuple[int, int]]:
    """tests.integration.sample_service run by run_service as `lgsp up` would, TLS on."""
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LGSP_PLATFORM_DATA_DIR": str(data_dir),
        "LGSP_TLS_ENABLED": "true",
        "LGSP_DOCUMENTS_GRPC_PORT": str(grpc_port),
        "LGSP_DOCUMENTS_METRICS_PORT": str(metrics_port),
        "OTEL_SDK_DISABLED": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.sample_service"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    creds = channel_credentials(settings)
    assert creds is not None
    try:
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", creds) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for _ in range(100):
                assert proc.poll() is None, f"service exited early with {proc.returncode}"
                try:
                    stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    break
                except grpc.RpcError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the TLS service never became SERVING")
        yield grpc_port, metrics_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_grpc_port_answers_over_tls_refuses_plaintext_and_untrusting_clients(
    service: tuple[int, int], settings: Settings
) -> None:
    target = f"127.0.0.1:{service[0]}"
    creds = channel_credentials(settings)
    assert creds is not None
    assert await check(target, creds) == health_pb2.HealthCheckResponse.SERVING
    # The platform's own client channel, as every inter-service client makes it.
    async with channel(target, credentials=creds) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=3
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as plain:
        await check(target, None)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    # The system's roots do not include the development CA.
    with pytest.raises(grpc.aio.AioRpcError) as untrusted:
        await check(target, grpc.ssl_channel_credentials())
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.value.details() or "")


async def test_metrics_port_serves_https_only(service: tuple[int, int], settings: Settings) -> None:
    url = f"127.0.0.1:{service[1]}/metrics"
    async with httpx.AsyncClient(verify=client_ssl_context(settings), timeout=5) as client:
        reply = await client.get(f"https://{url}")
    assert reply.status_code == 200
    assert "lgsp_grpc" in reply.text or "python_info" in reply.text
    async with httpx.AsyncClient(timeout=5) as client:  # certifi's roots only
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://{url}")
        with pytest.raises(httpx.HTTPError):
            await client.get(f"http://{url}")


async def test_console_probes_the_tls_ports(service: tuple[int, int], settings: Settings) -> None:
    grpc_ep = Endpoint("documents", "grpc", "127.0.0.1", service[0])
    up = await probe(grpc_ep, 3.0, settings)
    assert (up.state, up.detail) == ("up", "SERVING")
    plain = await probe(grpc_ep, 1.0)
    assert plain.state == "down"


async def test_console_says_when_tls_does_not_match(settings: Settings) -> None:
    """A TLS client at a plaintext port (a component started without [tls]) is told apart
    from a component that is not running."""
    server = build_server("plain")
    await server.start()
    try:
        found = await probe(Endpoint("search", "grpc", "127.0.0.1", server.port), 3.0, settings)
    finally:
        await server.stop(0)
    assert found.state == "degraded"
    assert found.detail.startswith("TLS handshake failed")


def test_buf_curl_with_the_ca_file(service: tuple[int, int], settings: Settings) -> None:
    buf = ROOT / "node_modules" / ".bin" / "buf"
    found = str(buf) if buf.exists() else shutil.which("buf")
    if found is None:
        missing_server("buf not installed: run make setup")
        return
    ca = files(settings).ca_file
    url = f"https://127.0.0.1:{service[0]}/grpc.health.v1.Health/Check"
    ok = subprocess.run(
        [found, "curl", "--protocol", "grpc", "--cacert", str(ca), url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert '"SERVING"' in ok.stdout
    refused = subprocess.run(
        [found, "curl", "-v", "--protocol", "grpc", url], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in refused.stderr


# --- HTTP servers (identity's pages, the dossiers' lookup, console, mocks) --------------------


async def test_asgi_server_serves_https_with_the_issued_certificate(settings: Settings) -> None:
    app = Starlette(routes=[Route("/healthz", lambda _: PlainTextResponse("ok"))])
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(serve_asgi(app, "127.0.0.1", port, stop, ssl=uvicorn_ssl(settings)))
    try:
        verify = client_ssl_context(settings)
        for _ in range(50):
            try:
                async with httpx.AsyncClient(verify=verify, timeout=2) as client:
                    reply = await client.get(f"https://127.0.0.1:{port}/healthz")
                break
            except httpx.ConnectError as exc:
                assert "CERTIFICATE" not in str(exc)
                await asyncio.sleep(0.1)
        assert reply.text == "ok"
        async with httpx.AsyncClient(timeout=2) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://127.0.0.1:{port}/healthz")
            with pytest.raises(httpx.RemoteProtocolError):  # plaintext: hung up on
                await client.get(f"http://127.0.0.1:{port}/healthz")
        http_ep = Endpoint("identity", "http", "127.0.0.1", port)
        assert (await probe(http_ep, 2.0, settings)).state == "up"
    finally:
        stop.set()
        await task


async def test_in_process_server_with_server_credentials(
    settings: Settings, province_ca: DevCA
) -> None:
    server = build_server("tls-test", credentials=server_credentials(settings))
    await server.start()
    try:
        assert await check(server.address, channel_credentials(settings)) == 1
        with pytest.raises(grpc.aio.AioRpcError):  # trusting another CA is not enough
            await check(server.address, grpc.ssl_channel_credentials(province_ca.root_pem()))
    finally:
        await server.stop(0)


# --- the issued certificate and the settings ----------------------------------------------


def test_issued_certificate_covers_every_component_and_is_reused(settings: Settings) -> None:
    issued = files(settings)
    cert = x509.load_pem_x509_certificate(issued.cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    assert {"localhost", "console", "documents", "identity", "business-registry"} <= names
    assert "127.0.0.1" in {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert oct(issued.key_file.stat().st_mode & 0o777) == "0o600"
    assert files(settings).cert_file.read_bytes() == issued.cert_file.read_bytes()
    # Issued by the development CA documents and mail use: its root is what clients trust.
    root = DevCA.open_or_create(settings.data_dir / "ca").root_pem()
    assert issued.ca_file is not None and issued.ca_file.read_bytes() == root


def test_a_new_host_name_reissues_the_certificate(tmp_path: Path) -> None:
    first = tls_settings(tmp_path)
    before = files(first).cert_file.read_bytes()
    more = tls_settings(tmp_path, LGSP_TLS_HOSTS="lgsp.hatinh.gov.vn, 10.0.0.5")
    assert {"lgsp.hatinh.gov.vn", "10.0.0.5"} <= set(server_hosts(more))
    after = files(more).cert_file.read_bytes()
    assert after != before
    san = x509.load_pem_x509_certificate(after).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "lgsp.hatinh.gov.vn" in san.value.get_values_for_type(x509.DNSName)


def test_a_container_with_another_machine_name_reuses_the_certificate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = files(settings).cert_file.read_bytes()
    monkeypatch.setattr("socket.gethostname", lambda: "3f9c2a1b7d4e")
    assert "3f9c2a1b7d4e" in server_hosts(settings)
    assert files(settings).cert_file.read_bytes() == before


def test_tls_off_by_default_keeps_everything_plain(tmp_path: Path) -> None:
    s = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    assert not s.tls.enabled
    assert server_credentials(s) is None and channel_credentials(s) is None
    assert uvicorn_ssl(s) == {}
    assert s.console_url.startswith("http://")
    assert "SSL_CERT_FILE" not in s.process_env("documents")
    assert not (tmp_path / "tls").exists()


def test_processes_are_told_to_trust_the_ca(settings: Settings) -> None:
    env = settings.process_env("documents")
    assert settings.console_url.startswith("https://")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("https://")
    ca = files(settings).ca_file
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == str(ca)
    bundle = Path(env["SSL_CERT_FILE"]).read_bytes()
    assert ca is not None and ca.read_bytes() in bundle
    # The bundle keeps the public roots: a real Keycloak behind a public certificate still works.
    assert bundle.count(b"BEGIN CERTIFICATE") > 10
    ssl.create_default_context(cafile=env["SSL_CERT_FILE"])  # loads
    assert env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"]


def test_the_bundle_keeps_the_roots_the_operator_trusts(
    settings: Settings, province_ca: DevCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A province's own root, in the bundle its hosts name in SSL_CERT_FILE, stays trusted."""
    own = tmp_path / "province-roots.pem"
    own.write_bytes(province_ca.root_pem())
    monkeypatch.setenv("SSL_CERT_FILE", str(own))
    bundle = Path(trust_env(settings)["SSL_CERT_FILE"]).read_bytes()
    assert province_ca.root_pem() in bundle
    assert files(settings).ca_pem() in bundle  # type: ignore[operator]


async def test_otlp_exporter_sends_spans_over_tls_with_the_process_env(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's exporter in a child of `lgsp up`: only the environment tells it the CA."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from starlette.requests import Request
    from starlette.responses import Response

    received: list[bytes] = []

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(serve_asgi(app, "127.0.0.1", port, stop, ssl=uvicorn_ssl(settings)))
    for key, value in settings.process_env("documents").items():
        if key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE") or key.endswith("_CERTIFICATE"):
            monkeypatch.setenv(key, value)
    try:
        await asyncio.sleep(0.3)
        span = TracerProvider().get_tracer("test").start_span("ký số văn bản")
        span.end()
        exporter = OTLPSpanExporter(endpoint=f"https://127.0.0.1:{port}/v1/traces", timeout=3)
        result = await asyncio.to_thread(exporter.export, [span])  # type: ignore[list-item]
        exporter.shutdown()
        assert result == SpanExportResult.SUCCESS
        assert received and "ký số văn bản".encode() in received[0]
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module")
def province_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    """A CA of the province's own, not the platform's."""
    return DevCA.open_or_create(tmp_path_factory.mktemp("province-ca"))


def _own_files(directory: Path, ca: DevCA, **issue: object) -> tuple[Path, Path]:
    cred = ca.issue_server(["lgsp.example.vn"], **issue)  # type: ignore[arg-type]
    directory.mkdir(exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(cred.cert_pem() + ca.intermediate_pem())
    key.write_bytes(cred.key_pem())
    return cert, key


def _problems(tmp_path: Path, **env: str) -> str:
    with pytest.raises(ConfigError) as err:
        tls_settings(tmp_path, **env)
    return str(err.value)


def test_settings_accept_a_good_own_certificate(tmp_path: Path, province_ca: DevCA) -> None:
    ca = province_ca
    cert, key = _own_files(tmp_path, ca)
    s = tls_settings(
        tmp_path,
        LGSP_TLS_CERT_FILE=str(cert),
        LGSP_TLS_KEY_FILE=str(key),
        LGSP_TLS_CA_FILE=str(ca.root_path),
    )
    assert files(s).cert_file == cert
    assert uvicorn_ssl(s) == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def test_settings_errors_name_the_file_and_the_fault(
    tmp_path: Path, province_ca: DevCA, settings: Settings
) -> None:
    ca = province_ca
    cert, key = _own_files(tmp_path, ca)
    # Issued by another CA (the platform's development one).
    platform_ca = DevCA.open_or_create(settings.data_dir / "ca")
    other_cert, other_key = _own_files(tmp_path / "other", platform_ca)
    missing = _problems(
        tmp_path, LGSP_TLS_CERT_FILE=str(tmp_path / "nope.pem"), LGSP_TLS_KEY_FILE=str(key)
    )
    assert "env LGSP_TLS_CERT_FILE: cannot read" in missing and "nope.pem" in missing
    half = _problems(tmp_path, LGSP_TLS_CERT_FILE=str(cert))
    assert "set both tls.cert_file and tls.key_file" in half
    mismatch = _problems(tmp_path, LGSP_TLS_CERT_FILE=str(cert), LGSP_TLS_KEY_FILE=str(other_key))
    assert "env LGSP_TLS_KEY_FILE:" in mismatch and "is not the key of certificate" in mismatch
    wrong_ca = _problems(
        tmp_path,
        LGSP_TLS_CERT_FILE=str(other_cert),
        LGSP_TLS_KEY_FILE=str(other_key),
        LGSP_TLS_CA_FILE=str(ca.root_path),
    )
    assert "is not issued by a CA in" in wrong_ca
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    bad = _problems(tmp_path, LGSP_TLS_CERT_FILE=str(garbage), LGSP_TLS_KEY_FILE=str(garbage))
    assert "holds no PEM certificate" in bad


def test_an_expired_certificate_stops_start_up(tmp_path: Path, province_ca: DevCA) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    cert, key = _own_files(tmp_path, province_ca, valid_days=30, not_before=long_ago)
    expired = _problems(tmp_path, LGSP_TLS_CERT_FILE=str(cert), LGSP_TLS_KEY_FILE=str(key))
    assert "env LGSP_TLS_CERT_FILE:" in expired and "expired on" in expired


def test_tls_files_without_enabled_are_a_mistake_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_TLS_CERT_FILE": "c.pem"})
    assert "env LGSP_TLS_CERT_FILE: TLS is off" in str(err.value)
