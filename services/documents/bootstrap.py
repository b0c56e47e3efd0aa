"""Wiring: configuration → agency directory, transport, use cases, gRPC servicer, ServiceSpec.

`build_spec(settings)` is what `python -m services.documents` runs; tests and the benchmark
pass their own directory (a static one) and authenticator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime, ServiceSpec
from lgsp.auth import Authenticator, authenticator_from_settings
from lgsp.config import Settings
from services.documents.adapters.agencies import IdentityAgencyDirectory
from services.documents.entrypoints.grpc import DocumentServicer
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.ports import AgencyDirectory, SignatureVerifier
from services.documents.transport import BusTransport, Transport

MIGRATIONS = Path(__file__).parent / "migrations"
EXCHANGE_GROUP = "documents-exchange"


def build_spec(
    settings: Settings,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    transport: Transport | None = None,
    signatures: SignatureVerifier | None = None,
    holder: dict[str, DocumentsApp] | None = None,
) -> ServiceSpec:
    """The documents ServiceSpec. Without `agencies`, the directory is loaded from the
    identity service and refreshed in the background."""
    holder = {} if holder is None else holder
    transport = transport or BusTransport()
    background: list[Any] = []
    if agencies is None:
        from lgsp.grpc.client import channel

        host = (
            settings.platform.host
            if settings.platform.host not in ("0.0.0.0", "::")
            else "127.0.0.1"
        )
        remote = IdentityAgencyDirectory(
            channel(f"{host}:{settings.identity.grpc_port}", service_name="documents")
        )
        agencies = remote

        async def refresh_agencies(rt: ServiceRuntime, stop: asyncio.Event) -> None:
            await remote.run(stop)

        background.append(refresh_agencies)
    directory = agencies

    def app(rt: ServiceRuntime) -> DocumentsApp:
        if "app" not in holder:
            holder["app"] = DocumentsApp(
                rt.engine, directory, transport, signatures=signatures, after_commit=rt.after_commit
            )
        return holder["app"]

    def on_delivery(delivery: Any, uow: Any) -> None:
        holder["app"].on_delivery(delivery, uow)

    return ServiceSpec(
        "documents",
        servicers=[
            lambda rt: (
                documents_pb2_grpc.add_DocumentServiceServicer_to_server,
                DocumentServicer(app(rt)),
            )
        ],
        migrations_dir=MIGRATIONS,
        subscriptions=[transport.subscription(EXCHANGE_GROUP, on_delivery)],
        authenticator=authenticator or authenticator_from_settings(settings),
        background=background,
    )
