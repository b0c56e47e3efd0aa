"""A small service built only from the platform, run as a real process by the tests:
`python -m tests.integration.sample_service`. It answers DocumentService.CreateDraft by
storing a row and emitting DocumentDrafted, and consumes its own topic (recording an effect),
which is enough to exercise everything run_service wires up."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import sqlalchemy as sa

from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc, events_pb2
from lgsp.app import ServiceRuntime, run_service
from lgsp.config import ServiceSettings
from lgsp.db import UnitOfWork
from lgsp.inbox import ReceivedEvent
from lgsp.plugins import Plugin, Subscription, Wiring
from tests.lgsp.storage.support import MIGRATIONS, effects, notes

GROUP = "sample-self-audit"


class DraftingServicer(documents_pb2_grpc.DocumentServiceServicer):
    """CreateDraft stores a row and emits DocumentDrafted in one transaction."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    async def CreateDraft(
        self, request: documents_pb2.CreateDraftRequest, context: Any
    ) -> documents_pb2.CreateDraftResponse:
        doc = documents_pb2.Document()
        doc.CopyFrom(request.document)
        doc.id = str(uuid.uuid4())

        def write() -> None:
            with UnitOfWork(self.runtime.engine, source=self.runtime.name) as uow:
                uow.session.execute(sa.insert(notes).values(id=doc.id, text=doc.subject))
                uow.emit(events_pb2.DocumentDrafted(document=doc), subject=doc.id)
                uow.commit()

        await asyncio.to_thread(write)
        self.runtime.after_commit()
        return documents_pb2.CreateDraftResponse(document=doc)


def record_effect(event: ReceivedEvent, uow: UnitOfWork) -> None:
    uow.session.execute(sa.insert(effects).values(event_id=event.id, subject=event.subject))


def wire(runtime: ServiceRuntime) -> Wiring:
    return Wiring(
        servicers=[
            (documents_pb2_grpc.add_DocumentServiceServicer_to_server, DraftingServicer(runtime))
        ],
        subscriptions=[
            Subscription(GROUP, ["lgsp.documents.v1"], {events_pb2.DocumentDrafted: record_effect})
        ],
    )


# Runs under the documents service's settings section (its port and database).
PLUGIN = Plugin(
    "documents",
    "drafting sample",
    ServiceSettings,
    wire=wire,
    migrations=MIGRATIONS,
    grace_seconds=5.0,
)

if __name__ == "__main__":
    sys.exit(run_service(PLUGIN))
