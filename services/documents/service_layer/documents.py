"""The documents use cases. Each public method is one unit of work: it checks the caller's
role (domain.policy), applies a domain step, stores the document with its history, and emits
the lgsp.documents.v1 events (and exchange messages) in the same transaction.

Methods are synchronous (SQLAlchemy sync sessions); the gRPC entrypoint runs them in a worker
thread. `caller` is the authenticated principal (lgsp.auth.Principal)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.db import UnitOfWork, utcnow
from services.documents.adapters.proto import document_to_proto, task_to_proto
from services.documents.adapters.repository import (
    DocumentFilter,
    Repository,
    TaskFilter,
    day_bounds,
)
from services.documents.domain import policy
from services.documents.domain.calendar import local_date
from services.documents.domain.document_types import document_type
from services.documents.domain.errors import InvalidField, InvalidTransition, NotVisible
from services.documents.domain.figures import Figures, compute_figures
from services.documents.domain.model import (
    Direction,
    DirectiveTask,
    Document,
    HistoryEntry,
    IncomingStatus,
    OutgoingStatus,
    Recipient,
    Signer,
    TaskStatus,
)
from services.documents.domain.numbering import IssuedNumber, book_for, notation
from services.documents.service_layer.exchange import Exchange
from services.documents.service_layer.ports import AgencyDirectory, NoSignatures, SignatureVerifier
from services.documents.transport import Transport

log = logging.getLogger("services.documents")

SOURCE = "documents"
# Fields of an outgoing draft UpdateDocument may change (update_mask paths).
DRAFT_FIELDS = frozenset(
    {
        "document_type_code",
        "subject",
        "summary",
        "signer",
        "promulgation_place",
        "due_date",
        "priority",
        "confidentiality",
        "recipients",
        "drafting_unit",
        "page_count",
        "related_document_id",
    }
)
INCOMING_FIELDS = frozenset(
    {
        "subject",
        "summary",
        "due_date",
        "priority",
        "page_count",
        "sender_agency_name",
        "document_type_code",
    }
)


def event_document(doc: Document) -> Any:
    """The document as events carry it: a confidential one without its subject and summary."""
    m = document_to_proto(doc)
    if doc.confidential:
        m.subject = ""
        m.summary = ""
    return m


class DocumentsApp:
    def __init__(
        self,
        engine: Engine,
        agencies: AgencyDirectory,
        transport: Transport,
        *,
        signatures: SignatureVerifier | None = None,
        clock: Callable[[], datetime] = utcnow,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.transport = transport
        self.signatures = signatures or NoSignatures()
        self.clock = clock
        self.after_commit = after_commit
        self.exchange = Exchange(agencies, transport)

    # --- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _uow(self) -> Iterator[tuple[UnitOfWork, Repository]]:
        with UnitOfWork(self.engine, source=SOURCE) as uow:
            yield uow, Repository(uow.session)
        self.after_commit()

    def _read(self) -> Any:
        return self.engine.connect()

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def today(self) -> date:
        return local_date(self.now())

    def _load(
        self, repo: Repository, caller: Any, document_id: str, etag: str | None = None
    ) -> Document:
        doc = repo.get(document_id) if document_id else None
        if doc is None or not policy.can_read(caller, doc, self.agencies):
            raise NotVisible(f"document {document_id} not found")
        if etag and etag != str(doc.version):
            from services.documents.domain.errors import StaleVersion

            raise StaleVersion("the document changed since it was read (stale etag); read it again")
        return doc

    def _store(
        self,
        uow: UnitOfWork,
        repo: Repository,
        doc: Document,
        entry: HistoryEntry,
        *events: Message,
    ) -> None:
        repo.save(doc, doc.version)
        repo.add_history(doc.id, entry)
        for e in events:
            uow.emit(e, subject=doc.id)

    def _check_agency(self, code: str, field: str) -> None:
        if not code:
            raise InvalidField(field, "the agency code is required")
        if self.agencies.get(code) is None:
            raise InvalidField(field, f"unknown agency {code}")

    def _check_recipients(
        self, recipients: Sequence[Recipient], prefix: str = "document.recipients"
    ) -> None:
        seen: set[str] = set()
        for i, r in enumerate(recipients):
            if r.agency_code:
                self._check_agency(r.agency_code, f"{prefix}[{i}].agency_code")
                if r.agency_code in seen:
                    raise InvalidField(
                        f"{prefix}[{i}].agency_code", f"{r.agency_code} is listed twice"
                    )
                seen.add(r.agency_code)

    def _status_changed(
        self, doc: Document, entry: HistoryEntry, before: OutgoingStatus, actor: str
    ) -> ev.OutgoingStatusChanged:
        assert doc.outgoing_status is not None
        return ev.OutgoingStatusChanged(
            document_id=doc.id,
            agency_code=doc.agency_code,
            from_status=int(before),
            to_status=int(doc.outgoing_status),
            next_user_id=doc.waiting_on_user_id,
            comment=entry.comment,
            actor_id=actor,
        )

    # --- outgoing --------------------------------------------------------------------------

    def create_draft(self, caller: Any, draft: Document, request_id: str = "") -> Document:
        policy.require(caller, "create_draft", draft.agency_code, self.agencies)
        self._check_agency(draft.agency_code, "document.agency_code")
        if document_type(draft.type_code) is None:
            raise InvalidField(
                "document.document_type_code", f"unknown document type {draft.type_code!r}"
            )
        draft.check_draft()
        self._check_recipients(draft.recipients)
        now = self.now()
        doc = replace(
            draft,
            id=str(uuid.uuid4()),
            direction=Direction.OUTGOING,
            outgoing_status=OutgoingStatus.DRAFT,
            incoming_status=None,
            created_by=caller.subject,
            create_time=now,
            update_time=now,
            number=0,
            notation="",
            number_notation="",
            promulgation_date=None,
            digitally_signed=False,
            waiting_on_user_id="",
            draft_version=1,
            electronic=False,
            recipients=[
                replace(r, delivery_status=r.delivery_status.PENDING, send_time=None)
                for r in draft.recipients
            ],
            version=1,
        )
        try:
            with self._uow() as (uow, repo):
                if request_id and (
                    earlier := repo.get_by_request(doc.agency_code, f"draft:{request_id}")
                ):
                    return earlier
                repo.add(doc, f"draft:{request_id}" if request_id else None)
                repo.add_version(doc, caller.subject, now)
                repo.add_history(
                    doc.id,
                    HistoryEntry(now, caller.subject, doc.agency_code, "create_draft", "", "DRAFT"),
                )
                uow.emit(
                    ev.DocumentDrafted(document=event_document(doc), actor_id=caller.subject),
                    subject=doc.id,
                )
                uow.commit()
        except IntegrityError:
            # The same request_id raced with itself: the first one won.
            with self._read() as conn:
                earlier = Repository(conn).get_by_request(doc.agency_code, f"draft:{request_id}")
            if earlier is None:
                raise
            return earlier
        return doc

    def update_document(
        self, caller: Any, document_id: str, etag: str, changes: Document, paths: Sequence[str]
    ) -> Document:
        if not paths:
            raise InvalidField("update_mask", "name the fields to change")
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            now = self.now()
            if doc.direction == Direction.OUTGOING:
                policy.require(caller, "update_draft", doc.agency_code, self.agencies)
                allowed = DRAFT_FIELDS
                if doc.outgoing_status != OutgoingStatus.DRAFT:
                    raise InvalidTransition(
                        "only a DRAFT can be changed; ask the reviewer to return it", subject=doc.id
                    )
            else:
                policy.require(caller, "update_incoming", doc.agency_code, self.agencies)
                allowed = INCOMING_FIELDS
                if doc.incoming_status not in (IncomingStatus.ARRIVED, IncomingStatus.ACCEPTED):
                    raise InvalidTransition(
                        "registration details can change only before assignment", subject=doc.id
                    )
            for path in paths:
                if path not in allowed:
                    raise InvalidField("update_mask", f"{path} cannot be changed here")
                setattr(doc, _attr(path), getattr(changes, _attr(path)))
            if "document_type_code" in paths and document_type(doc.type_code) is None:
                raise InvalidField(
                    "document.document_type_code", f"unknown document type {doc.type_code!r}"
                )
            if doc.direction == Direction.OUTGOING:
                doc.check_draft()
                self._check_recipients(doc.recipients)
                doc.draft_version += 1
            doc.update_time = now
            entry = HistoryEntry(
                now,
                caller.subject,
                doc.agency_code,
                "update",
                doc.status_name,
                doc.status_name,
                ",".join(paths),
            )
            self._store(
                uow,
                repo,
                doc,
                entry,
                ev.DocumentDrafted(document=event_document(doc), actor_id=caller.subject),
            )
            if doc.direction == Direction.OUTGOING:
                repo.add_version(doc, caller.subject, now)
            uow.commit()
        return doc

    def submit_for_review(
        self, caller: Any, document_id: str, etag: str, reviewer: str, comment: str
    ) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "submit_for_review", doc.agency_code, self.agencies)
            before = doc.outgoing_status
            entry = doc.submit_for_review(reviewer, caller.subject, self.now(), comment)
            self._store(
                uow, repo, doc, entry, self._status_changed(doc, entry, before, caller.subject)
            )  # type: ignore[arg-type]
            uow.commit()
        return doc

    def review(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        approve: bool,
        signer_user_id: str,
        comment: str,
    ) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "review", doc.agency_code, self.agencies)
            before = doc.outgoing_status
            now = self.now()
            entry = (
                doc.approve(signer_user_id, caller.subject, now, comment)
                if approve
                else doc.return_to_author(caller.subject, now, comment)
            )
            self._store(
                uow, repo, doc, entry, self._status_changed(doc, entry, before, caller.subject)
            )  # type: ignore[arg-type]
            uow.commit()
        return doc

    def sign(
        self, caller: Any, document_id: str, etag: str, signer: Signer, signed_attachment_id: str
    ) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "sign", doc.agency_code, self.agencies)
            if signer.user_id and signer.user_id != caller.subject:
                raise InvalidField("signer.user_id", "a signature is the caller's own")
            digital = bool(signed_attachment_id) and self.signatures.verify(
                doc.id, signed_attachment_id
            )
            if signed_attachment_id and not digital:
                raise InvalidField(
                    "signed_attachment_id",
                    "the attachment carries no valid signature of the signer",
                )
            before = doc.outgoing_status
            entry = doc.sign(signer, digital, caller.subject, self.now())
            self._store(
                uow, repo, doc, entry, self._status_changed(doc, entry, before, caller.subject)
            )  # type: ignore[arg-type]
            uow.commit()
        return doc

    def issue(
        self, caller: Any, document_id: str, etag: str, promulgation_date: date | None
    ) -> Document:
        """Give the document the next number of its agency's book for the year: the counter
        and the document change in one transaction, so a failed issue gives its number back."""
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "issue", doc.agency_code, self.agencies)
            if doc.outgoing_status != OutgoingStatus.SIGNED:
                doc.issue(
                    0, "", "", self.today(), "", caller.subject, self.now()
                )  # raises the precise refusal
            agency = self.agencies.get(doc.agency_code)
            kind = document_type(doc.type_code)
            if agency is None or kind is None:
                raise InvalidTransition(
                    "the issuing agency or the document type is no longer known", subject=doc.id
                )
            on = promulgation_date or self.today()
            if on.year != self.today().year and on > self.today():
                raise InvalidField("promulgation_date", "cannot be in a future year")
            text = notation(kind, agency.short_name, on.year, doc.drafting_unit)
            book = book_for(kind)
            number = repo.next_number(doc.agency_code, book, on.year)
            issued = IssuedNumber(book, on.year, number, text)
            entry = doc.issue(
                number,
                text,
                issued.number_notation,
                on,
                agency.place_name,
                caller.subject,
                self.now(),
            )
            self._store(
                uow,
                repo,
                doc,
                entry,
                ev.DocumentIssued(document=event_document(doc), actor_id=caller.subject),
            )
            uow.commit()
        return doc

    def send(
        self, caller: Any, document_id: str, etag: str, agency_codes: Sequence[str]
    ) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "send", doc.agency_code, self.agencies)
            if doc.outgoing_status not in (OutgoingStatus.ISSUED, OutgoingStatus.SENT):
                raise InvalidTransition(
                    f"send: the document is {doc.status_name}, not ISSUED", subject=doc.id
                )
            if doc.confidential:
                raise InvalidTransition(
                    "send: a confidential document (độ mật) is never sent electronically; "
                    "deliver it on paper",
                    subject=doc.id,
                )
            self._check_recipients(doc.recipients)
            indexes = doc.recipients_to_send(list(agency_codes))
            now = self.now()
            entry = doc.mark_sent(indexes, True, caller.subject, now)
            sent = [doc.recipients[i] for i in indexes]
            electronic = [r for r in sent if r.agency_code]
            if electronic:
                self.exchange.send_package(uow, doc, electronic, now)
            self._store(
                uow,
                repo,
                doc,
                entry,
                ev.DocumentSent(
                    document_id=doc.id,
                    agency_code=doc.agency_code,
                    number_notation=doc.number_notation,
                    recipients=[document_to_proto(doc).recipients[i] for i in indexes],
                    electronic=bool(electronic),
                    actor_id=caller.subject,
                ),
            )
            uow.commit()
        return doc

    def recall(self, caller: Any, document_id: str, etag: str, reason: str) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            policy.require(caller, "recall", doc.agency_code, self.agencies)
            now = self.now()
            entry = doc.recall(caller.subject, now, reason)
            recipients = [
                r
                for r in doc.recipients
                if r.agency_code
                and r.send_time is not None
                and r.delivery_status != r.delivery_status.PAPER
            ]
            if recipients:
                self.exchange.send_recall(uow, doc, recipients, reason, now)
            self._store(
                uow,
                repo,
                doc,
                entry,
                ev.DocumentRecalled(
                    document_id=doc.id,
                    agency_code=doc.agency_code,
                    number_notation=doc.number_notation,
                    recipient_agency_codes=[r.agency_code for r in recipients],
                    reason=reason,
                    actor_id=caller.subject,
                ),
            )
            uow.commit()
        return doc

    # --- incoming --------------------------------------------------------------------------

    def register_incoming(self, caller: Any, doc: Document, request_id: str = "") -> Document:
        """A clerk enters a document that arrived (on paper, by mail, by hand)."""
        policy.require(caller, "register_incoming", doc.agency_code, self.agencies)
        self._check_agency(doc.agency_code, "document.agency_code")
        if not doc.sender_agency_name.strip():
            raise InvalidField("document.sender_agency_name", "the sender's name is required")
        if not doc.number_notation.strip():
            raise InvalidField(
                "document.number_notation", "the sender's number and notation are required"
            )
        if document_type(doc.type_code) is None:
            raise InvalidField(
                "document.document_type_code", f"unknown document type {doc.type_code!r}"
            )
        if not doc.subject.strip():
            raise InvalidField("document.subject", "the subject (trích yếu) is required")
        with self._uow() as (uow, repo):
            if request_id and (earlier := repo.get_by_request(doc.agency_code, f"in:{request_id}")):
                return earlier
            stored = self.exchange.register(
                uow,
                repo,
                doc,
                caller.subject,
                self.now(),
                f"in:{request_id}" if request_id else None,
            )
            uow.commit()
        return stored

    def _incoming_step(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        action: str,
        step: Callable[[Document, datetime], HistoryEntry],
        extra: Callable[[Document], Message | None] = lambda d: None,
    ) -> Document:
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            if action == "handle":
                if doc.direction == Direction.INCOMING:
                    policy.require_handler(caller, doc, self.agencies)
                else:
                    policy.require(caller, "handle", doc.agency_code, self.agencies)
            else:
                policy.require(caller, action, doc.agency_code, self.agencies)
            now = self.now()
            before = doc.incoming_status
            entry = step(doc, now)
            events: list[Message] = []
            more = extra(doc)
            if more is not None:
                events.append(more)
            events.append(self.exchange.status_event(doc, before, entry))
            self._store(uow, repo, doc, entry, *events)
            self.exchange.report_status(uow, doc, entry.comment, now)
            uow.commit()
        return doc

    def accept(self, caller: Any, document_id: str, etag: str) -> Document:
        return self._incoming_step(
            caller, document_id, etag, "accept", lambda d, now: d.accept(caller.subject, now)
        )

    def refuse(self, caller: Any, document_id: str, etag: str, reason: str) -> Document:
        return self._incoming_step(
            caller,
            document_id,
            etag,
            "refuse",
            lambda d, now: d.refuse(caller.subject, now, reason),
        )

    def assign(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        handler: str,
        co_handlers: Sequence[str],
        due: date | None,
        comment: str,
    ) -> Document:
        def extra(d: Document) -> Message:
            return ev.DocumentAssigned(
                document_id=d.id,
                agency_code=d.agency_code,
                handler_user_id=d.handler_user_id,
                co_handler_user_ids=list(d.co_handler_user_ids),
                due_date=d.due_date.isoformat() if d.due_date else "",
                comment=comment,
                actor_id=caller.subject,
            )

        return self._incoming_step(
            caller,
            document_id,
            etag,
            "assign",
            lambda d, now: d.assign(handler, tuple(co_handlers), due, caller.subject, now, comment),
            extra,
        )

    def start_processing(self, caller: Any, document_id: str, etag: str) -> Document:
        return self._incoming_step(
            caller,
            document_id,
            etag,
            "handle",
            lambda d, now: d.start_processing(caller.subject, now),
        )

    def complete(
        self, caller: Any, document_id: str, etag: str, note: str, reply_id: str
    ) -> Document:
        return self._incoming_step(
            caller,
            document_id,
            etag,
            "handle",
            lambda d, now: d.complete(caller.subject, now, note, reply_id),
        )

    # --- reading ---------------------------------------------------------------------------

    def get(self, caller: Any, document_id: str) -> tuple[Document, list[DirectiveTask]]:
        with self._read() as conn:
            repo = Repository(conn)
            doc = self._load(repo, caller, document_id)
            tasks = repo.tasks_of_documents([doc.id]).get(doc.id, [])
        return doc, tasks

    def history(self, caller: Any, document_id: str) -> list[HistoryEntry]:
        with self._read() as conn:
            repo = Repository(conn)
            self._load(repo, caller, document_id)
            return repo.history(document_id)

    def versions(self, caller: Any, document_id: str) -> list[tuple[int, Document, str, datetime]]:
        with self._read() as conn:
            repo = Repository(conn)
            doc = self._load(repo, caller, document_id)
            if not policy.holds(caller, policy.READER_ROLES, doc.agency_code, self.agencies):
                raise NotVisible(f"document {document_id} not found")  # drafts stay in-house
            return repo.versions(document_id)

    def list(
        self, caller: Any, f: DocumentFilter, offset: int, limit: int
    ) -> tuple[list[Document], int]:
        if not f.agency_code:
            raise InvalidField("agency_code", "the agency whose documents are listed is required")
        if not policy.holds(caller, policy.READER_ROLES, f.agency_code, self.agencies):
            raise policy.Forbidden(f"no role in agency {f.agency_code}")
        with self._read() as conn:
            return Repository(conn).list(f, offset, limit)

    # --- directive tasks -------------------------------------------------------------------

    def create_task(self, caller: Any, task: DirectiveTask) -> DirectiveTask:
        if not task.description.strip():
            raise InvalidField("task.description", "say what is to be done")
        self._check_agency(task.assignee_agency_code, "task.assignee_agency_code")
        for i, code in enumerate(task.cooperating_agency_codes):
            self._check_agency(code, f"task.cooperating_agency_codes[{i}]")
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, task.document_id)
            policy.require(caller, "create_task", doc.agency_code, self.agencies)
            if doc.direction == Direction.OUTGOING and doc.outgoing_status not in (
                OutgoingStatus.ISSUED,
                OutgoingStatus.SENT,
            ):
                raise InvalidTransition("tasks come from an issued document", subject=doc.id)
            now = self.now()
            stored = replace(
                task,
                id=str(uuid.uuid4()),
                directing_agency_code=doc.agency_code,
                created_by=caller.subject,
                create_time=now,
                status=TaskStatus.OPEN,
                complete_time=None,
                version=1,
            )
            repo.add_task(stored)
            repo.add_history(
                doc.id,
                HistoryEntry(
                    now,
                    caller.subject,
                    doc.agency_code,
                    "create_task",
                    "",
                    "",
                    stored.description[:200],
                ),
            )
            uow.emit(
                ev.DirectiveTaskAssigned(
                    task=task_to_proto(stored, self.today()), actor_id=caller.subject
                ),
                subject=doc.id,
            )
            uow.commit()
        return stored

    def update_task(
        self, caller: Any, task_id: str, etag: str, status: TaskStatus, note: str
    ) -> DirectiveTask:
        with self._uow() as (uow, repo):
            task = repo.get_task(task_id) if task_id else None
            if task is None or not (
                policy.holds(caller, policy.READER_ROLES, task.assignee_agency_code, self.agencies)
                or policy.holds(
                    caller, policy.READER_ROLES, task.directing_agency_code, self.agencies
                )
            ):
                raise NotVisible(f"task {task_id} not found")
            if etag and etag != str(task.version):
                from services.documents.domain.errors import StaleVersion

                raise StaleVersion("the task changed since it was read (stale etag)")
            if status == TaskStatus.CANCELLED:
                policy.require(caller, "create_task", task.directing_agency_code, self.agencies)
            elif not (task.assignee_user_id and caller.subject == task.assignee_user_id):
                policy.require(caller, "report_task", task.assignee_agency_code, self.agencies)
                if task.assignee_user_id and not caller.has_role(
                    policy.LEADER, task.assignee_agency_code, tree=self.agencies
                ):
                    raise policy.Forbidden(
                        "only the official in charge or a leader reports on this task"
                    )
            version = task.version
            before = task.report(status, note, self.now())
            repo.save_task(task, version)
            uow.emit(
                ev.DirectiveTaskStatusChanged(
                    task_id=task.id,
                    document_id=task.document_id,
                    from_status=int(before),
                    to_status=int(task.status),
                    progress_note=note,
                    actor_id=caller.subject,
                ),
                subject=task.document_id,
            )
            uow.commit()
        return task

    def list_tasks(
        self, caller: Any, f: TaskFilter, overdue_only: bool, offset: int, limit: int
    ) -> list[DirectiveTask]:
        """Tasks the caller may see: of agencies where it holds a role (or below them)."""
        visible = self._caller_agencies(caller)
        if f.assignee_agency_code and f.assignee_agency_code not in visible:
            raise policy.Forbidden(f"no role in agency {f.assignee_agency_code}")
        today = self.today()
        if overdue_only:
            f = replace(
                f,
                statuses=tuple(
                    s
                    for s in (f.statuses or (TaskStatus.OPEN, TaskStatus.IN_PROGRESS))
                    if s in (TaskStatus.OPEN, TaskStatus.IN_PROGRESS)
                ),
                due_before=min(
                    filter(None, [f.due_before, date.fromordinal(today.toordinal() - 1)])
                ),
            )
        with self._read() as conn:
            return Repository(conn).list_tasks(
                replace(f, agency_codes=tuple(visible)), offset, limit
            )

    def _caller_agencies(self, caller: Any) -> set[str]:
        codes: set[str] = set()
        for code, roles in getattr(caller, "grants", {}).items():
            if roles & set(policy.READER_ROLES):
                codes.add(code)
                codes.update(self.agencies.descendants(code))
        return codes

    # --- figures ---------------------------------------------------------------------------

    def figures(
        self, caller: Any, agency_code: str, include_sub: bool, start: date, end: date
    ) -> tuple[Figures, list[Figures]]:
        if end < start:
            raise InvalidField("to_date", "the period ends before it starts")
        if agency_code:
            self._check_agency(agency_code, "agency_code")
            policy.require(caller, "figures", agency_code, self.agencies)
            agencies = (
                [agency_code, *self.agencies.descendants(agency_code)]
                if include_sub
                else [agency_code]
            )
        else:
            roots = [
                code
                for code in getattr(caller, "grants", {})
                if caller.has_role(policy.ADMIN, code, tree=self.agencies)
            ]
            if not roots and not caller.has_role(policy.ADMIN):
                raise policy.Forbidden("admin role required for the whole province's figures")
            agencies = sorted({c for r in roots for c in [r, *self.agencies.descendants(r)]})
        first, last = day_bounds(start, end)
        today = self.today()
        with self._read() as conn:
            repo = Repository(conn)
            outgoing = repo.outgoing_facts(agencies, start, end)
            incoming = repo.incoming_facts(agencies, first, last)
            tasks = repo.overdue_tasks(agencies, today)
        total = compute_figures(
            agency_code, outgoing, incoming, sum(tasks.values()), today, local_date
        )
        rows = []
        if include_sub:
            for code in agencies:
                rows.append(
                    compute_figures(
                        code,
                        [o for o in outgoing if o.agency_code == code],
                        [i for i in incoming if i.agency_code == code],
                        tasks.get(code, 0),
                        today,
                        local_date,
                    )
                )
        return total, rows

    # --- exchange (consumer side) ----------------------------------------------------------

    def on_delivery(self, delivery: Any, uow: UnitOfWork) -> None:
        self.exchange.receive(uow, Repository(uow.session), delivery, self.now())


def _attr(path: str) -> str:
    return {"document_type_code": "type_code"}.get(path, path)
