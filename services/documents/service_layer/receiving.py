"""Receiving edXML messages: each package registered once, or refused with 02 and its
reason; recalls, updates and replacements of earlier documents, answered 13, 15 or 16; status
messages recorded on the outgoing document. The answers go back through `Exchange`."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.blobs import StoredFile, safe_file_name
from lgsp.blobs.errors import AttachmentError
from lgsp.db import UnitOfWork
from lgsp.events import enum_number
from lgsp.inbox import PermanentError
from lgsp.workdays import PROVINCE_TZ
from services.documents import edxml
from services.documents.adapters.proto import attachment_to_proto, document_to_proto
from services.documents.adapters.repository import Repository
from services.documents.domain.arrival import (
    MAX_NUMBER_NOTATION,
    arrival_refusal_vi,
    same_document,
    signer_warning,
)
from services.documents.domain.document_types import document_type, document_type_by_name
from services.documents.domain.model import (
    Attachment,
    Direction,
    Document,
    HistoryEntry,
    IncomingStatus,
    Priority,
    Signer,
    SigningMode,
)
from services.documents.edxml.salvage import Salvaged, salvage
from services.documents.transport import Delivery

if TYPE_CHECKING:
    from services.documents.service_layer.exchange import Exchange

log = logging.getLogger("services.documents.exchange")


@dataclass(frozen=True)
class Arrival:
    """What the asynchronous part of receiving prepared before the unit of work: the parsed
    message, the files already in the attachment store (main text first) and the verdict on
    the main text's digital signature. `refusal` (Vietnamese) refuses the document with 02."""

    message: edxml.Package | edxml.Status | Salvaged
    files: tuple[tuple[edxml.Attachment, StoredFile], ...] = ()
    signed: bool = False
    signer_serial: str = ""
    refusal: str = ""
    # organizationIdentifier of the certificate that signed the main text ("" if unsigned).
    signer_agency_code: str = ""


def _competence(text: str) -> tuple[SigningMode, str]:
    """("KT. CHỦ TỊCH") → (DEPUTY, "CHỦ TỊCH")."""
    head, _, rest = text.strip().partition(" ")
    for mode in SigningMode:
        if mode.prefix and head.upper() == mode.prefix:
            return mode, rest.strip()
    return SigningMode.DIRECT, ""


def event_document(doc: Document) -> ev.Document:  # type: ignore[name-defined]
    m = document_to_proto(doc)
    if doc.confidential:
        m.subject = ""
        m.summary = ""
    return m


