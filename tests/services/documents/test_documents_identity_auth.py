"""The documents service calls identity's GetAgencyTree with its own client-credentials token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from joserfc import jwt

from lgsp.agencies import IdentityAgencyDirectory, identity_credentials
from lgsp.api.identity.v1 import identity_pb2, identity_pb2_grpc
from lgsp.config import load_settings
from tests.support.issuer import FakeIssuer


class Identity(identity_pb2_grpc.IdentityServiceServicer):
    """A stand-in identity service that, like the real one, wants a bearer token."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def GetAgencyTree(self, request: Any, context: Any) -> Any:
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if not auth.startswith("Bearer "):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "token required")
        self.tokens.append(auth[7:])
        root = identity_pb2.Agency(code="000.00.00.H27", name="UBND tỉnh", short_name="UBND")
        child = identity_pb2.Agency(
            code="000.00.12.H27", name="Sở Tư pháp", short_name="STP", parent_code=root.code
        )
        return identity_pb2.GetAgencyTreeResponse(
            roots=[
                identity_pb2.AgencyNode(
                    agency=root, children=[identity_pb2.AgencyNode(agency=child)]
                )
            ]
        )


async def test_agency_tree_is_fetched_with_the_services_token(tmp_path: Path) -> None:
    issuer = FakeIssuer()
    await issuer.start()
    server = grpc.aio.server()
    identity = Identity()
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(identity, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    (tmp_path / "identity-demo.json").write_text(
        json.dumps({"client_secrets": {"documents": "documents-secret"}})
    )
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_IDENTITY_HTTP_PORT": str(issuer.port),
        }
    )
    credentials = identity_credentials(settings, settings.documents.client_id)
    assert credentials is not None
    assert credentials.token_url == f"{issuer.issuer}/protocol/openid-connect/token"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        directory = IdentityAgencyDirectory(ch, metadata=credentials.metadata)
        try:
            await directory.load()
            await directory.load(force=True)  # within its TTL: only a forced load asks again
        finally:
            await credentials.aclose()
            await server.stop(0)
            await issuer.stop()
    assert directory.ancestors("000.00.12.H27") == ("000.00.00.H27",)
    assert issuer.token_hits == 1  # cached between calls
    claims = jwt.decode(identity.tokens[0], issuer.keys[0]).claims
    assert claims["client_id"] == "documents" and len(identity.tokens) == 2


def test_without_a_secret_there_are_no_credentials(tmp_path: Path) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    assert identity_credentials(settings, settings.documents.client_id) is None


def test_directory_made_before_the_event_loop_loads_inside_it() -> None:
    """services/documents/__main__ builds the spec before asyncio.run starts the loop: the
    channel must then be made at the first load (a channel made earlier belongs to no loop
    and every call fails with 'attached to a different loop')."""
    from lgsp.grpc.client import channel
    from tests.support import free_port

    port = free_port()

    async def bearer() -> tuple[tuple[str, str], ...]:
        return (("authorization", "Bearer t"),)

    directory = IdentityAgencyDirectory(  # no event loop yet
        lambda: channel(f"127.0.0.1:{port}"), metadata=bearer
    )

    async def serve_and_load() -> tuple[str, ...]:
        server = grpc.aio.server()
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(Identity(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        try:
            await directory.load()
        finally:
            await server.stop(0)
        return tuple(directory.ancestors("000.00.12.H27"))

    assert asyncio.run(serve_and_load()) == ("000.00.00.H27",)
