"""A real identity service (demo province), a stand-in documents service that checks tokens
itself, and the gateway in front of it, all on free loopback ports in one event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
import pytest_asyncio

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
from lgsp.api.gateway.v1 import gateway_pb2 as gpb
from lgsp.app import ServiceRuntime
from lgsp.auth import current_principal
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc import build_server
from lgsp.grpc.server import LgspServer
from services.gateway.app import Gateway, GatewayOptions
from services.gateway.plugin import PLUGIN
from services.gateway.proxy import Route
from services.identity.seed import DemoCredentials, read_demo
from tests.services.identity.conftest import ADMIN_PASSWORD, start_identity
from tests.support import free_port

ADMIN_USER = "thaoln.ubnd"  # demo: admin of the province
AUDITOR_USER = "lanht.ubnd"
MOTCUA = "000.00.61.H27:motcua-thanhsen"
DVC = "000.00.20.H27:dvc"
DOCS = "/lgsp.api.documents.v1.DocumentService/"


@dataclass
class Seen:
    """What the stand-in upstream saw of forwarded calls."""

    metadata: list[dict[str, Any]] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    time_remaining: list[float | None] = field(default_factory=list)


class FakeDocuments(dpbg.DocumentServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def _note(self, context: Any) -> None:
        self.seen.metadata.append(dict(context.invocation_metadata()))
        self.seen.callers.append(current_principal().subject)
        self.seen.time_remaining.append(context.time_remaining())

    async def GetDocument(self, request: Any, context: Any) -> Any:
        self._note(context)
        if request.id == "slow":
            await asyncio.sleep(2)
        if request.id == "missing":
            from lgsp.grpc.errors import NotFound

            raise NotFound("document missing not found", resource_type="document")
        return dpb.GetDocumentResponse(document=dpb.Document(id=request.id, subject="Công văn"))

    async def UploadAttachment(self, request_iterator: Any, context: Any) -> Any:
        self._note(context)
        size = 0
        async for part in request_iterator:
            size += len(part.chunk)
        return dpb.UploadAttachmentResponse(attachment=dpb.Attachment(size_bytes=size))

    async def DownloadAttachment(self, request: Any, context: Any) -> Any:
        self._note(context)
        for i in range(3):
            yield dpb.DownloadAttachmentResponse(chunk=bytes([i]) * 1000)


def _echo_stream_handler() -> grpc.GenericRpcHandler:
    """A method the gateway's protos do not know: forwarded as a bidirectional stream."""

    async def chat(request_iterator: Any, context: Any) -> Any:
        async for message in request_iterator:
            yield message[::-1]

    return grpc.method_handlers_generic_handler(
        "lgsp.api.documents.v1.DocumentService",
        {"Chat": grpc.stream_stream_rpc_method_handler(chat)},
    )


@dataclass
class Platform:
    identity_base: str
    issuer: str
    gateway: Gateway
    runtime: ServiceRuntime
    upstream: LgspServer
    seen: Seen
    data_dir: Path
    spare: str = ""  # where the "search" route points, with nothing listening at first
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.runtime.server.address

    @property
    def demo(self) -> DemoCredentials:
        """The demo province's passwords and secrets, as identity's seeding wrote them."""
        return read_demo(self.data_dir / "identity")

    async def client_token(self, client_id: str, secret: str | None = None) -> str:
        key = f"client:{client_id}"
        if key not in self.tokens:
            async with httpx.AsyncClient() as http:
                r = await http.post(
                    f"{self.issuer}/protocol/openid-connect/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret or self.demo.secret(client_id)),
                )
                r.raise_for_status()
                self.tokens[key] = r.json()["access_token"]
        return self.tokens[key]

    async def user_token(self, username: str, client_id: str = "admin-cli") -> str:
        key = f"user:{username}:{client_id}"
        if key not in self.tokens:
            data = {
                "grant_type": "password",
                "username": username,
                "password": self.demo.password(username),
                "client_id": client_id,
            }
            async with httpx.AsyncClient() as http:
                auth = (
                    None if client_id == "admin-cli" else (client_id, self.demo.secret(client_id))
                )
                r = await http.post(
                    f"{self.issuer}/protocol/openid-connect/token", data=data, auth=auth
                )
                r.raise_for_status()
                self.tokens[key] = r.json()["access_token"]
        return self.tokens[key]


