"""Documents and directive tasks, their statuses and the steps between them.

Outgoing (văn bản đi):  DRAFT → IN_REVIEW → AWAITING_SIGNATURE → SIGNED → ISSUED → SENT
                        (IN_REVIEW → DRAFT when the reviewer returns it; SENT → RECALLED).
Incoming (văn bản đến): ARRIVED(01) → ACCEPTED(03) → ASSIGNED(04) → IN_PROGRESS(05) → DONE(06)
                        ARRIVED → REFUSED(02); any open status → RECALLED(13) by the sender.

Each step checks the status and records a HistoryEntry; the service layer checks roles
(policy.py), stores the result and emits the events. Enum values equal the proto's (and, for
IncomingStatus, the edXML status codes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from .errors import InvalidField, InvalidTransition


class Direction(enum.IntEnum):
    OUTGOING = 1
    INCOMING = 2


class OutgoingStatus(enum.IntEnum):
    DRAFT = 1
    IN_REVIEW = 2
    AWAITING_SIGNATURE = 3
    SIGNED = 4
    ISSUED = 5
    SENT = 6
    RECALLED = 7
    CANCELLED = 8


class IncomingStatus(enum.IntEnum):
    """The values are the edXML status codes (01 … 06, 13, 15, 16). A document itself is
    never RECALL_ACCEPTED or RECALL_REFUSED: those are replies to a recall, kept as a
    recipient's last reported status on the sender's side."""

    ARRIVED = 1
    REFUSED = 2
    ACCEPTED = 3
    ASSIGNED = 4
    IN_PROGRESS = 5
    DONE = 6
    RECALLED = 13
    RECALL_ACCEPTED = 15  # đồng ý thu hồi
    RECALL_REFUSED = 16  # từ chối thu hồi

    @property
    def edxml_code(self) -> str:
        return f"{self.value:02d}"


OPEN_INCOMING = frozenset(
    {
        IncomingStatus.ARRIVED,
        IncomingStatus.ACCEPTED,
        IncomingStatus.ASSIGNED,
        IncomingStatus.IN_PROGRESS,
    }
)


class Priority(enum.IntEnum):
    NORMAL = 1
    URGENT = 2
    VERY_URGENT = 3
    FLASH = 4


class Confidentiality(enum.IntEnum):
    NORMAL = 1
    CONFIDENTIAL = 2  # Mật
    SECRET = 3  # Tối mật
    TOP_SECRET = 4  # Tuyệt mật


class SigningMode(enum.IntEnum):
    DIRECT = 1
    ON_BEHALF = 2  # TM.
    DEPUTY = 3  # KT.
    BY_ORDER = 4  # TL.
    BY_AUTHORISATION = 5  # TUQ.
    ACTING = 6  # Q.

    @property
    def prefix(self) -> str:
        """The abbreviation printed before the body or head signed for."""
        return _SIGNING_PREFIX[self]


_SIGNING_PREFIX = {
    SigningMode.DIRECT: "",
    SigningMode.ON_BEHALF: "TM.",
    SigningMode.DEPUTY: "KT.",
    SigningMode.BY_ORDER: "TL.",
    SigningMode.BY_AUTHORISATION: "TUQ.",
    SigningMode.ACTING: "Q.",
}


class RecipientKind(enum.IntEnum):
    MAIN = 1
    FOR_INFORMATION = 2
    ARCHIVE = 3  # "Lưu: VT": kept by the issuer, never sent


class DeliveryStatus(enum.IntEnum):
    PENDING = 1
    SENT = 2
    ACKNOWLEDGED = 3
    FAILED = 4
    PAPER = 5


class TaskStatus(enum.IntEnum):
    OPEN = 1
    IN_PROGRESS = 2
    DONE = 3
    CANCELLED = 4


@dataclass(frozen=True)
class Signer:
    user_id: str = ""
    full_name: str = ""
    position: str = ""
    mode: SigningMode | None = None
    on_behalf_of: str = ""

    @property
    def competence(self) -> str:
        """edXML SignerInfo/Competence: "KT. CHỦ TỊCH", "TM. ỦY BAN NHÂN DÂN"; "" if direct."""
        if self.mode is None or self.mode == SigningMode.DIRECT:
            return ""
        return f"{self.mode.prefix} {self.on_behalf_of}".strip()

    def check(self) -> None:
        if not self.full_name.strip():
            raise InvalidField("signer.full_name", "the signer's name is required")
        if self.mode is None:
            raise InvalidField(
                "signer.mode", "the signing mode (TM., KT., TL., TUQ., Q.) is required"
            )
        if self.mode != SigningMode.DIRECT and not self.on_behalf_of.strip():
            raise InvalidField(
                "signer.on_behalf_of", f"{self.mode.prefix} needs the body or head signed for"
            )


@dataclass(frozen=True)
class Recipient:
    agency_code: str = ""
    name: str = ""
    kind: RecipientKind = RecipientKind.MAIN
    delivery_status: DeliveryStatus = DeliveryStatus.PENDING
    last_incoming_status: IncomingStatus | None = None
    send_time: datetime | None = None
    status_time: datetime | None = None
    error: str = ""

    @property
    def deliverable(self) -> bool:
        return self.kind != RecipientKind.ARCHIVE


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    actor_id: str
    agency_code: str
    action: str
    from_status: str = ""
    to_status: str = ""
    comment: str = ""
    # The delegation (ủy quyền) the actor acted under; "" when by the actor's own role.
    delegation_id: str = ""


@dataclass(frozen=True)
class ArrivalWarning:
    """Something about an arrived document the clerk should check (it blocks nothing)."""

    code: str  # SIGNER_AGENCY_MISMATCH, …
    message: str  # Vietnamese, as shown to the clerk


@dataclass
class Document:
    """One outgoing or incoming document held by `agency_code`."""

    id: str
    direction: Direction
    agency_code: str
    type_code: str
    subject: str
    created_by: str
    create_time: datetime
    update_time: datetime
    outgoing_status: OutgoingStatus | None = None
    incoming_status: IncomingStatus | None = None
    summary: str = ""
    number: int = 0
    notation: str = ""
    number_notation: str = ""
    signer: Signer = field(default_factory=Signer)
    promulgation_place: str = ""
    promulgation_date: date | None = None
    due_date: date | None = None
    priority: Priority = Priority.NORMAL
    confidentiality: Confidentiality = Confidentiality.NORMAL
    recipients: list[Recipient] = field(default_factory=list)
    drafting_unit: str = ""
    digitally_signed: bool = False
    waiting_on_user_id: str = ""
    draft_version: int = 0
    page_count: int = 0
    # Incoming
    sender_agency_code: str = ""
    sender_agency_name: str = ""
    arrival_number: int = 0
    arrival_time: datetime | None = None
    handler_user_id: str = ""
    co_handler_user_ids: tuple[str, ...] = ()
    complete_time: datetime | None = None
    result_note: str = ""
    electronic: bool = False
    edxml_message_id: str = ""
    related_document_id: str = ""
    sender_organization_in_charge: str = ""
    signer_agency_code: str = ""
    warnings: tuple[ArrivalWarning, ...] = ()
    # Optimistic concurrency: the etag is this number.
    version: int = 1

    # --- facts -----------------------------------------------------------------------------

    @property
    def confidential(self) -> bool:
        """Mật, Tối mật, Tuyệt mật: never sent electronically, never indexed."""
        return self.confidentiality > Confidentiality.NORMAL

    @property
    def status_name(self) -> str:
        status = (
            self.outgoing_status if self.direction == Direction.OUTGOING else self.incoming_status
        )
        return status.name if status is not None else ""

    def overdue(self, today: date) -> bool:
        return (
            self.direction == Direction.INCOMING
            and self.incoming_status in OPEN_INCOMING
            and self.due_date is not None
            and self.due_date < today
        )

    # --- outgoing steps --------------------------------------------------------------------

    def _outgoing(self, *allowed: OutgoingStatus, action: str) -> OutgoingStatus:
        if self.direction != Direction.OUTGOING:
            raise InvalidTransition(f"{action}: only an outgoing document can do this")
        assert self.outgoing_status is not None
        if self.outgoing_status not in allowed:
            wanted = " or ".join(s.name for s in allowed)
            raise InvalidTransition(
                f"{action}: the document is {self.outgoing_status.name}, not {wanted}",
                subject=self.id,
            )
        return self.outgoing_status

    def _move(
        self,
        to: OutgoingStatus | IncomingStatus,
        action: str,
        actor: str,
        now: datetime,
        comment: str = "",
    ) -> HistoryEntry:
        before = self.status_name
        if isinstance(to, OutgoingStatus):
            self.outgoing_status = to
        else:
            self.incoming_status = to
        self.update_time = now
        return HistoryEntry(now, actor, self.agency_code, action, before, to.name, comment)

    def check_draft(self) -> None:
        if not self.subject.strip():
            raise InvalidField("document.subject", "the subject (trích yếu) is required")
        if len(self.subject) > 2000:
            raise InvalidField("document.subject", "at most 2000 characters")
        for i, r in enumerate(self.recipients):
            if r.kind != RecipientKind.ARCHIVE and not (r.agency_code or r.name):
                raise InvalidField(
                    f"document.recipients[{i}]", "a recipient needs a code or a name"
                )

    def submit_for_review(
        self, reviewer: str, actor: str, now: datetime, comment: str
    ) -> HistoryEntry:
        self._outgoing(OutgoingStatus.DRAFT, action="submit_for_review")
        if not reviewer:
            raise InvalidField("reviewer_user_id", "the reviewer is required")
        self.waiting_on_user_id = reviewer
        return self._move(OutgoingStatus.IN_REVIEW, "submit_for_review", actor, now, comment)

    def approve(self, signer_user_id: str, actor: str, now: datetime, comment: str) -> HistoryEntry:
        self._outgoing(OutgoingStatus.IN_REVIEW, action="review")
        if not signer_user_id:
            raise InvalidField("signer_user_id", "the signer is required to approve")
        self.waiting_on_user_id = signer_user_id
        return self._move(OutgoingStatus.AWAITING_SIGNATURE, "approve", actor, now, comment)

    def return_to_author(self, actor: str, now: datetime, comment: str) -> HistoryEntry:
        self._outgoing(OutgoingStatus.IN_REVIEW, action="review")
        if not comment.strip():
            raise InvalidField("comment", "say why the draft goes back to its author")
        self.waiting_on_user_id = self.created_by
        return self._move(OutgoingStatus.DRAFT, "return", actor, now, comment)

    def sign(self, signer: Signer, digitally: bool, actor: str, now: datetime) -> HistoryEntry:
        self._outgoing(OutgoingStatus.AWAITING_SIGNATURE, action="sign")
        if self.waiting_on_user_id and self.waiting_on_user_id != actor:
            raise InvalidTransition("sign: the document waits for another signer", subject=self.id)
        signer.check()
        self.signer = replace(signer, user_id=actor)
        self.digitally_signed = digitally
        self.waiting_on_user_id = ""
        return self._move(OutgoingStatus.SIGNED, "sign", actor, now, signer.competence)

    def issue(
        self,
        number: int,
        notation: str,
        number_notation: str,
        on: date,
        place: str,
        actor: str,
        now: datetime,
    ) -> HistoryEntry:
        self._outgoing(OutgoingStatus.SIGNED, action="issue")
        self.number, self.notation, self.number_notation = number, notation, number_notation
        self.promulgation_date = on
        if not self.promulgation_place:
            self.promulgation_place = place
        return self._move(OutgoingStatus.ISSUED, "issue", actor, now, number_notation)

    def recipients_to_send(self, agency_codes: list[str]) -> list[int]:
        """Indexes of the recipients a send reaches: those named, or every deliverable one
        not sent yet. Raises InvalidField for a code that is not among the recipients."""
        if agency_codes:
            index = {r.agency_code: i for i, r in enumerate(self.recipients) if r.agency_code}
            chosen = []
            for i, code in enumerate(agency_codes):
                if code not in index or not self.recipients[index[code]].deliverable:
                    raise InvalidField(
                        f"agency_codes[{i}]", f"{code} is not a recipient of the document"
                    )
                chosen.append(index[code])
            return chosen
        return [
            i
            for i, r in enumerate(self.recipients)
            if r.deliverable
            and r.delivery_status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
        ]

    def mark_sent(
        self, indexes: list[int], electronic: bool, actor: str, now: datetime
    ) -> HistoryEntry:
        before = self._outgoing(OutgoingStatus.ISSUED, OutgoingStatus.SENT, action="send")
        if electronic and self.confidential:
            raise InvalidTransition(
                "send: a confidential document (độ mật) is never sent electronically; "
                "send it on paper",
                subject=self.id,
            )
        if not indexes:
            raise InvalidTransition("send: no recipient is left to send to", subject=self.id)
        for i in indexes:
            r = self.recipients[i]
            paper = not electronic or not r.agency_code
            self.recipients[i] = replace(
                r,
                delivery_status=DeliveryStatus.PAPER if paper else DeliveryStatus.SENT,
                send_time=now,
                error="",
            )
            self.electronic = self.electronic or not paper
        entry = self._move(OutgoingStatus.SENT, "send", actor, now)
        return replace(entry, from_status=before.name)

    def recall(self, actor: str, now: datetime, reason: str) -> HistoryEntry:
        self._outgoing(OutgoingStatus.SENT, action="recall")
        if not reason.strip():
            raise InvalidField("reason", "say why the document is recalled")
        return self._move(OutgoingStatus.RECALLED, "recall", actor, now, reason)

    def record_delivery_failure(self, agency_code: str, error: str, at: datetime) -> bool:
        """The exchange could not deliver to a recipient (it can be sent again); False if
        it is not one of ours or has answered already."""
        for i, r in enumerate(self.recipients):
            if r.agency_code == agency_code and r.delivery_status == DeliveryStatus.SENT:
                self.recipients[i] = replace(
                    r, delivery_status=DeliveryStatus.FAILED, status_time=at, error=error
                )
                return True
        return False

    def record_recipient_status(
        self, agency_code: str, status: IncomingStatus, at: datetime
    ) -> bool:
        """A recipient reported an edXML status; False if it is not one of ours."""
        for i, r in enumerate(self.recipients):
            if r.agency_code == agency_code:
                self.recipients[i] = replace(
                    r,
                    delivery_status=DeliveryStatus.ACKNOWLEDGED,
                    last_incoming_status=status,
                    status_time=at,
                )
                return True
        return False

    # --- incoming steps --------------------------------------------------------------------

    def _incoming(self, *allowed: IncomingStatus, action: str) -> None:
        if self.direction != Direction.INCOMING:
            raise InvalidTransition(f"{action}: only an incoming document can do this")
        if self.incoming_status not in allowed:
            wanted = " or ".join(s.name for s in allowed)
            name = self.incoming_status.name if self.incoming_status else "?"
            raise InvalidTransition(
                f"{action}: the document is {name}, not {wanted}", subject=self.id
            )

    def accept(self, actor: str, now: datetime) -> HistoryEntry:
        self._incoming(IncomingStatus.ARRIVED, action="accept")
        return self._move(IncomingStatus.ACCEPTED, "accept", actor, now)

    def refuse(self, actor: str, now: datetime, reason: str) -> HistoryEntry:
        self._incoming(IncomingStatus.ARRIVED, action="refuse")
        if not reason.strip():
            raise InvalidField("reason", "say why the document is refused")
        self.result_note = reason
        return self._move(IncomingStatus.REFUSED, "refuse", actor, now, reason)

    def assign(
        self,
        handler: str,
        co_handlers: tuple[str, ...],
        due: date | None,
        actor: str,
        now: datetime,
        comment: str,
    ) -> HistoryEntry:
        # A leader may hand a document to someone else while it is being handled.
        self._incoming(
            IncomingStatus.ACCEPTED,
            IncomingStatus.ASSIGNED,
            IncomingStatus.IN_PROGRESS,
            action="assign",
        )
        if not handler:
            raise InvalidField("handler_user_id", "the official in charge is required")
        self.handler_user_id = handler
        self.co_handler_user_ids = tuple(
            dict.fromkeys(c for c in co_handlers if c and c != handler)
        )
        if due is not None:
            if self.promulgation_date is not None and due < self.promulgation_date:
                raise InvalidField(
                    "due_date",
                    f"{due.isoformat()} is before the promulgation date "
                    f"{self.promulgation_date.isoformat()}",
                )
            self.due_date = due
        self.waiting_on_user_id = handler
        return self._move(IncomingStatus.ASSIGNED, "assign", actor, now, comment)

    def start_processing(self, actor: str, now: datetime) -> HistoryEntry:
        self._incoming(IncomingStatus.ASSIGNED, action="start_processing")
        return self._move(IncomingStatus.IN_PROGRESS, "start_processing", actor, now)

    def complete(self, actor: str, now: datetime, note: str, reply_id: str) -> HistoryEntry:
        self._incoming(IncomingStatus.IN_PROGRESS, action="complete")
        self.complete_time = now
        self.result_note = note
        if reply_id:
            self.related_document_id = reply_id
        self.waiting_on_user_id = ""
        return self._move(IncomingStatus.DONE, "complete", actor, now, note)

    def mark_recalled(self, now: datetime, reason: str) -> HistoryEntry | None:
        """The sender recalled it (BussinessDocType 1); None if it was closed already."""
        if self.direction != Direction.INCOMING or self.incoming_status not in OPEN_INCOMING:
            return None
        self.waiting_on_user_id = ""
        return self._move(IncomingStatus.RECALLED, "recalled_by_sender", "", now, reason)


@dataclass
class DirectiveTask:
    """A task a document assigns (nhiệm vụ chỉ đạo), tracked to completion."""

    id: str
    document_id: str
    directing_agency_code: str
    description: str
    assignee_agency_code: str
    created_by: str
    create_time: datetime
    assignee_user_id: str = ""
    cooperating_agency_codes: tuple[str, ...] = ()
    due_date: date | None = None
    status: TaskStatus = TaskStatus.OPEN
    progress_note: str = ""
    complete_time: datetime | None = None
    version: int = 1

    def overdue(self, today: date) -> bool:
        return (
            self.status in (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)
            and self.due_date is not None
            and self.due_date < today
        )

    def report(self, status: TaskStatus, note: str, now: datetime) -> TaskStatus:
        """Move to `status` with a progress note; returns the status before."""
        allowed = {
            TaskStatus.OPEN: {TaskStatus.IN_PROGRESS, TaskStatus.DONE, TaskStatus.CANCELLED},
            TaskStatus.IN_PROGRESS: {TaskStatus.IN_PROGRESS, TaskStatus.DONE, TaskStatus.CANCELLED},
        }.get(self.status, set())
        if status not in allowed:
            raise InvalidTransition(
                f"the task is {self.status.name}; it cannot become {status.name}", subject=self.id
            )
        if status == TaskStatus.DONE and not note.strip():
            raise InvalidField("progress_note", "report the result when the task is done")
        before = self.status
        self.status = status
        self.progress_note = note or self.progress_note
        if status == TaskStatus.DONE:
            self.complete_time = now
        return before


@dataclass(frozen=True)
class Attachment:
    """A file of a document: its main text (one current version) or an appendix. The bytes
    are kept elsewhere under `sha256`; a replaced main text stays with current = False."""

    id: str
    document_id: str
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    create_time: datetime
    main: bool = False
    version: int = 0  # main text: 1, 2, …; appendices 0
    current: bool = True
    digitally_signed: bool = False
    signer_serial: str = ""
    replaces_id: str = ""


PDF = "application/pdf"


def check_attach(doc: Document, main: bool) -> None:
    """Files join an outgoing document until it is signed (the signed main text comes from
    SignDocument), and an incoming one while it is open (the clerk's scan of a paper copy)."""
    if doc.direction == Direction.OUTGOING:
        if doc.outgoing_status not in (
            OutgoingStatus.DRAFT,
            OutgoingStatus.IN_REVIEW,
            OutgoingStatus.AWAITING_SIGNATURE,
        ):
            raise InvalidTransition(
                f"attach: the document is {doc.status_name}; files are added before signing",
                subject=doc.id,
            )
    elif doc.incoming_status not in OPEN_INCOMING:
        raise InvalidTransition(
            f"attach: the incoming document is {doc.status_name}; it is closed", subject=doc.id
        )


def next_main_version(
    doc: Document, current_main: Attachment | None, **fields: object
) -> dict[str, object]:
    """Fields of a new main text that replaces `current_main` (if any)."""
    return {
        "main": True,
        "version": (current_main.version + 1) if current_main else 1,
        "replaces_id": current_main.id if current_main else "",
        **fields,
    }
