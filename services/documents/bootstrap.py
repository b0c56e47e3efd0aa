"""Wiring: configuration → agency directory, transport (bus, and the national document axis
when [documents] national_axis), attachment store, CA, use cases,
gRPC servicer, ServiceSpec.

`build_spec(settings)` is what `python -m services.documents` runs; tests and the benchmark
pass their own directory (a static one) and authenticator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lgsp.agencies import IdentityAgencyDirectory
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime, ServiceSpec, Subscription
from lgsp.auth import Authenticator, authenticator_from_settings
from lgsp.blobs import AttachmentStore, open_store
from lgsp.config import Settings
from services.documents.adapters.signatures import DevCASignatures
from services.documents.entrypoints.grpc import DocumentServicer
from services.documents.national_axis import axis_from_settings
from services.documents.service_layer.attachments import DocumentFiles
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.transport import BusTransport, Transport

MIGRATIONS = Path(__file__).parent / "migrations"
EXCHANGE_GROUP = "documents-exchange"
AGENCIES_GROUP = "documents-agencies"  # identity's agency events, into the directory

log = logging.getLogger("services.documents")


def build_spec(
    settings: Settings,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    transport: Transport | None = None,
    store: AttachmentStore | None = None,
    signatures: DevCASignatures | None = None,
    ca_auto_issue: bool | None = None,
    holder: dict[str, Any] | None = None,
) -> ServiceSpec:
    """The documents ServiceSpec. Without `agencies`, the directory is loaded from the
    identity service (with the service's client-credentials token), follows identity's
    agency events and is reloaded in the background. Attachments go to
    `open_store(settings.attachments)`; signatures use the development CA in <data_dir>/ca
    (`ca_auto_issue`: a signer without a certificate gets one on first use)."""
    holder = {} if holder is None else holder
    background: list[Any] = []
    subscriptions: list[Subscription] = []
    if agencies is None:
        remote = IdentityAgencyDirectory.from_settings(
            settings,
            service="documents",
            client_id=settings.documents.client_id,
            client_secret=settings.documents.client_secret,
        )
        agencies = remote
        subscriptions.append(remote.subscription(AGENCIES_GROUP))

        async def refresh_agencies(rt: ServiceRuntime, stop: asyncio.Event) -> None:
            await remote.run(stop)

        background.append(refresh_agencies)
    directory = agencies
    if transport is None and settings.documents.national_axis:
        transport, axis = axis_from_settings(settings, directory)
        holder["axis"] = axis
        axis.on_refused = lambda *failure: holder["app"].on_delivery_failed(*failure)
        subscriptions.append(axis.relay())
        background.append(axis.run)
    transport = transport or BusTransport()

    def files(rt: ServiceRuntime) -> DocumentFiles:
        if "files" not in holder:
            app = DocumentsApp(rt.engine, directory, transport, after_commit=rt.after_commit)
            signer = signatures or DevCASignatures(
                settings.data_dir / "ca",
                auto_issue=settings.documents.ca_auto_issue
                if ca_auto_issue is None
                else ca_auto_issue,
            )
            holder["app"] = app
            holder["files"] = DocumentFiles(
                app,
                store or open_store(settings.attachments),
                verifier=signer,
                signer=signer,
            )
        files: DocumentFiles = holder["files"]
        return files

    async def close_at_stop(rt: ServiceRuntime, stop: asyncio.Event) -> None:
        # Background tasks stop after the server drained its calls: nothing uses them now.
        await stop.wait()
        if "files" in holder:
            await holder["files"].store.close()
            holder["app"].close()

    background.append(close_at_stop)

    async def on_delivery(delivery: Any, uow: Any) -> None:
        await holder["files"].receive(delivery, uow)

    return ServiceSpec(
        "documents",
        servicers=[
            lambda rt: (
                documents_pb2_grpc.add_DocumentServiceServicer_to_server,
                DocumentServicer(files(rt)),
            )
        ],
        migrations_dir=MIGRATIONS,
        subscriptions=[transport.subscription(EXCHANGE_GROUP, on_delivery), *subscriptions],
        authenticator=authenticator or authenticator_from_settings(settings),
        background=background,
    )
