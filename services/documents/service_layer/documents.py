"""The documents use cases. Each public method is one unit of work: it checks the caller's
role (domain.policy), applies a domain step, stores the document with its history, and emits
the lgsp.documents.v1 events (and exchange messages) in the same transaction.

Methods are synchronous (SQLAlchemy sync sessions); callers on the event loop use `await
app.run(fn, …)`, which runs them on the service's own bounded thread pool (not asyncio's
default one, which the bus, the relay and the attachment store share). `caller` is the
authenticated principal (lgsp.auth.Principal)."""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import functools
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from lgsp.agency_code import agency_code_problem
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.db import UnitOfWork, utcnow
from lgsp.events import enum_number
from lgsp.workdays import local_date
from services.documents.adapters.proto import (
    attachment_to_proto,
    delegation_to_proto,
    document_to_proto,
    task_to_proto,
)
from services.documents.adapters.repository import (
    DocumentFilter,
    Repository,
    TaskFilter,
    day_bounds,
)
from services.documents.domain import policy
from services.documents.domain.arrival import check_arrival, check_dates, same_document
from services.documents.domain.delegation import Delegation, Scope, check_grant
from services.documents.domain.document_types import check_issuer, document_type
from services.documents.domain.errors import (
    AlreadyRegistered,
    InvalidField,
    InvalidTransition,
    NotVisible,
    StaleVersion,
)
from services.documents.domain.figures import Figures, compute_figures
from services.documents.domain.model import (
    Attachment,
    Direction,
    DirectiveTask,
    Document,
    HistoryEntry,
    IncomingStatus,
    OutgoingStatus,
    Recipient,
    Signer,
    TaskStatus,
    check_attach,
)
from services.documents.domain.numbering import (
    IssuedNumber,
    book_for,
    check_promulgation_date,
    notation,
)
from services.documents.service_layer.exchange import Exchange
from services.documents.service_layer.ports import AgencyDirectory
from services.documents.transport import Transport

