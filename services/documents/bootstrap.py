"""Wiring: configuration → agency directory, transport (bus, and the national document axis
when [documents] national_axis), attachment store, CA, use cases,
gRPC servicer.

`wire_service(runtime)` is the plugin's composition root; tests and the benchmark pass their
own directory (a static one) and authenticator as options."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lgsp.agencies import follow_identity
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.blobs import AttachmentStore, open_store
from lgsp.plugins import Subscription, Wiring
from services.documents.adapters.signatures import DevCASignatures
from services.documents.entrypoints.grpc import DocumentServicer
from services.documents.national_axis import axis_from_settings
from services.documents.outside_directory import OutsideDirectory
from services.documents.service_layer.attachments import DocumentFiles
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.transport import BusTransport, Transport

MIGRATIONS = Path(__file__).parent / "migrations"
EXCHANGE_GROUP = "documents-exchange"

log = logging.getLogger("services.documents")


@dataclass
class Documents:
    """The service's objects, as its Wiring's `app` (tests and benchmarks reach them here)."""

    app: DocumentsApp
    files: DocumentFiles
    axis: Any = None  # the national axis exchange, when [documents] national_axis


def wire_service(
    runtime: ServiceRuntime,
    *,
    agencies: AgencyDirectory | None = None,
    authenticator: Authenticator | None = None,
    transport: Transport | None = None,
    store: AttachmentStore | None = None,
    signatures: DevCASignatures | None = None,
    ca_auto_issue: bool | None = None,
) -> Wiring:
    """The documents plugin's composition root. Without `agencies`, the directory is loaded
    from the identity service (with the service's client-credentials token) and refreshed in
    the background. Attachments go to `open_store(settings.attachments)`; signatures use the
    development CA in <data_dir>/ca (`ca_auto_issue`: a signer without a certificate gets
    one on first use)."""
    settings = runtime.settings
    background: list[Any] = []
    closers: list[Any] = []
    subscriptions: list[Subscription] = []
    if agencies is None:  # identity's tree, kept current from its events
        followed = follow_identity(settings, "documents")
        agencies = followed.directory
        subscriptions.extend(followed.subscriptions)
        background.extend(followed.background)
        closers.extend(followed.closers)
    axis = None
    if transport is None and settings.documents.national_axis:
        transport, axis = axis_from_settings(settings, agencies, runtime.engine)
        subscriptions.append(axis.relay())
        background.append(axis.run)
        # Outside recipients are checked against the axis's list when a draft is made.
        transport.outside = OutsideDirectory(lambda: axis.client.list_agencies())
        background.append(transport.outside.run)
    transport = transport or BusTransport()
    app = DocumentsApp(runtime.engine, agencies, transport, after_commit=runtime.after_commit)
    if axis is not None:
        axis.on_refused = app.on_delivery_failed
    signer = signatures or DevCASignatures(
        settings.data_dir / "ca",
        auto_issue=settings.documents.ca_auto_issue if ca_auto_issue is None else ca_auto_issue,
    )
    files = DocumentFiles(
        app, store or open_store(settings.attachments), verifier=signer, signer=signer
    )

    async def close_files() -> None:
        await files.close()  # units of work of cancelled uploads finish first
        await files.store.close()
        app.close()

    return Wiring(
        servicers=[
            (documents_pb2_grpc.add_DocumentServiceServicer_to_server, DocumentServicer(files))
        ],
        subscriptions=[transport.subscription(EXCHANGE_GROUP, files.receive), *subscriptions],
        authenticator=authenticator or authenticator_from_settings(settings),
        background=background,
        closers=[close_files, *closers],
        app=Documents(app, files, axis),
    )
