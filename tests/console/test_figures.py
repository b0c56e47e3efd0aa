"""The province's figures page: the console calls documents' and dossiers' figures RPCs over
gRPC with its own client-credentials token (no service imported), and says what failed."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import grpc
import httpx
import pytest

from console.app import create_app
from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.config import Settings, load_settings
from tests.console.support import FakeOidc, signed_in_asgi
from tests.fixtures import free_port

TOKEN = "console-token-1"
HOSTILE = "<img src=x onerror=alert(1)>"


class TokenEndpoint(BaseHTTPRequestHandler):
    asked: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        user, _, password = (
            base64.b64decode(self.headers["authorization"][6:]).decode().partition(":")
        )
        TokenEndpoint.asked.append((user, password))
        if (user, password) != ("lgsp-console", "s3cret"):
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"access_token": TOKEN, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Documents(documents_pb2_grpc.DocumentServiceServicer):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []

    async def GetDocumentFigures(self, request: Any, context: Any) -> Any:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        self.calls.append((request, auth))
        if auth != f"Bearer {TOKEN}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token")
        total = documents_pb2.DocumentFigures(
            outgoing_issued=40,
            outgoing_electronic=36,
            outgoing_digitally_signed=30,
            incoming_arrived=60,
            incoming_electronic=54,
            electronic_share=0.9,
            digitally_signed_share=0.75,
        )
        return documents_pb2.GetDocumentFiguresResponse(total=total)


class Dossiers(dossiers_pb2_grpc.DossierServiceServicer):
    async def GetDossierFigures(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"auditor required {HOSTILE}")


@pytest.fixture
def token_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def services() -> AsyncIterator[tuple[int, int, Documents]]:
    docs = Documents()
    ports = []
    servers = []
    for add, servicer in (
        (documents_pb2_grpc.add_DocumentServiceServicer_to_server, docs),
        (dossiers_pb2_grpc.add_DossierServiceServicer_to_server, Dossiers()),
    ):
        server = grpc.aio.server()
        add(servicer, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
    yield ports[0], ports[1], docs
    for server in servers:
        await server.stop(0)


def console_settings(tmp_path: Path, token_url: str, docs: int, dossiers: int) -> Settings:
    return load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_IDENTITY_ISSUER_BASE_URL": token_url,
            "LGSP_CONSOLE_CLIENT_SECRET": "s3cret",
            "LGSP_DOCUMENTS_GRPC_PORT": str(docs),
            "LGSP_DOSSIERS_GRPC_PORT": str(dossiers),
        }
    )


async def get(settings: Settings, url: str) -> httpx.Response:
    app = create_app(settings, oidc=FakeOidc(settings))
    async with signed_in_asgi(app, settings) as client:
        reply = await client.get(url)
    await app.state.lag_reader.close()
    return reply


async def test_figures_come_from_the_services_rpcs_with_the_consoles_token(
    tmp_path: Path, token_url: str, services: tuple[int, int, Documents]
) -> None:
    docs_port, dossiers_port, docs = services
    settings = console_settings(tmp_path, token_url, docs_port, dossiers_port)
    reply = await get(settings, "/figures?from=2026-01-01&to=2026-06-30")
    assert reply.status_code == 200
    page = reply.text
    assert "90.0%</td>" in page and "90 of 100 documents" in page  # electronic share
    assert "75.0%</td>" in page and "30 of 40 issued" in page  # signed share
    # Dossiers refused: the page says which and why, escaped.
    assert "dossiers: PERMISSION_DENIED: auditor required" in page
    assert HOSTILE not in page and "&lt;img src=x" in page

    ((request, auth),) = docs.calls
    assert auth == f"Bearer {TOKEN}"
    assert request.agency_code == "000.00.00.H27" and request.include_sub_agencies
    assert (request.from_date, request.to_date) == ("2026-01-01", "2026-06-30")
    assert ("lgsp-console", "s3cret") in TokenEndpoint.asked


async def test_a_bad_period_is_refused(
    tmp_path: Path, token_url: str, services: tuple[int, int, Documents]
) -> None:
    settings = console_settings(tmp_path, token_url, services[0], services[1])
    reply = await get(settings, "/figures?from=2026-07-01&to=2026-06-30")
    assert reply.status_code == 400
    assert "the period ends before it starts" in reply.text
    reply = await get(settings, "/figures?from=yesterday")
    assert reply.status_code == 400
    assert "from and to are dates: YYYY-MM-DD" in reply.text


async def test_a_service_that_is_down_is_said_not_fatal(tmp_path: Path, token_url: str) -> None:
    settings = console_settings(tmp_path, token_url, free_port(), free_port())
    reply = await get(settings, "/figures")
    assert reply.status_code == 200
    assert "documents: UNAVAILABLE" in reply.text and "dossiers: UNAVAILABLE" in reply.text


async def test_the_default_period_ends_on_the_provinces_date_not_the_servers(
    tmp_path: Path,
    token_url: str,
    services: tuple[int, int, Documents],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server on UTC (containers are) is a day behind Vietnam from 17:00 to 24:00: the
    figures by default must still count what the province issued today."""
    import time
    from datetime import UTC, datetime

    from lgsp.workdays import local_date

    province_today = local_date(datetime.now(UTC))
    # A zone whose date differs from the province's right now (UTC-12 or UTC+14).
    for zone in ("Etc/GMT+12", "Etc/GMT-14"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        if datetime.now().date() != province_today:
            break
    try:
        docs_port, dossiers_port, docs = services
        settings = console_settings(tmp_path, token_url, docs_port, dossiers_port)
        reply = await get(settings, "/figures")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert reply.status_code == 200
    ((request, _auth),) = docs.calls
    assert request.to_date == province_today.isoformat()
    assert request.from_date == f"{province_today.year}-01-01"