log = logging.getLogger("services.documents")
T = TypeVar("T")
# Worker threads for the use cases: enough to keep both SQLite readers and PostgreSQL busy,
# few enough that a burst queues here (cheaply) rather than in the database's busy wait.
DEFAULT_WORKERS = 8

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
        clock: Callable[[], datetime] = utcnow,
        after_commit: Callable[[], None] = lambda: None,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.transport = transport
        self.clock = clock
        self.after_commit = after_commit
        self.exchange = Exchange(agencies, transport)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="documents")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the use-case threads, with the caller's context (principal, trace)."""
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(ctx.run, fn, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

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
        if doc is None or not self._can_read(repo, caller, doc):
            raise NotVisible(f"document {document_id} not found")
        if etag and etag != str(doc.version):
            raise StaleVersion("the document changed since it was read (stale etag); read it again")
        return doc

    def _delegations(self, repo: Repository, caller: Any) -> list[Delegation]:
        """The caller's unrevoked, unexpired delegations (read only when its roles fall short,
        so the agency's own officials pay nothing for them)."""
        return repo.delegations_to(caller.subject, self.now()) if caller.subject else []

    def _can_read(self, repo: Repository, caller: Any, doc: Document) -> bool:
        """policy.can_read, or a delegation that opens this in-house document to the caller."""
        if policy.can_read(caller, doc, self.agencies):
            return True
        found = policy.delegated_read(caller, doc, self._delegations(repo, caller), self.now())
        return found is not None

    def _authorize(self, repo: Repository, caller: Any, action: str, doc: Document) -> str:
        """policy.authorize for `action` on `doc`: "" by the caller's own role, else the id
        of the delegation it acts under (recorded in the history and the events)."""
        if policy.may(caller, action, doc.agency_code, self.agencies):
            return ""
        found = policy.authorize(
            caller,
            action,
            doc.agency_code,
            self.agencies,
            self._delegations(repo, caller),
            self.now(),
        )
        return found.id if found is not None else ""

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

    def _check_type(self, doc: Document) -> None:
        """A known type that the holding agency may issue (document_types, issued_by)."""
        kind = document_type(doc.type_code)
        if kind is None:
            raise InvalidField(
                "document.document_type_code", f"unknown document type {doc.type_code!r}"
            )
        agency = self.agencies.get(doc.agency_code)
        check_issuer(
            kind, agency.name if agency else doc.agency_code, "document.document_type_code"
        )

    def _check_recipient(self, r: Recipient, field: str, *, listed: bool = True) -> None:
        """A province agency, or — when the exchange reaches outside the province (the
        national document axis) — any well-formed agency code, named by the sender."""
        if self.agencies.get(r.agency_code) is not None or not self.transport.outside_province:
            self._check_agency(r.agency_code, field)
            return
        problem = agency_code_problem(r.agency_code)
        if problem is not None:
            raise InvalidField(field, f"{r.agency_code!r} {problem}")
        outside = getattr(self.transport, "outside", None)
        if listed and outside is not None and outside.knows(r.agency_code) is False:
            raise InvalidField(
                field,
                f"{r.agency_code} is neither a province agency nor in the national document "
                "axis directory",
            )
        if not r.name.strip():
            raise InvalidField(
                field.rsplit(".", 1)[0] + ".name",
                f"{r.agency_code} is outside the province: give the recipient's name",
            )

    def _check_recipients(
        self,
        recipients: Sequence[Recipient],
        prefix: str = "document.recipients",
        *,
        listed: bool = True,
    ) -> None:
        """`listed`: an outside code must be in the axis's directory (drafts); at send time an
        unknown one fails alone at the axis instead of stopping the whole send."""
        seen: set[str] = set()
        for i, r in enumerate(recipients):
            if r.agency_code:
                self._check_recipient(r, f"{prefix}[{i}].agency_code", listed=listed)
                if r.agency_code in seen:
                    raise InvalidField(
                        f"{prefix}[{i}].agency_code", f"{r.agency_code} is listed twice"
                    )
                seen.add(r.agency_code)

    def _status_changed(
        self, doc: Document, entry: HistoryEntry, before: OutgoingStatus | None, actor: str
    ) -> ev.OutgoingStatusChanged:
        """The event of a status change; it names the delegation `entry` was done under."""
        assert doc.outgoing_status is not None
        return ev.OutgoingStatusChanged(
            document_id=doc.id,
            agency_code=doc.agency_code,
            from_status=enum_number(before),
            to_status=enum_number(doc.outgoing_status),
            next_user_id=doc.waiting_on_user_id,
            comment=entry.comment,
            actor_id=actor,
            delegation_id=entry.delegation_id,
        )

    # --- outgoing --------------------------------------------------------------------------

    def create_draft(self, caller: Any, draft: Document, request_id: str = "") -> Document:
        policy.require(caller, "create_draft", draft.agency_code, self.agencies)
        self._check_agency(draft.agency_code, "document.agency_code")
        self._check_type(draft)
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
            if "document_type_code" in paths and doc.direction == Direction.OUTGOING:
                self._check_type(doc)
            elif "document_type_code" in paths and document_type(doc.type_code) is None:
                raise InvalidField(
                    "document.document_type_code", f"unknown document type {doc.type_code!r}"
                )
            if doc.direction == Direction.OUTGOING:
                doc.check_draft()
                self._check_recipients(doc.recipients)
                doc.draft_version += 1
            elif "due_date" in paths:
                check_dates(doc.promulgation_date, doc.due_date, self.today())
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
            )
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
            )
            uow.commit()
        return doc

    def sign_target(
        self, caller: Any, document_id: str, etag: str, signer: Signer
    ) -> tuple[Document, Attachment | None]:
        """Check that the caller may sign now (same refusals as `sign`) and return the document
        with its current main text, before the slow part (signing the PDF) starts."""
        with self._read() as conn:
            repo = Repository(conn)
            doc = self._load(repo, caller, document_id, etag)
            self._authorize(repo, caller, "sign", doc)
            if signer.user_id and signer.user_id != caller.subject:
                raise InvalidField("signer.user_id", "a signature is the caller's own")
            replace(doc, recipients=list(doc.recipients)).sign(
                signer, True, caller.subject, self.now()
            )  # a dry run on a copy: raises the precise refusal
            main = next((a for a in repo.attachments(doc.id) if a.main), None)
        return doc, main

    def sign(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        signer: Signer,
        signed_copy: Attachment | None = None,
        verified: tuple[str, str] | None = None,
    ) -> Document:
        """Record the signature. `signed_copy`: the PAdES-signed PDF made for this step (it
        becomes the next version of the main text); `verified`: (attachment id, certificate
        serial) of an uploaded main text whose signature verified. Neither: signed on paper."""
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            delegation = self._authorize(repo, caller, "sign", doc)
            if signer.user_id and signer.user_id != caller.subject:
                raise InvalidField("signer.user_id", "a signature is the caller's own")
            before = doc.outgoing_status
            entry = doc.sign(
                signer, signed_copy is not None or verified is not None, caller.subject, self.now()
            )
            entry = replace(entry, delegation_id=delegation)
            events: list[Message] = [self._status_changed(doc, entry, before, caller.subject)]
            main = next((a for a in repo.attachments(doc.id) if a.main), None)
            if signed_copy is not None:
                if main is None or main.id != signed_copy.replaces_id:
                    raise StaleVersion("the main text changed while it was being signed")
                repo.add_attachment(signed_copy)
                events.append(self._attachment_added(signed_copy, caller.subject, delegation))
            if verified is not None:
                if main is None or main.id != verified[0]:
                    raise InvalidField(
                        "signed_attachment_id", "must be the document's current main text"
                    )
                repo.mark_signed(verified[0], verified[1])
            self._store(uow, repo, doc, entry, *events)
            uow.commit()
        return doc

    def issue(
        self, caller: Any, document_id: str, etag: str, promulgation_date: date | None
    ) -> Document:
        """Give the document the next number of its agency's book for the year: the counter
        and the document change in one transaction, so a failed issue gives its number back."""
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            delegation = self._authorize(repo, caller, "issue", doc)
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
            try:
                check_issuer(kind, agency.name, "document.document_type_code")
            except InvalidField as e:  # a draft made before the rule: its state is the problem
                raise InvalidTransition(f"issue: {e.reason}", subject=doc.id) from None
            today = self.today()
            on = promulgation_date or today
            check_promulgation_date(on, today, None)
            text = notation(kind, agency.short_name, on.year, doc.drafting_unit)
            book = book_for(kind)
            number = repo.next_number(doc.agency_code, book, on.year)
            # The book is locked now: its last date is the last committed one.
            check_promulgation_date(
                on, today, repo.last_issued_date(doc.agency_code, book, on.year)
            )
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
            entry = replace(entry, delegation_id=delegation)
            self._store(
                uow,
                repo,
                doc,
                entry,
                ev.DocumentIssued(
                    document=event_document(doc),
                    actor_id=caller.subject,
                    delegation_id=delegation,
                ),
            )
            uow.commit()
        return doc

    def send(
        self,
        caller: Any,
        document_id: str,
        etag: str,
        agency_codes: Sequence[str],
        files: Sequence[tuple[Attachment, bytes]] = (),
    ) -> Document:
        """Send to the recipients; `files` are the document's current attachments with their
        bytes (read beforehand by the caller), which travel inside the edXML package."""
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, document_id, etag)
            if sorted(a.id for a in repo.attachments(doc.id)) != sorted(a.id for a, _ in files):
                raise StaleVersion("the document's files changed while sending; send again")
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
            self._check_recipients(doc.recipients, listed=False)
            indexes = doc.recipients_to_send(list(agency_codes))
            now = self.now()
            entry = doc.mark_sent(indexes, True, caller.subject, now)
            sent = [doc.recipients[i] for i in indexes]
            electronic = [r for r in sent if r.agency_code]
            if electronic:
                self.exchange.send_package(uow, doc, electronic, now, files)
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
                    delivered_agency_codes=_delivered(doc),
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
                    delivered_agency_codes=_delivered(doc),
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
        # Optional (a citizen's letter has none); when given, it is what finds the document
        # again when its electronic copy arrives, so it must be a real identifier code.
        if doc.sender_agency_code and (problem := agency_code_problem(doc.sender_agency_code)):
            raise InvalidField("document.sender_agency_code", f"the sender's code {problem}")
        check_arrival(doc, self.today())
        if document_type(doc.type_code) is None:
            raise InvalidField(
                "document.document_type_code", f"unknown document type {doc.type_code!r}"
            )
        if not doc.subject.strip():
            raise InvalidField("document.subject", "the subject (trích yếu) is required")
        with self._uow() as (uow, repo):
            if request_id and (earlier := repo.get_by_request(doc.agency_code, f"in:{request_id}")):
                return earlier
            if doc.sender_agency_code:  # the same letter entered again: one arrival number
                for earlier in repo.find_incoming(
                    doc.agency_code, doc.sender_agency_code, doc.number_notation
                ):
                    if same_document(
                        earlier, doc.sender_agency_code, doc.number_notation, doc.promulgation_date
                    ):
                        raise AlreadyRegistered(
                            f"{doc.number_notation} of {doc.sender_agency_code} dated "
                            f"{doc.promulgation_date} is in the incoming book already: arrival "
                            f"number {earlier.arrival_number}, document {earlier.id}"
                        )
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

    def get(
        self, caller: Any, document_id: str
    ) -> tuple[Any, list[DirectiveTask], list[Attachment]]:
        """The stored proto (as GetDocument answers it), its tasks and current files."""
        with self._read() as conn:
            repo = Repository(conn)
            found = repo.get_for_reading(document_id) if document_id else None
            if found is None or not self._can_read(repo, caller, found[0]):
                raise NotVisible(f"document {document_id} not found")
        _, message, tasks, files = found
        return message, tasks, files

    # --- attachments -----------------------------------------------------------------------

    def _attachment_added(self, a: Attachment, actor: str, delegation_id: str = "") -> Message:
        return ev.AttachmentAdded(
            document_id=a.document_id,
            attachment=attachment_to_proto(a),
            actor_id=actor,
            delegation_id=delegation_id,
        )

    def attach_target(self, caller: Any, document_id: str, main: bool) -> Document:
        """Refuse an upload before its bytes are read: NOT_FOUND for a document the caller
        may not read, PERMISSION_DENIED without an uploading role, FAILED_PRECONDITION when
        the document takes no more files."""
        with self._read() as conn:
            doc = self._load(Repository(conn), caller, document_id)
        policy.require(caller, "attach", doc.agency_code, self.agencies)
        check_attach(doc, main)
        return doc

    def add_attachment(self, caller: Any, file: Attachment) -> Attachment:
        """Link a stored file to its document: the row and AttachmentAdded in one unit of
        work (the checks again, as the document may have moved on during the upload)."""
        with self._uow() as (uow, repo):
            doc = self._load(repo, caller, file.document_id)
            policy.require(caller, "attach", doc.agency_code, self.agencies)
            check_attach(doc, file.main)
            if file.main:
                current = next((a for a in repo.attachments(doc.id) if a.main), None)
                file = replace(
                    file,
                    version=(current.version + 1) if current else 1,
                    replaces_id=current.id if current else "",
                )
            repo.add_attachment(file)
            uow.emit(self._attachment_added(file, caller.subject), subject=doc.id)
            uow.commit()
        return file

    def attachment(self, caller: Any, document_id: str, attachment_id: str) -> Attachment:
        with self._read() as conn:
            repo = Repository(conn)
            self._load(repo, caller, document_id)
            found = repo.get_attachment(document_id, attachment_id) if attachment_id else None
        if found is None:
            raise NotVisible(f"attachment {attachment_id} not found")
        return found

    def files_to_send(self, caller: Any, document_id: str) -> list[Attachment]:
        with self._read() as conn:
            repo = Repository(conn)
            self._load(repo, caller, document_id)
            return repo.attachments(document_id)

    def sha256_in_use(self, sha256: str) -> bool:
        with self._read() as conn:
            return Repository(conn).sha256_in_use(sha256)

    def history(self, caller: Any, document_id: str) -> list[HistoryEntry]:
        with self._read() as conn:
            repo = Repository(conn)
            self._load(repo, caller, document_id)
            return repo.history(document_id)

    def versions(self, caller: Any, document_id: str) -> list[tuple[int, Document, str, datetime]]:
        with self._read() as conn:
            repo = Repository(conn)
            doc = self._load(repo, caller, document_id)
            if not policy.holds_own(
                caller, policy.READER_ROLES, doc.agency_code
            ) and not policy.delegation_for(
                caller,
                Scope.READ_DRAFTS,
                doc.agency_code,
                self._delegations(repo, caller),
                self.now(),
            ):
                raise NotVisible(f"document {document_id} not found")  # drafts stay in-house
            return repo.versions(document_id)

    def list(
        self, caller: Any, f: DocumentFilter, offset: int, limit: int
    ) -> tuple[builtins.list[Document], int]:
        if not f.agency_code:
            raise InvalidField("agency_code", "the agency whose documents are listed is required")
        with self._read() as conn:
            repo = Repository(conn)
            if not policy.holds_own(
                caller, policy.READER_ROLES, f.agency_code
            ) and not policy.delegation_for(
                caller,
                Scope.READ_DRAFTS,
                f.agency_code,
                self._delegations(repo, caller),
                self.now(),
            ):
                raise policy.Forbidden(f"no role in agency {f.agency_code}")
            return repo.list(f, offset, limit)

    # --- delegations (ủy quyền) ------------------------------------------------------------

    def grant_delegation(
        self,
        caller: Any,
        agency_code: str,
        delegate_user_id: str,
        delegate_agency_code: str,
        scopes: frozenset[int],
        valid_from: datetime | None,
        valid_until: datetime | None,
        note: str = "",
    ) -> Delegation:
        """A leader of `agency_code` itself grants the delegation: the row and
        DelegationGranted in one unit of work; every check comes first, so a refused grant
        stores nothing."""
        self._check_agency(agency_code, "delegation.agency_code")
        policy.may_delegate(caller, agency_code)
        self._check_agency(delegate_agency_code, "delegation.delegate_agency_code")
        now = self.now()
        start = valid_from.astimezone(UTC) if valid_from else now
        kinds, until = check_grant(
            agency_code=agency_code,
            delegate_user_id=delegate_user_id,
            delegate_agency_code=delegate_agency_code,
            scopes=scopes,
            valid_from=start,
            valid_until=valid_until.astimezone(UTC) if valid_until else None,
            now=now,
        )
        d = Delegation(
            id=str(uuid.uuid4()),
            agency_code=agency_code,
            delegate_user_id=delegate_user_id.strip(),
            delegate_agency_code=delegate_agency_code,
            scopes=kinds,
            valid_from=start,
            valid_until=until,
            granted_by=caller.subject,
            grant_time=now,
            note=note.strip(),
        )
        with self._uow() as (uow, repo):
            repo.add_delegation(d)
            uow.emit(
                ev.DelegationGranted(
                    delegation=delegation_to_proto(d, now), actor_id=caller.subject
                ),
                subject=d.id,
            )
            uow.commit()
        return d

    def revoke_delegation(self, caller: Any, delegation_id: str, reason: str) -> Delegation:
        """A leader of the delegating agency ends it now (NOT_FOUND for one the caller may not
        see, PERMISSION_DENIED for one it sees but may not revoke)."""
        with self._uow() as (uow, repo):
            d = repo.get_delegation(delegation_id) if delegation_id else None
            if d is None or not policy.can_see_delegation(caller, d):
                raise NotVisible(f"delegation {delegation_id} not found", resource="delegation")
            policy.may_delegate(caller, d.agency_code)
            now = self.now()
            d = d.revoke(caller.subject, now, reason)
            repo.save_revocation(d)
            uow.emit(
                ev.DelegationRevoked(
                    delegation=delegation_to_proto(d, now), actor_id=caller.subject
                ),
                subject=d.id,
            )
            uow.commit()
        return d

    def list_delegations(self, caller: Any, agency_code: str) -> builtins.list[Delegation]:
        """All of an agency's delegations to its own officials; to anyone else, those granted
        to the caller."""
        self._check_agency(agency_code, "agency_code")
        own = policy.holds_own(caller, policy.READER_ROLES, agency_code)
        if not own and not caller.subject:
            return []
        with self._read() as conn:
            return Repository(conn).delegations_of(agency_code, "" if own else caller.subject)

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
                    from_status=enum_number(before),
                    to_status=enum_number(task.status),
                    progress_note=note,
                    actor_id=caller.subject,
                ),
                subject=task.document_id,
            )
            uow.commit()
        return task

    def list_tasks(
        self, caller: Any, f: TaskFilter, overdue_only: bool, offset: int, limit: int
    ) -> builtins.list[DirectiveTask]:
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
    ) -> tuple[Figures, builtins.list[Figures]]:
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

    def on_delivery(self, delivery: Any, uow: UnitOfWork, arrival: Any = None) -> None:
        """Handle one exchange message in the consumer's unit of work; `arrival` is what
        the async part prepared (parsed package, stored files, signature verdict)."""
        self.exchange.receive(uow, Repository(uow.session), delivery, self.now(), arrival)

    def on_delivery_failed(
        self, uow: UnitOfWork, sender: str, number_notation: str, recipient: str, error: str
    ) -> bool:
        """The exchange gave up on one recipient (in the relay's unit of work)."""
        return self.exchange.delivery_failed(
            uow, Repository(uow.session), sender, number_notation, recipient, error, self.now()
        )


def _delivered(doc: Document) -> builtins.list[str]:
    """The recipient agencies a document has been sent to (what lets them read it)."""
    return [r.agency_code for r in doc.recipients if r.agency_code and r.send_time is not None]


def _attr(path: str) -> str:
    return {"document_type_code": "type_code"}.get(path, path)
