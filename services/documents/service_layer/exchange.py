"""Exchange with other agencies in edXML (QCVN 102:2016): sending packages and status
messages through the Transport, and the incoming book's entry for what arrives. Receiving
(register, refuse, recall, update, replace; statuses back) is in receiving.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.db import UnitOfWork
from lgsp.events import enum_number
from lgsp.workdays import PROVINCE_TZ
from services.documents import edxml
from services.documents.adapters.repository import Repository
from services.documents.domain.document_types import document_type
from services.documents.domain.model import (
    Attachment,
    Direction,
    Document,
    HistoryEntry,
    IncomingStatus,
    Recipient,
)
from services.documents.domain.numbering import Book, split_number_notation
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.service_layer.receiving import (
    Arrival,
    Receiving,
    event_document,
    parse_delivery,
)
from services.documents.transport import Delivery, Transport

__all__ = ["Arrival", "Exchange", "event_document", "parse_delivery"]

log = logging.getLogger("services.documents.exchange")


class Exchange:
    def __init__(self, agencies: AgencyDirectory, transport: Transport) -> None:
        self.agencies = agencies
        self.transport = transport
        self.receiving = Receiving(self)

    # --- sending ---------------------------------------------------------------------------

    def organization(self, code: str, name: str = "") -> edxml.Organization:
        agency = self.agencies.get(code)
        return edxml.Organization(
            organ_id=code, organ_name=(agency.name if agency else "") or name or code
        )

    def package(
        self,
        doc: Document,
        recipients: Sequence[Recipient],
        now: datetime,
        business: edxml.BusinessDocType = edxml.BusinessDocType.NEW,
        reason: str = "",
        files: Sequence[tuple[Attachment, bytes]] = (),
    ) -> edxml.Package:
        kind = document_type(doc.type_code)
        assert kind is not None and doc.promulgation_date is not None
        number, _ = split_number_notation(doc.number_notation)
        header = edxml.MessageHeader(
            from_=self.organization(doc.agency_code),
            to=tuple(self.organization(r.agency_code, r.name) for r in recipients),
            code=edxml.Code(code_number=f"{number:02d}", code_notation=doc.notation),
            promulgation_info=edxml.PromulgationInfo(
                place=doc.promulgation_place or self.organization(doc.agency_code).organ_name,
                promulgation_date=doc.promulgation_date,
            ),
            document_type=edxml.DocumentType(type=kind.edxml_type, type_name=kind.name),
            subject=doc.subject,
            content=doc.summary,
            signer_info=edxml.SignerInfo(
                full_name=doc.signer.full_name or "—",
                competence=doc.signer.competence,
                position=doc.signer.position,
            ),
            due_date=doc.due_date,
            to_places=tuple(r.name for r in doc.recipients if r.name),
            other_info=edxml.OtherInfo(
                priority=edxml.Priority(int(doc.priority) - 1), page_amount=doc.page_count or None
            ),
        )
        # The DocumentId names the message: a recall, update or replacement is a message of its
        # own (the national axis refuses a second package under an id it has seen), and its
        # receiver finds the earlier document by sender and number, not by this id.
        document_id = header.conventional_document_id()
        if business != edxml.BusinessDocType.NEW:
            document_id += f",{business.name.lower()}-{uuid.uuid4().hex[:12]}"
        header = replace(header, document_id=document_id)
        return edxml.Package(
            header=header,
            trace_headers=(
                edxml.TraceHeader(
                    organ_id=doc.agency_code,
                    timestamp=now.astimezone(PROVINCE_TZ).replace(microsecond=0),
                ),
            ),
            business=edxml.Business(doc_type=business, reason=reason),
            # The main text first: the receiver takes the first file as the main text.
            attachments=tuple(
                edxml.Attachment(
                    content_id=f"file{i + 1}",
                    attachment_name=a.file_name,
                    content_type=a.content_type,
                    data=data,
                    description="Văn bản chính" if a.main else "Phụ lục",
                )
                for i, (a, data) in enumerate(sorted(files, key=lambda f: not f[0].main))
            ),
        )

    def deliver(self, uow: UnitOfWork, sender: str, recipients: Sequence[str], data: bytes) -> None:
        for code in recipients:
            self.transport.send(uow, Delivery(str(uuid.uuid4()), sender, code, data))

    def send_package(
        self,
        uow: UnitOfWork,
        doc: Document,
        recipients: Sequence[Recipient],
        now: datetime,
        files: Sequence[tuple[Attachment, bytes]] = (),
    ) -> None:
        pkg = self.package(doc, recipients, now, files=files)
        try:
            data = edxml.build_package(pkg)
        except edxml.EdxmlError as e:  # over the package caps: cannot travel electronically
            from services.documents.domain.errors import InvalidTransition

            raise InvalidTransition(
                f"send: the files cannot travel in one edXML package ({e.reason})", subject=doc.id
            ) from None
        self.deliver(uow, doc.agency_code, [r.agency_code for r in recipients], data)

    def send_recall(
        self,
        uow: UnitOfWork,
        doc: Document,
        recipients: Sequence[Recipient],
        reason: str,
        now: datetime,
    ) -> None:
        pkg = self.package(doc, recipients, now, edxml.BusinessDocType.RECALL, reason)
        self.deliver(
            uow, doc.agency_code, [r.agency_code for r in recipients], edxml.build_package(pkg)
        )

    def status_event(
        self, doc: Document, before: IncomingStatus | None, entry: HistoryEntry
    ) -> ev.IncomingStatusChanged:
        assert doc.incoming_status is not None
        return ev.IncomingStatusChanged(
            document_id=doc.id,
            agency_code=doc.agency_code,
            sender_agency_code=doc.sender_agency_code,
            number_notation=doc.number_notation,
            edxml_message_id=doc.edxml_message_id,
            from_status=enum_number(before or 0),
            to_status=enum_number(doc.incoming_status),
            edxml_status_code=doc.incoming_status.edxml_code,
            comment=entry.comment,
            actor_id=entry.actor_id,
        )

    def report_status(
        self,
        uow: UnitOfWork,
        doc: Document,
        comment: str,
        now: datetime,
        *,
        code: IncomingStatus | None = None,
    ) -> None:
        """Tell the sender how far its document got (only for electronic arrivals); `code`
        overrides the document's status (15/16 answer a recall)."""
        status_code = code or doc.incoming_status
        if not (
            doc.electronic and doc.sender_agency_code and status_code and doc.promulgation_date
        ):
            return
        status = edxml.Status(
            response_for=edxml.ResponseFor(
                organ_id=doc.sender_agency_code,
                code=doc.number_notation,
                promulgation_date=doc.promulgation_date,
                # The sender's DocumentId for arrivals from the national axis (the axis
                # matches a status to its document by it); the bus ignores it.
                document_id=doc.edxml_message_id,
            ),
            from_=self.organization(doc.agency_code),
            status_code=edxml.StatusCode(status_code.edxml_code),
            timestamp=now.astimezone(PROVINCE_TZ).replace(microsecond=0),
            description=comment,
        )
        self.deliver(uow, doc.agency_code, [doc.sender_agency_code], edxml.build_status(status))

    def delivery_failed(
        self,
        uow: UnitOfWork,
        repo: Repository,
        sender: str,
        number_notation: str,
        recipient: str,
        error: str,
        now: datetime,
    ) -> bool:
        """Mark a recipient of an outgoing document FAILED with the reason (Vietnamese, shown
        to the clerk, who can send again); False if the document or recipient is unknown."""
        doc = repo.find_outgoing(sender, number_notation)
        if doc is None or not doc.record_delivery_failure(recipient, error, now):
            return False
        doc.update_time = now
        repo.save(doc, doc.version)
        repo.add_history(
            doc.id, HistoryEntry(now, "", recipient, "delivery_failed", "", "FAILED", error)
        )
        return True

    # --- registering -----------------------------------------------------------------------

    def register(
        self,
        uow: UnitOfWork,
        repo: Repository,
        doc: Document,
        actor: str,
        now: datetime,
        request_key: str | None,
    ) -> Document:
        """Enter an arrived document in the agency's incoming book (status 01)."""
        arrival = repo.next_number(doc.agency_code, Book.INCOMING, now.astimezone(PROVINCE_TZ).year)
        number, notation = split_number_notation(doc.number_notation)
        stored = replace(
            doc,
            id=str(uuid.uuid4()),
            direction=Direction.INCOMING,
            outgoing_status=None,
            incoming_status=IncomingStatus.ARRIVED,
            number=number,
            notation=notation,
            recipients=[],
            arrival_number=arrival,
            arrival_time=now,
            created_by=actor,
            create_time=now,
            update_time=now,
            handler_user_id="",
            co_handler_user_ids=(),
            complete_time=None,
            version=1,
        )
        repo.add(stored, request_key)
        entry = HistoryEntry(
            now, actor, stored.agency_code, "register", "", "ARRIVED", f"số đến {arrival}"
        )
        repo.add_history(stored.id, entry)
        uow.emit(
            ev.DocumentReceived(document=event_document(stored), actor_id=actor), subject=stored.id
        )
        uow.emit(self.status_event(stored, None, entry), subject=stored.id)
        self.report_status(uow, stored, "", now)
        return stored

    # --- receiving (service_layer/receiving.py) -----------------------------------------

    def receive(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        now: datetime,
        arrival: Arrival | None = None,
    ) -> None:
        self.receiving.receive(uow, repo, delivery, now, arrival)
