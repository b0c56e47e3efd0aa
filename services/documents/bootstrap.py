"""Wiring: configuration → agency directory, transport (bus, and the national document axis
when [documents] national_axis), attachment store, CA, use cases,
gRPC servicer.

`wire_service(runtime)` is the plugin's composition root; tests and the benchmark pass their
own directory (a static one) and authenticator as options."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator, authenticator_from_settings
from lgsp.authn import ClientCredentials, issuer_from_settings
from lgsp.blobs import AttachmentStore, open_store
from lgsp.config import Settings
from lgsp.plugins import Subscription, Wiring
from services.documents.adapters.agencies import IdentityAgencyDirectory
from services.documents.adapters.signatures import DevCASignatures
from services.documents.entrypoints.grpc import DocumentServicer
from services.documents.national_axis import axis_from_settings
from services.documents.service_layer.attachments import DocumentFiles
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.transport import BusTransport, Transport

MIGRATIONS = Path(__file__).parent / "migrations"
EXCHANGE_GROUP = "documents-exchange"

log = logging.getLogger("services.documents")


def identity_credentials(settings: Settings) -> ClientCredentials | None:
    """The client-credentials token the service presents to identity (GetAgencyTree).

    The secret comes from `[documents] client_secret`, else from the demo secrets identity
    writes to <data_dir>/identity-demo.json on first start (embedded default). None, with a
    warning, when neither is there."""
    client_id = settings.documents.client_id
    secret = settings.documents.client_secret
    if not secret:
        demo = settings.data_dir / "identity-demo.json"
        try:
            secret = str(json.loads(demo.read_text()).get("client_secrets", {}).get(client_id, ""))
        except (OSError, ValueError):
            secret = ""
    if not secret:
        log.warning("no client secret for %s: identity calls go without a token", client_id)
        return None
    token_url = f"{issuer_from_settings(settings)}/protocol/openid-connect/token"
    return ClientCredentials(token_url, client_id, secret)


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
    if agencies is None:
        remote, refresh, close = _identity_directory(settings)
        agencies = remote
        background.append(refresh)
        closers.append(close)
    subscriptions: list[Subscription] = []
    axis = None
    if transport is None and settings.documents.national_axis:
        transport, axis = axis_from_settings(settings, agencies, runtime.engine)
        subscriptions.append(axis.relay())
        background.append(axis.run)
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


def _identity_directory(
    settings: Settings,
) -> tuple[IdentityAgencyDirectory, Any, Any]:
    """Identity's agency tree over gRPC, its refresh loop and its closer."""
    from lgsp.grpc.client import channel

    host = (
        settings.platform.host if settings.platform.host not in ("0.0.0.0", "::") else "127.0.0.1"
    )
    # Made at first use: on a first start identity may not have written its demo secrets
    # yet, so they are looked for again each time.
    made: dict[str, ClientCredentials] = {}

    async def identity_metadata() -> Sequence[tuple[str, str]]:
        if "credentials" not in made:
            credentials = identity_credentials(settings)
            if credentials is None:
                return ()
            made["credentials"] = credentials
        return await made["credentials"].metadata()

    remote = IdentityAgencyDirectory(
        lambda: channel(f"{host}:{settings.identity.grpc_port}", service_name="documents"),
        metadata=identity_metadata,
    )

    async def refresh_agencies(stop: asyncio.Event) -> None:
        await remote.run(stop)

    async def close() -> None:
        if "credentials" in made:
            await made["credentials"].aclose()

    return remote, refresh_agencies, close
