"""Documents events → what the index holds: the rules of the search projection.

The index keeps one entry per document id in the documents service, from its first event
(a draft, an issued document, a registered incoming one). Each rule is one branch of
`apply()`; it is pure — the indexer feeds it and stores its result.

- Readers: a document is found by exactly those GetDocument shows it to (the documents
  service's rule, services/documents/domain/policy.py `can_read`), from the same facts:
  its holding agency; once it is SENT (or RECALLED after that), every recipient agency it
  was actually sent to — one listed but not (yet) sent to reads nothing; and anyone for a
  legal document (văn bản QPPL) of normal confidentiality while ISSUED or SENT. An incoming
  copy is read by the agency that registered it only, not by its sender. The index holds
  these agencies (`IndexedDocument.reader_agency_codes`); a role held in an agency above
  one of them counts too, applied to the caller when searching (`rights.caller_of`), as
  GetDocument applies it. Drafts are found by their own agency, as GetDocument shows them.
- Version: the event's offset in its partition. All events of a document share a key, hence
  a partition, so the offset grows with every change of that document, in a live run and in
  a replay alike: a redelivered or late event never replaces a newer entry.
- Recall: the entry stays, marked status "recalled" (an archive keeps what was issued, and a
  clerk must still find a recalled decision by its number); the agencies it was sent to keep
  reading it, as GetDocument lets them; a legal document stops being public. Their own
  incoming copies are marked recalled (13).
- Cancelled drafts stay, marked "cancelled" (GetDocument still shows them to their agency).
- Confidential documents are indexed with their confidentiality; their events carry no
  subject, summary or files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
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

PRIORITY = {
    pb.PRIORITY_UNSPECIFIED: "normal",
    pb.PRIORITY_NORMAL: "normal",
    pb.PRIORITY_URGENT: "urgent",
    pb.PRIORITY_VERY_URGENT: "very_urgent",
    pb.PRIORITY_FLASH: "flash",
}
VN = timezone(timedelta(hours=7))  # an arrival date is the day in Vietnam

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
    searchable: bool = False  # drafted, issued or registered: in the index
    offset: int = -1  # the last event applied (its partition offset)
    attachments: dict[str, str] = field(default_factory=dict)  # attachment id -> text
    delivered: tuple[str, ...] = ()  # recipient agencies it was sent to (outgoing)

    def indexed(self) -> IndexedDocument:
        body = "\n\n".join(t for _, t in sorted(self.attachments.items()) if t)
        return dataclasses.replace(self.doc, body_text=body, version=self.offset)

    # Stored as JSON in the state store.
    def to_json(self) -> str:
        d = dataclasses.asdict(self.doc)
        d["issued_date"] = self.doc.issued_date.isoformat() if self.doc.issued_date else None
        d["updated_time"] = self.doc.updated_time.isoformat() if self.doc.updated_time else None
        d["arrival_date"] = self.doc.arrival_date.isoformat() if self.doc.arrival_date else None
        d.pop("body_text")
        return json.dumps(
            {
                "doc": d,
                "searchable": self.searchable,
                "offset": self.offset,
                "delivered": list(self.delivered),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str, attachments: dict[str, str]) -> DocState:
        raw = json.loads(text)
        d: dict[str, Any] = raw["doc"]
        d["issued_date"] = date.fromisoformat(d["issued_date"]) if d["issued_date"] else None
        d["updated_time"] = datetime.fromisoformat(d["updated_time"]) if d["updated_time"] else None
        # Absent in a state stored before these fields: the defaults (the next event sets them).
        d["arrival_date"] = date.fromisoformat(d["arrival_date"]) if d.get("arrival_date") else None
        d["recipient_agency_codes"] = tuple(d["recipient_agency_codes"])
        if d.get("reader_agency_codes") is not None:  # absent in a state stored before readers
            d["reader_agency_codes"] = tuple(d["reader_agency_codes"])
        d["hidden_by"] = tuple(d.get("hidden_by", ()))
        return cls(
            IndexedDocument(**d),
            raw["searchable"],
            raw["offset"],
            attachments,
            tuple(raw.get("delivered", ())),
        )


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
        issued_date=issued,
        updated_time=at,
        direction="incoming" if incoming else "outgoing",
        priority=PRIORITY.get(m.priority, "normal"),
        arrival_date=(
            m.arrival_time.ToDatetime(tzinfo=UTC).astimezone(VN).date()
            if incoming and m.HasField("arrival_time")
            else None
        ),
    )


def sent_to(m: pb.Document) -> tuple[str, ...]:
    """The recipient agencies an outgoing Document shows as sent to (a send time set)."""
    if m.direction == pb.DIRECTION_INCOMING:
        return ()
    return tuple(
        dict.fromkeys(
            r.agency_code for r in m.recipients if r.agency_code and r.HasField("send_time")
        )
    )


# Outgoing statuses in which recipients it was sent to read it, and in which a legal
# document is public (policy.can_read / policy.is_public).
RECIPIENTS_READ = frozenset({"sent", "recalled"})
PUBLISHED = frozenset({"issued", "sent"})
# Statuses of an outgoing document past its draft: a draft event cannot follow them.
ISSUED = frozenset({"issued", "sent", "recalled"})


# A reader key only an agency's own officials match (rights.caller_of): its drafts, its
# incoming copies, what was sent to it. A bare agency code is matched by its officials and
# by those of the agencies above it: only what the agency issued.
OWN = "own:"


def with_readers(s: DocState) -> DocState:
    """Set the document's readers and public flag from its facts (the module's first rule)."""
    d = s.doc
    readers: dict[str, None] = {}
    if d.agency_code:
        readers[OWN + d.agency_code] = None
        outgoing = d.sender_agency_code == d.agency_code  # from_document's convention
        if outgoing and d.status in ISSUED:  # an agency above reads what its subordinate issued
            readers[d.agency_code] = None
    if d.status in RECIPIENTS_READ:
        readers.update(dict.fromkeys(OWN + code for code in s.delivered if code))
    public = d.doc_type in LEGAL_TYPES and d.confidentiality == "normal" and d.status in PUBLISHED
    s.doc = dataclasses.replace(d, reader_agency_codes=tuple(readers), public=public)
    return s


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
        with_readers(s)
        return s, ("upsert" if s.searchable else "none")

    match payload:
        case ev.DocumentDrafted(document=m) if m.direction == pb.DIRECTION_INCOMING:
            # UpdateDocument of an incoming document (its registration details) emits it.
            if state is None:
                return None, "none"
            state.doc = dataclasses.replace(from_document(m, at), recipient_agency_codes=())
            state.offset = offset
            return with_readers(state), ("upsert" if state.searchable else "none")
        case ev.DocumentDrafted(document=m):
            if state is not None and state.doc.status in ISSUED:
                return state, "none"  # a draft event after issue would be a bug upstream
            s = state or DocState(from_document(m, at))
            s.doc = from_document(m, at)
            s.delivered = ()
            s.searchable = True
            s.offset = offset
            return with_readers(s), "upsert"
        case ev.DocumentIssued(document=m) | ev.DocumentReceived(document=m):
            s = state or DocState(from_document(m, at))
            s.doc = from_document(m, at)
            s.delivered = sent_to(m)
            s.searchable = True
            s.offset = offset
            return with_readers(s), "upsert"
        case ev.AttachmentAdded(attachment=a):
            s = state or DocState(IndexedDocument(id=payload.document_id, updated_time=at))
            s.attachments[a.id or a.sha256] = attachment_text
            return changed(s)
        case _ if state is None:
            return None, "none"  # a status change of a document we never saw
        case ev.DocumentSent(recipients=rs, delivered_agency_codes=delivered):
            codes = dict.fromkeys((*state.doc.recipient_agency_codes, *(r.agency_code for r in rs)))
            codes.pop("", None)
            # Events written before delivered_agency_codes: the recipients of each send.
            now_sent = [r.agency_code for r in rs if r.agency_code and r.HasField("send_time")]
            state.delivered = tuple(delivered) or tuple(
                dict.fromkeys((*state.delivered, *now_sent))
            )
            return changed(state, status="sent", recipient_agency_codes=tuple(codes))
        case ev.DocumentRecalled(recipient_agency_codes=gone, delivered_agency_codes=delivered):
            state.delivered = tuple(delivered) or tuple(dict.fromkeys((*state.delivered, *gone)))
            return changed(state, status="recalled")
        case ev.OutgoingStatusChanged(to_status=to):
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