def bearer(token: str) -> Sequence[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def start_gateway(
    tmp_path: Path,
    issuer: str,
    routes: dict[str, Route],
    options: dict[str, Any] | None = None,
    db_url: str | None = None,
) -> tuple[ServiceRuntime, Gateway]:
    env = {
        "LGSP_PLATFORM_DATA_DIR": str(tmp_path / "gateway"),
        "LGSP_TELEMETRY_ENABLED": "false",
        "LGSP_BUS_URL": f"sqlite:///{tmp_path / 'gateway' / 'bus.db'}",
    }
    if db_url:
        env["LGSP_GATEWAY_DATABASE_URL"] = db_url
    settings = load_settings(env=env)
    opts = GatewayOptions(
        routes=routes,
        authenticator=JwtAuthenticator(issuer),
        **{"seal_every": 20, "seal_interval": 0.5, **(options or {})},
    )
    runtime = ServiceRuntime(PLUGIN.with_options(options=opts), settings, port=0)
    await runtime.start()
    return runtime, runtime.app


def seed_members(gw: Gateway) -> None:
    reg = gw.registry
    actor = "test"
    reg.register_member(
        actor,
        gpb.Member(
            code=MOTCUA,
            name="Một cửa phường Thành Sen",
            agency_code="000.00.61.H27",
            kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
            client_id="motcua-thanhsen",
            contact_email="motcua@thanhsen.hatinh.gov.vn",
        ),
    )
    reg.register_member(
        actor,
        gpb.Member(
            code=DVC,
            name="Cổng dịch vụ công",
            agency_code="000.00.20.H27",
            kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
            client_id="dvc-hatinh",
        ),
    )
    reg.grant(
        actor,
        gpb.AccessRight(
            member_code=MOTCUA,
            service=gpb.ServiceTarget(service="lgsp.api.documents.v1.DocumentService"),
        ),
    )
    # dvc may only read documents, one method.
    reg.grant(
        actor,
        gpb.AccessRight(
            member_code=DVC,
            service=gpb.ServiceTarget(
                service="lgsp.api.documents.v1.DocumentService", methods=["ListDocuments"]
            ),
        ),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    from services.identity.seed import seed_demo

    tmp_path = tmp_path_factory.mktemp("gw")
    os.environ["IDENTITY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    try:
        id_runtime, ident, base = await start_identity(tmp_path / "identity")
    finally:
        os.environ.pop("IDENTITY_ADMIN_PASSWORD", None)
    await asyncio.to_thread(seed_demo, ident, tmp_path / "identity")
    issuer = f"{base}/realms/lgsp"
    seen = Seen()
    upstream = build_server(
        "documents",
        servicers=[
            (dpbg.add_DocumentServiceServicer_to_server, FakeDocuments(seen)),
            (lambda h, server: server.add_generic_rpc_handlers([h]), _echo_stream_handler()),
        ],
        authenticator=JwtAuthenticator(issuer),
    )
    await upstream.start()
    spare = f"127.0.0.1:{free_port()}"
    routes = {
        "documents": Route("documents", upstream.address, "documents"),
        "identity": Route("identity", id_runtime.server.address, "identity"),
        # An area whose service is down: calls answer UNAVAILABLE.
        "mail": Route("mail", "127.0.0.1:9", "mail"),
        # A service that comes up while the gateway runs (the reconnect test).
        "search": Route("search", spare, "search"),
    }
    runtime, gw = await start_gateway(tmp_path, issuer, routes)
    await asyncio.to_thread(seed_members, gw)
    try:
        yield Platform(base, issuer, gw, runtime, upstream, seen, tmp_path, spare)
    finally:
        await runtime.stop(grace=1)
        await upstream.stop(0)
        await id_runtime.stop(grace=1)
