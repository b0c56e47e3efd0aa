"""DocumentService over gRPC: proto in → use case (in a worker thread) → proto out.

Domain refusals become the platform's errors here: InvalidField → INVALID_ARGUMENT naming the
field, InvalidTransition → FAILED_PRECONDITION, Forbidden → PERMISSION_DENIED, NotVisible →
NOT_FOUND, StaleVersion → ABORTED, AlreadyRegistered → ALREADY_EXISTS, a file over the size
limit → RESOURCE_EXHAUSTED naming the field.

Use cases run on DocumentsApp's own worker threads (`app.run`); the file use cases
(DocumentFiles) stay on the loop and hand their database steps to those threads."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.auth import current_principal
from lgsp.blobs import CHUNK_SIZE, AttachmentNotFound
from lgsp.grpc import errors
from lgsp.telemetry import tag_business_keys
from services.documents.adapters.proto import (
    attachment_to_proto,
    delegation_to_proto,
    document_to_proto,
    history_to_proto,
    parse_date,
    recipient_from_proto,
    signer_from_proto,
    task_to_proto,
    ts,
)
from services.documents.adapters.repository import DocumentFilter, TaskFilter
from services.documents.domain import errors as de
from services.documents.domain.document_types import ADMINISTRATIVE_TYPES, LEGAL_TYPES
from services.documents.domain.figures import Figures
from services.documents.domain.model import (
    Confidentiality,
    Direction,
    Document,
    IncomingStatus,
    OutgoingStatus,
    Priority,
    TaskStatus,
)
from services.documents.service_layer.attachments import DocumentFiles, FileTooLarge, Upload

T = TypeVar("T")
MAX_PAGE = 500


class TooLarge(errors.ServiceError):
    """RESOURCE_EXHAUSTED with a BadRequest naming the field that went over the limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, field: str, description: str) -> None:
        super().__init__(
            f"{field}: {description}",
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=field, description=description
                    )
                ]
            ),
        )


class ContentLost(errors.ServiceError):
    """A file's row exists but its bytes are gone from the store: DATA_LOSS, not UNAVAILABLE,
    as no retry brings them back (an operator restores the store or the file is uploaded
    again)."""

    code = grpc.StatusCode.DATA_LOSS

    def __init__(self) -> None:
        super().__init__("the file's content is missing from the attachment store")


def to_service_error(e: de.DomainError) -> errors.ServiceError:
    if isinstance(e, FileTooLarge):
        return TooLarge(e.field, e.reason)
    if isinstance(e, de.InvalidField):
        return errors.InvalidArgument(e.field, e.reason)
    if isinstance(e, de.InvalidTransition):
        return errors.FailedPrecondition(e.message, type="STATUS", subject=e.subject)
    if isinstance(e, de.Forbidden):
        return errors.PermissionDenied(e.message)
    if isinstance(e, de.NotVisible):
        return errors.NotFound(e.message, resource_type=e.resource)
    if isinstance(e, de.StaleVersion):
        return errors.Aborted(e.message)
    if isinstance(e, de.AlreadyRegistered):
        return errors.AlreadyExists(e.message, resource_type="document")
    return errors.FailedPrecondition(e.message)


def rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def call(self: DocumentServicer, request: Any, context: Any) -> Any:
        try:
            return await fn(self, request, context)
        except de.DomainError as e:
            raise to_service_error(e) from None
        except AttachmentNotFound:  # signing or sending a file whose bytes are gone
            raise ContentLost() from None

    return call


def _page(size: int, token: str) -> tuple[int, int]:
    limit = 50 if size <= 0 else min(size, MAX_PAGE)
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise de.InvalidField("page_token", "not a token this service gave") from None
    return offset, limit


