"""Wiring: configuration → index generations, attachment store, indexer, gRPC servicer.

`wire_service(runtime)` is the plugin's composition root; tests pass their own
authenticator and read the `Serving` as the runtime's `app`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lgsp.agencies import AgencyDirectory, follow_identity
from lgsp.api.search.v1 import search_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.blobs import open_store
from lgsp.config import Settings
from lgsp.grpc.errors import FailedPrecondition
from lgsp.plugins import Subscription, Wiring
from services.search.adapters.generations import Generations
from services.search.entrypoints.grpc import SearchServicer
from services.search.index import IndexLayoutError, SearchIndex
from services.search.service_layer.indexer import AttachmentReader
from services.search.service_layer.serving import Serving

log = logging.getLogger(__name__)


def attachment_reader(settings: Settings) -> AttachmentReader | None:
    """The documents service's attachment store, read-only: the same directory on disk in the
    embedded default (one machine), the same S3 bucket in scale-out. The indexer reads a file
    by its sha256 only (AttachmentAdded carries it)."""
    try:
        return open_store(settings.attachments)
    except ValueError:
        return None


def wire_service(
    runtime: ServiceRuntime,
    *,
    authenticator: Authenticator | None = None,
    attachments: AttachmentReader | None = None,
    commit_interval: float = 0.1,
    agencies: AgencyDirectory | None = None,
) -> Wiring:
    """The search plugin's composition root; `app` is the `Serving` (tests read it). Without
    `agencies`, the agency tree is loaded from identity (with the service's client
    credentials) and kept current, as documents does: reading rights follow the tree."""
    settings = runtime.settings
    background: list[Any] = []
    closers: list[Any] = []
    subscriptions: list[Subscription] = []
    if agencies is None:  # identity's tree, kept current from its events
        followed = follow_identity(settings, "search")
        agencies = followed.directory
        subscriptions.extend(followed.subscriptions)
        background.extend(followed.background)
        closers.extend(followed.closers)
    serving = Serving(
        Generations(settings),
        attachments if attachments is not None else attachment_reader(settings),
        commit_interval=commit_interval,
    )

    def index() -> SearchIndex:
        try:
            return serving.open()
        except IndexLayoutError as e:
            # The operator's message (with paths) goes to the log; the caller learns why.
            log.error("%s", e)
            raise FailedPrecondition(
                "the search index must be rebuilt by an operator (lgsp search reindex)",
                type="SEARCH_INDEX_LAYOUT",
            ) from e

    async def indexer(stop: asyncio.Event) -> None:
        assert runtime.bus is not None
        try:
            await serving.run(runtime.bus, stop)
        finally:
            if stop.is_set():
                await serving.close()

    return Wiring(
        servicers=[
            (
                search_pb2_grpc.add_SearchServiceServicer_to_server,
                SearchServicer(index, agencies, serving.copies),
            )
        ],
        subscriptions=subscriptions,
        authenticator=authenticator or authenticator_from_settings(settings),
        background=[indexer, *background],
        closers=closers,
        app=serving,
    )
