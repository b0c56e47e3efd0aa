"""Domain objects ↔ lgsp.api.documents.v1 messages (the wire and the stored `body`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, overload

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.events import enum_number
from services.documents.domain.delegation import Delegation
from services.documents.domain.errors import InvalidField
from services.documents.domain.model import (
    ArrivalWarning,
    Attachment,
    Confidentiality,
    DeliveryStatus,
    Direction,
    DirectiveTask,
    Document,
    HistoryEntry,
    IncomingStatus,
    OutgoingStatus,
    Priority,
    Recipient,
    RecipientKind,
    Signer,
    SigningMode,
    TaskStatus,
)


@overload
def ts(value: datetime) -> Timestamp: ...


@overload
def ts(value: None) -> None: ...


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    t = Timestamp()
    t.FromDatetime(value.astimezone(UTC))
    return t


def from_ts(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=UTC)


def parse_date(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, "a date as YYYY-MM-DD") from None


def fmt_date(value: date | None) -> str:
    return value.isoformat() if value else ""


def _enum(cls, value: int, default=None):
    if not value:
        return default
    try:
        return cls(value)
    except ValueError:
        return default


def signer_to_proto(s: Signer) -> pb.Signer:
    return pb.Signer(
        user_id=s.user_id,
        full_name=s.full_name,
        position=s.position,
        mode=enum_number(s.mode),
        on_behalf_of=s.on_behalf_of,
    )


def signer_from_proto(m: pb.Signer, field: str = "signer") -> Signer:
    if m.mode and m.mode not in SigningMode._value2member_map_:
        raise InvalidField(f"{field}.mode", "unknown signing mode")
    return Signer(
        m.user_id,
        m.full_name.strip(),
        m.position.strip(),
        _enum(SigningMode, m.mode),
        m.on_behalf_of.strip(),
    )


def recipient_to_proto(r: Recipient) -> pb.Recipient:
    m = pb.Recipient(
        agency_code=r.agency_code,
        name=r.name,
        kind=enum_number(r.kind),
        delivery_status=enum_number(r.delivery_status),
        last_incoming_status=enum_number(r.last_incoming_status),
        error=r.error,
    )
    if r.send_time:
        m.send_time.CopyFrom(ts(r.send_time))
    if r.status_time:
        m.status_time.CopyFrom(ts(r.status_time))
    return m


def recipient_from_proto(m: pb.Recipient) -> Recipient:
    return Recipient(
        agency_code=m.agency_code.strip(),
        name=m.name.strip(),
        kind=_enum(RecipientKind, m.kind, RecipientKind.MAIN),
        delivery_status=_enum(DeliveryStatus, m.delivery_status, DeliveryStatus.PENDING),
        last_incoming_status=_enum(IncomingStatus, m.last_incoming_status),
        send_time=m.send_time.ToDatetime(tzinfo=UTC) if m.HasField("send_time") else None,
        status_time=m.status_time.ToDatetime(tzinfo=UTC) if m.HasField("status_time") else None,
        error=m.error,
    )


def document_to_proto(d: Document) -> pb.Document:
    m = pb.Document(
        id=d.id,
        direction=enum_number(d.direction),
        agency_code=d.agency_code,
        outgoing_status=enum_number(d.outgoing_status),
        incoming_status=enum_number(d.incoming_status),
        document_type_code=d.type_code,
        number=d.number,
        notation=d.notation,
        number_notation=d.number_notation,
        subject=d.subject,
        signer=signer_to_proto(d.signer),
        promulgation_place=d.promulgation_place,
        promulgation_date=fmt_date(d.promulgation_date),
        due_date=fmt_date(d.due_date),
        priority=enum_number(d.priority),
        confidentiality=enum_number(d.confidentiality),
        recipients=[recipient_to_proto(r) for r in d.recipients],
        sender_agency_code=d.sender_agency_code,
        sender_agency_name=d.sender_agency_name,
        arrival_number=d.arrival_number,
        handler_user_id=d.handler_user_id,
        co_handler_user_ids=list(d.co_handler_user_ids),
        electronic=d.electronic,
        edxml_message_id=d.edxml_message_id,
        related_document_id=d.related_document_id,
        page_count=d.page_count,
        created_by=d.created_by,
        etag=str(d.version),
        summary=d.summary,
        drafting_unit=d.drafting_unit,
        digitally_signed=d.digitally_signed,
        waiting_on_user_id=d.waiting_on_user_id,
        draft_version=d.draft_version,
        result_note=d.result_note,
        sender_organization_in_charge=d.sender_organization_in_charge,
        signer_agency_code=d.signer_agency_code,
        warnings=[pb.DocumentWarning(code=w.code, message=w.message) for w in d.warnings],
    )
    for name in ("arrival_time", "create_time", "update_time", "complete_time"):
        value = getattr(d, name)
        if value is not None:
            getattr(m, name).CopyFrom(ts(value))
    return m


def document_from_proto(m: pb.Document) -> Document:
    """A stored body back to the domain (trusted: it was written by document_to_proto)."""
    return Document(
        id=m.id,
        direction=Direction(m.direction),
        agency_code=m.agency_code,
        type_code=m.document_type_code,
        subject=m.subject,
        created_by=m.created_by,
        create_time=from_ts(m, "create_time") or datetime.now(UTC),
        update_time=from_ts(m, "update_time") or datetime.now(UTC),
        outgoing_status=_enum(OutgoingStatus, m.outgoing_status),
        incoming_status=_enum(IncomingStatus, m.incoming_status),
        summary=m.summary,
        number=m.number,
        notation=m.notation,
        number_notation=m.number_notation,
        signer=signer_from_proto(m.signer),
        promulgation_place=m.promulgation_place,
        promulgation_date=parse_date(m.promulgation_date, "promulgation_date"),
        due_date=parse_date(m.due_date, "due_date"),
        priority=_enum(Priority, m.priority, Priority.NORMAL),
        confidentiality=_enum(Confidentiality, m.confidentiality, Confidentiality.NORMAL),
        recipients=[recipient_from_proto(r) for r in m.recipients],
        drafting_unit=m.drafting_unit,
        digitally_signed=m.digitally_signed,
        waiting_on_user_id=m.waiting_on_user_id,
        draft_version=m.draft_version,
        page_count=m.page_count,
        sender_agency_code=m.sender_agency_code,
        sender_agency_name=m.sender_agency_name,
        arrival_number=m.arrival_number,
        arrival_time=from_ts(m, "arrival_time"),
        handler_user_id=m.handler_user_id,
        co_handler_user_ids=tuple(m.co_handler_user_ids),
        complete_time=from_ts(m, "complete_time"),
        result_note=m.result_note,
        electronic=m.electronic,
        edxml_message_id=m.edxml_message_id,
        related_document_id=m.related_document_id,
        sender_organization_in_charge=m.sender_organization_in_charge,
        signer_agency_code=m.signer_agency_code,
        warnings=tuple(ArrivalWarning(w.code, w.message) for w in m.warnings),
        version=int(m.etag or 1),
    )


def task_to_proto(t: DirectiveTask, today: date | None = None) -> pb.DirectiveTask:
    m = pb.DirectiveTask(
        id=t.id,
        document_id=t.document_id,
        description=t.description,
        assignee_agency_code=t.assignee_agency_code,
        assignee_user_id=t.assignee_user_id,
        cooperating_agency_codes=list(t.cooperating_agency_codes),
        due_date=fmt_date(t.due_date),
        status=enum_number(t.status),
        progress_note=t.progress_note,
        etag=str(t.version),
        directing_agency_code=t.directing_agency_code,
        overdue=t.overdue(today) if today else False,
    )
    m.create_time.CopyFrom(ts(t.create_time))
    if t.complete_time:
        m.complete_time.CopyFrom(ts(t.complete_time))
    return m


def task_from_proto(m: pb.DirectiveTask, created_by: str = "") -> DirectiveTask:
    return DirectiveTask(
        id=m.id,
        document_id=m.document_id,
        directing_agency_code=m.directing_agency_code,
        description=m.description,
        assignee_agency_code=m.assignee_agency_code,
        created_by=created_by,
        create_time=m.create_time.ToDatetime(tzinfo=UTC),
        assignee_user_id=m.assignee_user_id,
        cooperating_agency_codes=tuple(m.cooperating_agency_codes),
        due_date=parse_date(m.due_date, "due_date"),
        status=TaskStatus(m.status),
        progress_note=m.progress_note,
        complete_time=m.complete_time.ToDatetime(tzinfo=UTC)
        if m.HasField("complete_time")
        else None,
        version=int(m.etag or 1),
    )


def history_to_proto(h: HistoryEntry) -> pb.HistoryEntry:
    m = pb.HistoryEntry(
        actor_id=h.actor_id,
        agency_code=h.agency_code,
        action=h.action,
        from_status=h.from_status,
        to_status=h.to_status,
        comment=h.comment,
        delegation_id=h.delegation_id,
    )
    m.time.CopyFrom(ts(h.time))
    return m


def delegation_to_proto(d: Delegation, now: datetime | None = None) -> pb.Delegation:
    """The delegation as the API shows it; `active` as of `now` (False without it)."""
    m = pb.Delegation(
        id=d.id,
        agency_code=d.agency_code,
        delegate_user_id=d.delegate_user_id,
        delegate_agency_code=d.delegate_agency_code,
        scopes=sorted(enum_number(s) for s in d.scopes),
        granted_by=d.granted_by,
        note=d.note,
        revoked_by=d.revoked_by,
        revoke_reason=d.revoke_reason,
        active=now is not None and d.active(now),
    )
    m.valid_from.CopyFrom(ts(d.valid_from))
    m.valid_until.CopyFrom(ts(d.valid_until))
    m.grant_time.CopyFrom(ts(d.grant_time))
    if d.revoke_time is not None:
        m.revoke_time.CopyFrom(ts(d.revoke_time))
    return m


def attachment_to_proto(a: Attachment) -> pb.Attachment:
    m = pb.Attachment(
        id=a.id,
        file_name=a.file_name,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        main=a.main,
        digitally_signed=a.digitally_signed,
        uploaded_by=a.uploaded_by,
        version=a.version,
        signer_certificate_serial=a.signer_serial,
        replaces_attachment_id=a.replaces_id,
    )
    m.upload_time.CopyFrom(ts(a.create_time))
    return m
