"""The documents' and the dossiers' events → notices (consumer group "mail-notices" on
lgsp.documents.v1 and lgsp.dossiers.v1).

Each handler runs in the processor's unit of work: the notices it stores and the processed
event id commit together, so an event delivered twice is noticed once (lgsp/inbox.py).
"""

from __future__ import annotations

from typing import Any

from lgsp.api.documents.v1 import events_pb2 as dev
from lgsp.api.dossiers.v1 import events_pb2 as sev
from lgsp.events import topic_for
from lgsp.inbox import ReceivedEvent
from lgsp.plugins import Subscription
from services.mail.service_layer.mail import MailApp

GROUP = "mail-notices"
TOPICS = (topic_for("documents"), topic_for("dossiers"))


def notice_subscription(app: MailApp, group: str = GROUP) -> Subscription:
    def received(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, dev.DocumentReceived)
        app.on_document_received(uow, event.payload.document)

    def assigned(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, dev.DocumentAssigned)
        app.on_document_assigned(uow, event.payload)

    def task_assigned(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, dev.DirectiveTaskAssigned)
        app.on_task_assigned(uow, event.payload.task)

    def task_status(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, dev.DirectiveTaskStatusChanged)
        app.on_task_status(uow, event.payload)

    def dossier(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, sev.DossierStatusChanged)
        app.on_dossier_status(uow, event.payload)

    def apology(event: ReceivedEvent, uow: Any) -> None:
        assert isinstance(event.payload, sev.DossierApologyIssued)
        app.on_dossier_apology(uow, event.payload)

    return Subscription(
        group,
        list(TOPICS),
        {
            dev.DocumentReceived: received,
            dev.DocumentAssigned: assigned,
            dev.DirectiveTaskAssigned: task_assigned,
            dev.DirectiveTaskStatusChanged: task_status,
            sev.DossierStatusChanged: dossier,
            sev.DossierApologyIssued: apology,
        },
        max_attempts=10,
    )
