"""Documents events → what the index holds: the rules of the search projection.

The index keeps one entry per document id in the documents service: outgoing documents from
the moment they are issued, incoming ones from the moment they are registered. Drafts are
remembered (their attachments arrive before issue) but not searchable. Each rule is one
branch of `apply()`; it is pure — the indexer feeds it and stores its result.

- Version: the event's offset in its partition. All events of a document share a key, hence
  a partition, so the offset grows with every change of that document, in a live run and in
  a replay alike: a redelivered or late event never replaces a newer entry.
- Recall: the entry stays, marked status "recalled" (an archive keeps what was issued, and a
  clerk must still find a recalled decision by its number); the agencies it was recalled
  from lose sight of the sender's copy, their own incoming copy is marked recalled (13).
- Cancelled drafts are deleted (a no-op unless something was indexed).
- Confidential documents are indexed with their confidentiality, so the engine shows them
  only to a caller whose role allows it; their events carry no subject, summary or files.
- Legal documents (văn bản QPPL) are public once issued, as the documents service reads them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from google.protobuf.message import Message

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import events_pb2 as ev
from services.search.index import IndexedDocument

# The legal document types of Nghị định 30/2020 / Luật Ban hành VBQPPL, as the documents
# service codes them (services/documents/domain/document_types.py; copied, not imported:
# services share contracts, not code).
LEGAL_TYPES = frozenset({"NQ-QPPL", "QĐ-QPPL", "NĐ", "TT"})

CONFIDENTIALITY = {
    pb.CONFIDENTIALITY_UNSPECIFIED: "normal",
    pb.CONFIDENTIALITY_NORMAL: "normal",
    pb.CONFIDENTIALITY_CONFIDENTIAL: "confidential",
    pb.CONFIDENTIALITY_SECRET: "secret",
    pb.CONFIDENTIALITY_TOP_SECRET: "top_secret",
}

Action = Literal["upsert", "delete", "none"]


def outgoing_status(value: int) -> str:
    name = pb.OutgoingStatus.Name(value)  # type: ignore[arg-type]
    return name.removeprefix("OUTGOING_STATUS_").lower()


def incoming_status(value: int) -> str:
    name = pb.IncomingStatus.Name(value)  # type: ignore[arg-type]
    return name.removeprefix("INCOMING_STATUS_").lower()


@dataclass
class DocState:
    """What the indexer remembers of one document between events."""

    doc: IndexedDocument
    searchable: bool = False  # issued or registered: in the index
    offset: int = -1  # the last event applied (its partition offset)
    attachments: dict[str, str] = field(default_factory=dict)  # attachment id -> text

    def indexed(self) -> IndexedDocument:
        body = "\n\n".join(t for _, t in sorted(self.attachments.items()) if t)
        return dataclasses.replace(self.doc, body_text=body, version=self.offset)

    # Stored as JSON in the state store.
    def to_json(self) -> str:
        d = dataclasses.asdict(self.doc)
        d["issued_date"] = self.doc.issued_date.isoformat() if self.doc.issued_date else None
        d["updated_time"] = self.doc.updated_time.isoformat() if self.doc.updated_time else None
        d.pop("body_text")
        return json.dumps(
            {"doc": d, "searchable": self.searchable, "offset": self.offset}, ensure_ascii=False
        )

    @classmethod
    def from_json(cls, text: str, attachments: dict[str, str]) -> DocState:
        raw = json.loads(text)
        d: dict[str, Any] = raw["doc"]
        d["issued_date"] = date.fromisoformat(d["issued_date"]) if d["issued_date"] else None
        d["updated_time"] = datetime.fromisoformat(d["updated_time"]) if d["updated_time"] else None
        d["recipient_agency_codes"] = tuple(d["recipient_agency_codes"])
        return cls(IndexedDocument(**d), raw["searchable"], raw["offset"], attachments)


def from_document(m: pb.Document, at: datetime) -> IndexedDocument:
    """A Document as the events carry it → the index's fields (body text comes separately)."""
    incoming = m.direction == pb.DIRECTION_INCOMING
    issued = _date(m.promulgation_date)
    if issued is None and incoming and m.HasField("arrival_time"):
        issued = m.arrival_time.ToDatetime(tzinfo=UTC).date()
    confidentiality = CONFIDENTIALITY.get(m.confidentiality, "confidential")
    return IndexedDocument(
        id=m.id,
        number_notation=m.number_notation,
        subject=m.subject,
        summary=m.summary,
        doc_type=m.document_type_code,
        agency_code=m.agency_code,
        sender_agency_code=m.sender_agency_code if incoming else m.agency_code,
        recipient_agency_codes=()
        if incoming
        else tuple(r.agency_code for r in m.recipients if r.agency_code),
        signer_name=m.signer.full_name,
        status=(
            incoming_status(m.incoming_status) if incoming else outgoing_status(m.outgoing_status)
        ),
        confidentiality=confidentiality,
        public=(
            not incoming and m.document_type_code in LEGAL_TYPES and confidentiality == "normal"
        ),
        issued_date=issued,
        updated_time=at,
    )


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def apply(
    state: DocState | None, payload: Message, offset: int, at: datetime, attachment_text: str = ""
) -> tuple[DocState | None, Action]:
    """The new state of the document `payload` is about, and what the index must do.

    `attachment_text` is the extracted text when `payload` is an AttachmentAdded.
    """
    if state is not None and offset <= state.offset:
        return state, "none"  # already applied (redelivery)

    def changed(s: DocState, **fields: Any) -> tuple[DocState, Action]:
        s.doc = dataclasses.replace(s.doc, updated_time=at, **fields)
        s.offset = offset
        return s, ("upsert" if s.searchable else "none")

    match payload:
        case ev.DocumentDrafted(document=m):
            if state is not None and state.searchable:
                return state, "none"  # a draft event after issue would be a bug upstream
            s = state or DocState(from_document(m, at))
            s.doc = from_document(m, at)
            s.offset = offset
            return s, "none"
        case ev.DocumentIssued(document=m) | ev.DocumentReceived(document=m):
            s = state or DocState(from_document(m, at))
            keep = s.doc.recipient_agency_codes
            s.doc = from_document(m, at)
            if not s.doc.recipient_agency_codes and keep:
                s.doc = dataclasses.replace(s.doc, recipient_agency_codes=keep)
            s.searchable = True
            s.offset = offset
            return s, "upsert"
        case ev.AttachmentAdded(attachment=a):
            s = state or DocState(IndexedDocument(id=payload.document_id, updated_time=at))
            s.attachments[a.id or a.sha256] = attachment_text
            return changed(s)
        case _ if state is None:
            return None, "none"  # a status change of a document we never saw issued
        case ev.DocumentSent(recipients=rs):
            codes = dict.fromkeys((*state.doc.recipient_agency_codes, *(r.agency_code for r in rs)))
            codes.pop("", None)
            return changed(state, status="sent", recipient_agency_codes=tuple(codes))
        case ev.DocumentRecalled(recipient_agency_codes=gone):
            left = tuple(c for c in state.doc.recipient_agency_codes if c not in set(gone))
            return changed(state, status="recalled", recipient_agency_codes=left)
        case ev.OutgoingStatusChanged(to_status=to):
            if to == pb.OUTGOING_STATUS_CANCELLED:
                state.offset = offset
                state.searchable = False
                return state, "delete"
            return changed(state, status=outgoing_status(to))
        case ev.IncomingStatusChanged(to_status=to):
            return changed(state, status=incoming_status(to))
    return state, "none"


# The event types the projection reads; others on the topic are skipped.
HANDLED = (
    ev.DocumentDrafted,
    ev.DocumentIssued,
    ev.DocumentReceived,
    ev.AttachmentAdded,
    ev.DocumentSent,
    ev.DocumentRecalled,
    ev.OutgoingStatusChanged,
    ev.IncomingStatusChanged,
)