class Receiving:
    """The receiving side of one `Exchange` (its directory, its answers)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.agencies = exchange.agencies

    def refuse_unreadable(
        self, uow: UnitOfWork, delivery: Delivery, found: Salvaged, now: datetime
    ) -> None:
        """A package that fails the schema: status 02 with the reason to its sender, who is
        known (From/OrganId and DocumentId were read); nothing enters the incoming book."""
        on = found.promulgation_date or _date_in_id(found.document_id) or now.date()
        status = edxml.Status(
            response_for=edxml.ResponseFor(
                organ_id=found.sender,
                code=found.code or found.document_id,
                promulgation_date=on,
                document_id=found.document_id,
            ),
            from_=self.exchange.organization(delivery.to_agency_code),
            status_code=edxml.StatusCode.REFUSED,
            timestamp=now.astimezone(PROVINCE_TZ).replace(microsecond=0),
            description=found.reason_vi,
        )
        self.exchange.deliver(
            uow, delivery.to_agency_code, [found.sender], edxml.build_status(status)
        )
        log.warning(
            "edXML package %s from %s for %s refused as malformed (%s: %s); status 02 sent",
            found.document_id,
            found.sender,
            delivery.to_agency_code,
            found.error.field,
            found.error.reason,
        )

    def receive(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        now: datetime,
        arrival: Arrival | None = None,
    ) -> None:
        if self.agencies.get(delivery.to_agency_code) is None:
            log.warning(
                "exchange message %s for unknown agency %s ignored",
                delivery.message_id,
                delivery.to_agency_code,
            )
            return
        if arrival is None:
            arrival = Arrival(parse_delivery(delivery))
        message = arrival.message
        if isinstance(message, Salvaged):
            self.refuse_unreadable(uow, delivery, message, now)
            return
        if isinstance(message, edxml.Status):
            self._on_status(uow, repo, delivery, message, now)
            return
        kind = message.business.doc_type
        if kind == edxml.BusinessDocType.NEW:
            self._on_new(uow, repo, delivery, message, now, arrival=arrival)
        elif kind == edxml.BusinessDocType.RECALL:
            self._on_recall(uow, repo, delivery, message, now)
        elif kind == edxml.BusinessDocType.UPDATE:
            self._on_update(uow, repo, delivery, message, now)
        else:
            self._on_replace(uow, repo, delivery, message, now, arrival)

    def _incoming_from(self, delivery: Delivery, pkg: edxml.Package) -> Document:
        h = pkg.header
        legal = h.document_type.type == 1
        kind = document_type_by_name(h.document_type.type_name, legal=legal) or document_type("CV")
        assert kind is not None
        mode, on_behalf = _competence(h.signer_info.competence)
        return Document(
            id="",
            direction=Direction.INCOMING,
            agency_code=delivery.to_agency_code,
            type_code=kind.code,
            subject=h.subject,
            summary=h.content,
            created_by="",
            create_time=datetime.now(PROVINCE_TZ),
            update_time=datetime.now(PROVINCE_TZ),
            number_notation=str(h.code),
            signer=Signer(
                full_name=h.signer_info.full_name,
                position=h.signer_info.position,
                mode=mode,
                on_behalf_of=on_behalf,
            ),
            promulgation_place=h.promulgation_info.place,
            promulgation_date=h.promulgation_info.promulgation_date,
            due_date=h.due_date,
            priority=Priority(min(int(h.other_info.priority), 3) + 1),
            page_count=h.other_info.page_amount or 0,
            sender_agency_code=h.from_.organ_id,
            sender_agency_name=self._issuer_name(h.from_),
            sender_organization_in_charge=h.from_.organization_in_charge,
            electronic=True,
            edxml_message_id=delivery.message_id,
        )

    def _issuer_name(self, org: edxml.Organization) -> str:
        """The issuing body (QCVN 102:2016 From: the agency OrganId identifies, OrganName its
        name; OrganizationInCharge is the body above it). A code the province's directory
        holds (the province's, else the national axis's) is named as the directory names it,
        whatever the package says."""
        known = self.agencies.get(org.organ_id)
        outside = getattr(self.exchange.transport, "outside", None)  # the axis's directory
        listed = outside.name_of(org.organ_id) if outside is not None and not known else ""
        return (known.name if known else "") or listed or org.organ_name or org.organ_id

    def _already_registered(
        self, repo: Repository, delivery: Delivery, doc: Document
    ) -> Document | None:
        """The same document (sender, number and notation, promulgation date) in the book."""
        for earlier in repo.find_incoming(
            delivery.to_agency_code, doc.sender_agency_code, doc.number_notation
        ):
            if same_document(
                earlier, doc.sender_agency_code, doc.number_notation, doc.promulgation_date
            ):
                return earlier
        return None

    def _on_duplicate(
        self,
        uow: UnitOfWork,
        repo: Repository,
        earlier: Document,
        again: Document,
        delivery: Delivery,
        now: datetime,
    ) -> None:
        """A re-send under a new DocumentId (or the electronic copy of a document a clerk
        registered from paper): not registered again. The earlier entry's history records
        it, and the package is answered with where the document stands."""
        note = (
            f"Văn bản đã được vào sổ đến số {earlier.arrival_number}; "
            f"gói tin gửi lại {delivery.message_id} không vào sổ lần nữa."
        )
        repo.add_history(
            earlier.id,
            HistoryEntry(
                now,
                "",
                earlier.agency_code,
                "duplicate_arrival",
                earlier.status_name,
                earlier.status_name,
                note,
            ),
        )
        answer = replace(
            earlier,
            electronic=True,
            number_notation=again.number_notation,
            edxml_message_id=delivery.message_id,
        )
        self.exchange.report_status(uow, answer, note, now)
        log.info(
            "edXML package %s from %s is %s again (registered as %s); not registered twice",
            delivery.message_id,
            earlier.sender_agency_code,
            earlier.number_notation,
            earlier.id,
        )

    def _on_new(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        pkg: edxml.Package,
        now: datetime,
        related: str = "",
        arrival: Arrival | None = None,
    ) -> Document | None:
        key = f"edxml:{delivery.message_id}"
        if repo.get_by_request(delivery.to_agency_code, key) is not None:
            return None  # the same package again: registered once
        doc = self._incoming_from(delivery, pkg)
        if related:
            doc.related_document_id = related
        # A replacement may keep the replaced document's number: only a new one is matched.
        if pkg.business.doc_type == edxml.BusinessDocType.NEW and (
            earlier := self._already_registered(repo, delivery, doc)
        ):
            self._on_duplicate(uow, repo, earlier, doc, delivery, now)
            return None
        refusal = arrival.refusal if arrival is not None else ""
        refusal = refusal or arrival_refusal_vi(doc, now.astimezone(PROVINCE_TZ).date())
        if refusal:
            self._refuse_at_the_door(uow, repo, doc, refusal, now, key)
            return None
        doc.digitally_signed = arrival is not None and arrival.signed
        doc.signer_agency_code = arrival.signer_agency_code if arrival else ""
        warning = signer_warning(doc.sender_agency_code, doc.signer_agency_code)
        if warning is not None:
            doc.warnings = (*doc.warnings, warning)
        stored = self.exchange.register(uow, repo, doc, "", now, key)
        for i, (file, kept) in enumerate(arrival.files if arrival else ()):
            try:
                name = safe_file_name(file.attachment_name)
            except AttachmentError:
                name = f"file{i + 1}"
            row = Attachment(
                id=str(uuid.uuid4()),
                document_id=stored.id,
                file_name=name,
                content_type=kept.content_type,
                size_bytes=kept.size,
                sha256=kept.sha256,
                uploaded_by="",
                create_time=now,
                main=i == 0,
                version=1 if i == 0 else 0,
                digitally_signed=i == 0 and stored.digitally_signed,
                signer_serial=arrival.signer_serial if i == 0 and arrival else "",
            )
            repo.add_attachment(row)
            uow.emit(
                ev.AttachmentAdded(document_id=stored.id, attachment=attachment_to_proto(row)),
                subject=stored.id,
            )
        return stored

    def _refuse_at_the_door(
        self,
        uow: UnitOfWork,
        repo: Repository,
        doc: Document,
        reason: str,
        now: datetime,
        key: str,
    ) -> None:
        """An electronic arrival that fails its checks (its digital signature, its files) is
        refused (02) without an entry in the incoming book; the reason goes to the sender."""
        stored = replace(
            doc,
            id=str(uuid.uuid4()),
            number_notation=doc.number_notation[:MAX_NUMBER_NOTATION],  # the column's width
            incoming_status=IncomingStatus.ARRIVED,
            arrival_time=now,
            create_time=now,
            update_time=now,
            version=1,
        )
        entry = stored.refuse("", now, reason)
        repo.add(stored, key)
        repo.add_history(stored.id, entry)
        uow.emit(ev.DocumentReceived(document=event_document(stored)), subject=stored.id)
        uow.emit(self.exchange.status_event(stored, None, entry), subject=stored.id)
        self.exchange.report_status(uow, stored, reason, now)
        log.warning(
            "edXML package %s from %s refused: %s",
            doc.edxml_message_id,
            doc.sender_agency_code,
            reason,
        )

    def _earlier(self, repo: Repository, delivery: Delivery, code: str) -> list[Document]:
        return repo.find_incoming(delivery.to_agency_code, delivery.from_agency_code, code)

    def _close_recalled(
        self,
        uow: UnitOfWork,
        repo: Repository,
        doc: Document,
        reason: str,
        now: datetime,
        reply: IncomingStatus | None = None,
    ) -> None:
        """Close an open document the sender took back, and tell it (13, or `reply`: 15
        agrees to a recall). A finished one cannot be undone: a recall of it is refused
        with 16 and the reason, and its history shows the recall to the clerk."""
        before = doc.incoming_status
        entry = doc.mark_recalled(now, reason)
        if entry is None:
            if reply is not None and doc.incoming_status == IncomingStatus.DONE:
                self._refuse_recall(uow, repo, doc, reason, now)
            return
        repo.save(doc, doc.version)
        repo.add_history(doc.id, entry)
        uow.emit(self.exchange.status_event(doc, before, entry), subject=doc.id)
        self.exchange.report_status(uow, doc, reason, now, code=reply)

    def _refuse_recall(
        self, uow: UnitOfWork, repo: Repository, doc: Document, reason: str, now: datetime
    ) -> None:
        done = doc.complete_time.astimezone(PROVINCE_TZ) if doc.complete_time else None
        answer = (
            "Văn bản đã được xử lý xong"
            + (f" ngày {done:%d/%m/%Y}" if done else "")
            + "; không thể thu hồi."
        )
        repo.add_history(
            doc.id,
            HistoryEntry(
                now, "", doc.agency_code, "recall_refused", "DONE", "DONE", f"{reason} — {answer}"
            ),
        )
        self.exchange.report_status(uow, doc, answer, now, code=IncomingStatus.RECALL_REFUSED)
        log.info(
            "recall of %s from %s refused: the document is done",
            doc.number_notation,
            doc.sender_agency_code,
        )

    def _on_recall(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        pkg: edxml.Package,
        now: datetime,
    ) -> None:
        found = self._earlier(repo, delivery, str(pkg.header.code))
        if not found:
            log.warning(
                "recall of unknown document %s from %s", pkg.header.code, delivery.from_agency_code
            )
        for doc in found:
            self._close_recalled(
                uow,
                repo,
                doc,
                pkg.business.reason or "Thu hồi văn bản",
                now,
                reply=IncomingStatus.RECALL_ACCEPTED,
            )

    def _on_update(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        pkg: edxml.Package,
        now: datetime,
    ) -> None:
        fresh = self._incoming_from(delivery, pkg)
        found = self._earlier(repo, delivery, str(pkg.header.code))
        if not found:  # nothing to update: take it as a new document
            self._on_new(uow, repo, delivery, pkg, now)
            return
        for doc in found:
            for name in (
                "subject",
                "summary",
                "due_date",
                "priority",
                "signer",
                "promulgation_place",
                "page_count",
                "type_code",
            ):
                setattr(doc, name, getattr(fresh, name))
            doc.update_time = now
            repo.save(doc, doc.version)
            repo.add_history(
                doc.id,
                HistoryEntry(
                    now,
                    "",
                    doc.agency_code,
                    "updated_by_sender",
                    doc.status_name,
                    doc.status_name,
                    pkg.business.reason,
                ),
            )
            uow.emit(ev.DocumentReceived(document=event_document(doc)), subject=doc.id)

    def _on_replace(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        pkg: edxml.Package,
        now: datetime,
        arrival: Arrival | None = None,
    ) -> None:
        codes = [
            rf.code for rf in pkg.header.response_for if rf.organ_id == delivery.from_agency_code
        ]
        old = [
            d
            for code in (codes or [str(pkg.header.code)])
            for d in self._earlier(repo, delivery, code)
        ]
        new = self._on_new(
            uow, repo, delivery, pkg, now, related=old[0].id if old else "", arrival=arrival
        )
        if new is None:
            return
        for doc in old:
            self._close_recalled(
                uow, repo, doc, f"Được thay thế bởi văn bản số {new.number_notation}", now
            )

    def _on_status(
        self,
        uow: UnitOfWork,
        repo: Repository,
        delivery: Delivery,
        status: edxml.Status,
        now: datetime,
    ) -> None:
        # By number and year: a number names one document of the agency's book of a year.
        doc = repo.find_outgoing(
            delivery.to_agency_code,
            status.response_for.code,
            status.response_for.promulgation_date.year,
        )
        if doc is None:
            log.warning(
                "status %s for unknown document %s", status.status_code, status.response_for.code
            )
            return
        code = IncomingStatus(int(status.status_code))
        if not doc.record_recipient_status(status.from_.organ_id, code, now):
            log.warning(
                "status from %s, not a recipient of %s", status.from_.organ_id, doc.number_notation
            )
            return
        doc.update_time = now
        repo.save(doc, doc.version)
        repo.add_history(
            doc.id,
            HistoryEntry(
                now,
                "",
                status.from_.organ_id,
                f"recipient_status_{code.edxml_code}",
                "",
                code.name,
                status.description,
            ),
        )
        uow.emit(
            ev.RecipientStatusReported(
                document_id=doc.id,
                agency_code=doc.agency_code,
                recipient_agency_code=status.from_.organ_id,
                status=enum_number(code),
                edxml_status_code=code.edxml_code,
                comment=status.description,
            ),
            subject=doc.id,
        )


def parse_delivery(delivery: Delivery) -> edxml.Package | edxml.Status | Salvaged:
    """The edXML message of a delivery. A package that fails the schema but whose sender and
    DocumentId can be read comes back as Salvaged (answered with 02); unreadable bytes are a
    PermanentError (→ DLQ)."""
    try:
        return edxml.parse(delivery.edxml)
    except edxml.EdxmlError as e:
        found = salvage(delivery.edxml, e)
        if found is None:
            raise PermanentError(f"edXML message {delivery.message_id} refused: {e}") from e
        return found


def _date_in_id(document_id: str) -> date | None:
    """The date of a conventional DocumentId "<OrganId>,<YYYY/MM/DD>,<number>"."""
    parts = document_id.split(",")
    if len(parts) < 3:
        return None
    try:
        return datetime.strptime(parts[1].strip(), "%Y/%m/%d").date()
    except ValueError:
        return None