def draft_from_proto(m: pb.Document) -> Document:
    """Client input to a domain Document; server-owned fields are ignored by the use case."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    if m.priority and m.priority not in Priority._value2member_map_:
        raise de.InvalidField("document.priority", "unknown priority")
    if m.confidentiality and m.confidentiality not in Confidentiality._value2member_map_:
        raise de.InvalidField("document.confidentiality", "unknown confidentiality level")
    return Document(
        id="",
        direction=Direction.OUTGOING,
        agency_code=m.agency_code.strip(),
        type_code=m.document_type_code.strip(),
        subject=m.subject.strip(),
        summary=m.summary.strip(),
        created_by="",
        create_time=now,
        update_time=now,
        signer=signer_from_proto(m.signer, "document.signer"),
        promulgation_place=m.promulgation_place.strip(),
        due_date=parse_date(m.due_date, "document.due_date"),
        priority=Priority(m.priority or 1),
        confidentiality=Confidentiality(m.confidentiality or 1),
        recipients=[recipient_from_proto(r) for r in m.recipients],
        drafting_unit=m.drafting_unit.strip(),
        page_count=max(m.page_count, 0),
        number_notation=m.number_notation.strip(),
        sender_agency_code=m.sender_agency_code.strip(),
        sender_agency_name=m.sender_agency_name.strip(),
        related_document_id=m.related_document_id,
        promulgation_date=parse_date(m.promulgation_date, "document.promulgation_date"),
    )


def figures_to_proto(f: Figures) -> pb.DocumentFigures:
    return pb.DocumentFigures(
        agency_code=f.agency_code,
        outgoing_issued=f.outgoing_issued,
        outgoing_electronic=f.outgoing_electronic,
        outgoing_digitally_signed=f.outgoing_digitally_signed,
        incoming_arrived=f.incoming_arrived,
        incoming_electronic=f.incoming_electronic,
        incoming_done_on_time=f.incoming_done_on_time,
        incoming_late=f.incoming_late,
        electronic_share=f.electronic_share,
        digitally_signed_share=f.digitally_signed_share,
        average_handling_seconds=f.average_handling_seconds,
        incoming_overdue=f.incoming_overdue,
        tasks_overdue=f.tasks_overdue,
    )


class DocumentServicer(documents_pb2_grpc.DocumentServiceServicer):
    def __init__(self, files: DocumentFiles) -> None:
        self.files = files
        self.app = files.app

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.app.run(fn, current_principal(), *args)

    def _doc(self, doc: Document) -> pb.Document:
        """The document of a one-document call, its keys put on the call's span."""
        tag_business_keys(
            document_id=doc.id,
            document_number=doc.number_notation,
            document_notation=doc.notation,
            agency_code=doc.agency_code,
        )
        return document_to_proto(doc)

    @rpc
    async def ListDocumentTypes(self, request: Any, context: Any) -> Any:
        kinds = sorted(ADMINISTRATIVE_TYPES + LEGAL_TYPES, key=lambda k: k.name)
        return pb.ListDocumentTypesResponse(
            document_types=[pb.DocumentType(code=k.code, name=k.name, legal=k.legal) for k in kinds]
        )

    @rpc
    async def CreateDraft(self, request: Any, context: Any) -> Any:
        doc = await self._run(
            self.app.create_draft, draft_from_proto(request.document), request.request_id
        )
        return pb.CreateDraftResponse(document=self._doc(doc))

    @rpc
    async def UpdateDocument(self, request: Any, context: Any) -> Any:
        changes = draft_from_proto(request.document)
        doc = await self._run(
            self.app.update_document,
            request.document.id,
            request.document.etag,
            changes,
            list(request.update_mask.paths),
        )
        return pb.UpdateDocumentResponse(document=self._doc(doc))

    @rpc
    async def SubmitForReview(self, request: Any, context: Any) -> Any:
        doc = await self._run(
            self.app.submit_for_review,
            request.document_id,
            request.etag,
            request.reviewer_user_id,
            request.comment,
        )
        return pb.SubmitForReviewResponse(document=self._doc(doc))

    @rpc
    async def ReviewDocument(self, request: Any, context: Any) -> Any:
        if request.decision == pb.REVIEW_DECISION_UNSPECIFIED:
            raise de.InvalidField("decision", "APPROVE or RETURN")
        doc = await self._run(
            self.app.review,
            request.document_id,
            request.etag,
            request.decision == pb.REVIEW_DECISION_APPROVE,
            request.signer_user_id,
            request.comment,
        )
        return pb.ReviewDocumentResponse(document=self._doc(doc))

    @rpc
    async def SignDocument(self, request: Any, context: Any) -> Any:
        doc = await self.files.sign(
            current_principal(),
            request.document_id,
            request.etag,
            signer_from_proto(request.signer),
            request.signed_attachment_id,
            request.sign_main_attachment,
        )
        return pb.SignDocumentResponse(document=self._doc(doc))

    @rpc
    async def IssueDocument(self, request: Any, context: Any) -> Any:
        on = parse_date(request.promulgation_date, "promulgation_date")
        doc = await self._run(self.app.issue, request.document_id, request.etag, on)
        return pb.IssueDocumentResponse(document=self._doc(doc))

    @rpc
    async def SendDocument(self, request: Any, context: Any) -> Any:
        doc = await self.files.send(
            current_principal(), request.document_id, request.etag, list(request.agency_codes)
        )
        return pb.SendDocumentResponse(document=self._doc(doc))

    @rpc
    async def RecallDocument(self, request: Any, context: Any) -> Any:
        doc = await self._run(self.app.recall, request.document_id, request.etag, request.reason)
        return pb.RecallDocumentResponse(document=self._doc(doc))

    @rpc
    async def RegisterIncoming(self, request: Any, context: Any) -> Any:
        doc = draft_from_proto(request.document)
        doc.direction = Direction.INCOMING
        doc.electronic = False
        doc = await self._run(self.app.register_incoming, doc, request.request_id)
        return pb.RegisterIncomingResponse(document=self._doc(doc))

    @rpc
    async def AcceptDocument(self, request: Any, context: Any) -> Any:
        doc = await self._run(self.app.accept, request.document_id, request.etag)
        return pb.AcceptDocumentResponse(document=self._doc(doc))

    @rpc
    async def RefuseDocument(self, request: Any, context: Any) -> Any:
        doc = await self._run(self.app.refuse, request.document_id, request.etag, request.reason)
        return pb.RefuseDocumentResponse(document=self._doc(doc))

    @rpc
    async def AssignDocument(self, request: Any, context: Any) -> Any:
        doc = await self._run(
            self.app.assign,
            request.document_id,
            request.etag,
            request.handler_user_id,
            list(request.co_handler_user_ids),
            parse_date(request.due_date, "due_date"),
            request.comment,
        )
        return pb.AssignDocumentResponse(document=self._doc(doc))

    @rpc
    async def StartProcessing(self, request: Any, context: Any) -> Any:
        doc = await self._run(self.app.start_processing, request.document_id, request.etag)
        return pb.StartProcessingResponse(document=self._doc(doc))

    @rpc
    async def CompleteDocument(self, request: Any, context: Any) -> Any:
        doc = await self._run(
            self.app.complete,
            request.document_id,
            request.etag,
            request.result_note,
            request.reply_document_id,
        )
        return pb.CompleteDocumentResponse(document=self._doc(doc))

    @rpc
    async def GetDocument(self, request: Any, context: Any) -> Any:
        m, tasks, files = await self._run(self.app.get, request.id)
        if tasks:
            today = self.app.today()
            m.directive_tasks.extend(task_to_proto(t, today) for t in tasks)
        m.attachments.extend(attachment_to_proto(a) for a in files)
        return pb.GetDocumentResponse(document=m)

    @rpc
    async def UploadAttachment(self, request_iterator: Any, context: Any) -> Any:
        stream = request_iterator.__aiter__()
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            raise de.InvalidField("metadata", "the stream is empty") from None
        if first.WhichOneof("part") != "metadata":
            raise de.InvalidField("metadata", "the first message carries the metadata")
        m = first.metadata

        async def chunks() -> AsyncIterator[bytes]:
            async for message in stream:
                if message.WhichOneof("part") != "chunk":
                    raise de.InvalidField("metadata", "only the first message carries metadata")
                if len(message.chunk) > CHUNK_SIZE:
                    raise de.InvalidField("chunk", f"at most {CHUNK_SIZE} bytes per message")
                yield message.chunk

        attachment = await self.files.upload(
            current_principal(),
            Upload(
                document_id=m.document_id.strip(),
                file_name=m.file_name,
                content_type=m.content_type.strip(),
                main=m.main,
                size_bytes=m.size_bytes,
                sha256=m.sha256.strip().lower(),
            ),
            chunks(),
        )
        return pb.UploadAttachmentResponse(attachment=attachment_to_proto(attachment))

    async def DownloadAttachment(self, request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            row, chunks = await self.files.download(
                current_principal(), request.document_id, request.attachment_id
            )
            yield pb.DownloadAttachmentResponse(metadata=attachment_to_proto(row))
            async for chunk in chunks:
                yield pb.DownloadAttachmentResponse(chunk=chunk)
        except de.DomainError as e:
            raise to_service_error(e) from None
        except AttachmentNotFound:
            raise ContentLost() from None

    @rpc
    async def ListDocuments(self, request: Any, context: Any) -> Any:
        offset, limit = _page(request.page_size, request.page_token)
        f = DocumentFilter(
            agency_code=request.agency_code,
            direction=Direction(request.direction) if request.direction else None,
            outgoing_statuses=tuple(OutgoingStatus(s) for s in request.outgoing_statuses),
            incoming_statuses=tuple(IncomingStatus(s) for s in request.incoming_statuses),
            type_code=request.document_type_code,
            user_id=request.user_id,
            from_date=parse_date(request.from_date, "from_date"),
            to_date=parse_date(request.to_date, "to_date"),
            due_before=parse_date(request.due_before, "due_before"),
            min_priority=int(request.min_priority),
            query=request.query.strip(),
        )
        docs, total = await self._run(self.app.list, f, offset, limit)
        more = offset + len(docs) < total
        return pb.ListDocumentsResponse(
            documents=[document_to_proto(d) for d in docs],
            next_page_token=str(offset + len(docs)) if more else "",
            total_size=total,
        )

    @rpc
    async def ListDocumentHistory(self, request: Any, context: Any) -> Any:
        entries = await self._run(self.app.history, request.document_id)
        return pb.ListDocumentHistoryResponse(entries=[history_to_proto(h) for h in entries])

    @rpc
    async def ListDocumentVersions(self, request: Any, context: Any) -> Any:
        versions = await self._run(self.app.versions, request.document_id)
        out = []
        for number, doc, author, at in versions:
            v = pb.DocumentVersion(
                version=number, document=document_to_proto(doc), author_id=author
            )
            v.create_time.CopyFrom(ts(at))
            out.append(v)
        return pb.ListDocumentVersionsResponse(versions=out)

    @rpc
    async def CreateDirectiveTask(self, request: Any, context: Any) -> Any:
        from datetime import UTC, datetime

        from services.documents.domain.model import DirectiveTask

        m = request.task
        task = DirectiveTask(
            id="",
            document_id=m.document_id,
            directing_agency_code="",
            description=m.description.strip(),
            assignee_agency_code=m.assignee_agency_code.strip(),
            created_by="",
            create_time=datetime.now(UTC),
            assignee_user_id=m.assignee_user_id.strip(),
            cooperating_agency_codes=tuple(m.cooperating_agency_codes),
            due_date=parse_date(m.due_date, "task.due_date"),
        )
        stored = await self._run(self.app.create_task, task)
        return pb.CreateDirectiveTaskResponse(task=task_to_proto(stored, self.app.today()))

    @rpc
    async def UpdateDirectiveTaskStatus(self, request: Any, context: Any) -> Any:
        if request.status not in TaskStatus._value2member_map_:
            raise de.InvalidField("status", "IN_PROGRESS, DONE or CANCELLED")
        task = await self._run(
            self.app.update_task,
            request.task_id,
            request.etag,
            TaskStatus(request.status),
            request.progress_note.strip(),
        )
        return pb.UpdateDirectiveTaskStatusResponse(task=task_to_proto(task, self.app.today()))

    @rpc
    async def ListDirectiveTasks(self, request: Any, context: Any) -> Any:
        offset, limit = _page(request.page_size, request.page_token)
        f = TaskFilter(
            document_id=request.document_id,
            assignee_agency_code=request.assignee_agency_code,
            assignee_user_id=request.assignee_user_id,
            statuses=tuple(TaskStatus(s) for s in request.statuses),
            due_before=parse_date(request.due_before, "due_before"),
        )
        tasks = await self._run(self.app.list_tasks, f, request.overdue_only, offset, limit + 1)
        today = self.app.today()
        return pb.ListDirectiveTasksResponse(
            tasks=[task_to_proto(t, today) for t in tasks[:limit]],
            next_page_token=str(offset + limit) if len(tasks) > limit else "",
        )

    @rpc
    async def GetDocumentFigures(self, request: Any, context: Any) -> Any:
        start = parse_date(request.from_date, "from_date") or date(self.app.today().year, 1, 1)
        end = parse_date(request.to_date, "to_date") or self.app.today()
        total, rows = await self._run(
            self.app.figures, request.agency_code, request.include_sub_agencies, start, end
        )
        return pb.GetDocumentFiguresResponse(
            total=figures_to_proto(total), by_agency=[figures_to_proto(r) for r in rows]
        )

    # --- delegations (ủy quyền) ------------------------------------------------------------

    @rpc
    async def GrantDelegation(self, request: Any, context: Any) -> Any:
        m = request.delegation
        d = await self._run(
            self.app.grant_delegation,
            m.agency_code.strip(),
            m.delegate_user_id.strip(),
            m.delegate_agency_code.strip(),
            frozenset(int(s) for s in m.scopes),
            m.valid_from.ToDatetime(tzinfo=UTC) if m.HasField("valid_from") else None,
            m.valid_until.ToDatetime(tzinfo=UTC) if m.HasField("valid_until") else None,
            m.note,
        )
        return pb.GrantDelegationResponse(delegation=delegation_to_proto(d, self.app.now()))

    @rpc
    async def RevokeDelegation(self, request: Any, context: Any) -> Any:
        d = await self._run(
            self.app.revoke_delegation, request.delegation_id.strip(), request.reason
        )
        return pb.RevokeDelegationResponse(delegation=delegation_to_proto(d, self.app.now()))

    @rpc
    async def ListDelegations(self, request: Any, context: Any) -> Any:
        found = await self._run(self.app.list_delegations, request.agency_code.strip())
        now = self.app.now()
        return pb.ListDelegationsResponse(delegations=[delegation_to_proto(d, now) for d in found])
