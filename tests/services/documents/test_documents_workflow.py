"""The outgoing workflow end to end over gRPC with real tokens: draft → review → sign → issue
→ send; the recipient agency registers it from the exchange, and its statuses come back."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_status import rpc_status

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.db import outbox_table
from services.documents.adapters import tables as t

from .workflow_support import STP, UBND, Env, draft, env_fixture, eventually, to_signed  # noqa: F401


def year() -> int:
    return date.today().year


def outbox_types(env: Env) -> list[str]:
    with env.runtime.engine.connect() as conn:
        return [
            r.event_type
            for r in conn.execute(sa.select(outbox_table.c.event_type).order_by(outbox_table.c.id))
        ]


async def test_draft_to_sent_and_back(env: Env) -> None:
    d = (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document
    assert d.outgoing_status == pb.OUTGOING_STATUS_DRAFT and d.draft_version == 1
    # A second version of the draft is kept.
    changed = pb.Document(id=d.id, etag=d.etag, subject="Về việc ban hành Kế hoạch CCHC năm 2026")
    d = (
        await env.as_("ubnd-cv").UpdateDocument(
            pb.UpdateDocumentRequest(document=changed, update_mask=FieldMask(paths=["subject"]))
        )
    ).document
    versions = (
        await env.as_("ubnd-ld").ListDocumentVersions(
            pb.ListDocumentVersionsRequest(document_id=d.id)
        )
    ).versions
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].document.subject.startswith("Về việc ban hành Kế hoạch cải cách")
    assert versions[1].document.subject == "Về việc ban hành Kế hoạch CCHC năm 2026"

    signed = await to_signed(env, None)
    assert signed.outgoing_status == pb.OUTGOING_STATUS_SIGNED
    assert signed.signer.user_id == "ubnd-ld" and signed.signer.mode == pb.SIGNING_MODE_DEPUTY
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    assert issued.outgoing_status == pb.OUTGOING_STATUS_ISSUED
    assert issued.number == 1 and issued.number_notation == "01/QĐ-UBND"
    assert issued.promulgation_place == "Hà Tĩnh" and issued.promulgation_date
    sent = (
        await env.as_("ubnd-vt").SendDocument(
            pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
        )
    ).document
    assert sent.outgoing_status == pb.OUTGOING_STATUS_SENT and sent.electronic
    main = next(r for r in sent.recipients if r.agency_code == STP)
    assert main.delivery_status == pb.DELIVERY_STATUS_SENT
    archive = next(r for r in sent.recipients if r.kind == pb.RECIPIENT_KIND_ARCHIVE)
    assert archive.delivery_status == pb.DELIVERY_STATUS_PENDING  # never sent

    # The Sở Tư pháp registers it from the exchange: status 01, its own incoming number.
    async def arrived() -> pb.Document | None:
        page = await env.as_("stp-vt").ListDocuments(
            pb.ListDocumentsRequest(agency_code=STP, direction=pb.DIRECTION_INCOMING)
        )
        return page.documents[0] if page.documents else None

    inc = await eventually(arrived)
    assert inc.incoming_status == pb.INCOMING_STATUS_ARRIVED
    assert inc.number_notation == "01/QĐ-UBND" and inc.sender_agency_code == UBND
    assert inc.arrival_number == 1 and inc.electronic and inc.edxml_message_id
    assert inc.signer.full_name == "Nguyễn Văn An" and inc.signer.mode == pb.SIGNING_MODE_DEPUTY
    assert inc.document_type_code == "QĐ" and inc.priority == pb.PRIORITY_URGENT

    # Accept, assign, handle, complete; each status flows back to the sender.
    inc = (
        await env.as_("stp-vt").AcceptDocument(
            pb.AcceptDocumentRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    inc = (
        await env.as_("stp-ld").AssignDocument(
            pb.AssignDocumentRequest(
                document_id=inc.id,
                etag=inc.etag,
                handler_user_id="stp-cv",
                due_date="2030-01-31",
                comment="Đồng chí chủ trì tham mưu.",
            )
        )
    ).document
    assert inc.incoming_status == pb.INCOMING_STATUS_ASSIGNED and inc.due_date == "2030-01-31"
    inc = (
        await env.as_("stp-cv").StartProcessing(
            pb.StartProcessingRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    inc = (
        await env.as_("stp-cv").CompleteDocument(
            pb.CompleteDocumentRequest(
                document_id=inc.id, etag=inc.etag, result_note="Đã tham mưu."
            )
        )
    ).document
    assert inc.incoming_status == pb.INCOMING_STATUS_DONE and inc.HasField("complete_time")

    async def acknowledged() -> bool:
        doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
        r = next(r for r in doc.recipients if r.agency_code == STP)
        return (
            r.last_incoming_status == pb.INCOMING_STATUS_DONE
            and r.delivery_status == pb.DELIVERY_STATUS_ACKNOWLEDGED
        )

    await eventually(acknowledged)
    history = (
        await env.as_("ubnd-vt").ListDocumentHistory(
            pb.ListDocumentHistoryRequest(document_id=sent.id)
        )
    ).entries
    actions = [h.action for h in history]
    assert actions[:5] == ["create_draft", "submit_for_review", "approve", "sign", "issue"]
    assert [a for a in actions if a.startswith("recipient_status_")] == [
        "recipient_status_01",
        "recipient_status_03",
        "recipient_status_04",
        "recipient_status_05",
        "recipient_status_06",
    ]
    types = outbox_types(env)
    for name in (
        "DocumentDrafted",
        "OutgoingStatusChanged",
        "DocumentIssued",
        "DocumentSent",
        "DocumentReceived",
        "IncomingStatusChanged",
        "DocumentAssigned",
        "RecipientStatusReported",
    ):
        assert f"lgsp.api.documents.v1.{name}" in types, name
    assert "lgsp.api.documents.v1.ExchangeMessage" in types


async def test_issued_event_carries_what_search_indexes(env: Env) -> None:
    signed = await to_signed(env)
    await env.as_("ubnd-vt").IssueDocument(
        pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
    )
    with env.runtime.engine.connect() as conn:
        value = conn.execute(
            sa.select(outbox_table.c.value).where(
                outbox_table.c.event_type == "lgsp.api.documents.v1.DocumentIssued"
            )
        ).scalar_one()
    issued = events.payload_of(events.decode(value))
    doc = issued.document  # type: ignore[attr-defined]
    assert doc.number_notation == "01/QĐ-UBND" and doc.subject and doc.summary
    assert doc.document_type_code == "QĐ" and doc.agency_code == UBND
    assert [r.agency_code for r in doc.recipients if r.agency_code] == [STP]
    assert doc.signer.full_name == "Nguyễn Văn An" and doc.promulgation_date
    assert issued.actor_id == "ubnd-vt"  # type: ignore[attr-defined]


async def test_legal_document_notation_and_own_book(env: Env) -> None:
    signed = await to_signed(env, draft(document_type_code="QĐ-QPPL"))
    legal = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    assert legal.number_notation == f"01/{legal.promulgation_date[:4]}/QĐ-UBND"
    # A công văn uses its own administrative book and the drafting unit in the notation.
    cv = await to_signed(env, draft(document_type_code="CV", drafting_unit="VP"))
    cv = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=cv.id, etag=cv.etag)
        )
    ).document
    assert cv.number_notation == "01/UBND-VP"
    qd = await to_signed(env)
    qd = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=qd.id, etag=qd.etag)
        )
    ).document
    assert qd.number_notation == "02/QĐ-UBND"  # one administrative book for every type


async def test_return_to_author_and_stale_etag(env: Env) -> None:
    d = (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document
    d2 = (
        await env.as_("ubnd-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="ubnd-ld")
        )
    ).document
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await env.as_("ubnd-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id, etag=d.etag, decision=pb.REVIEW_DECISION_RETURN, comment="x"
            )
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await env.as_("ubnd-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id, etag=d2.etag, decision=pb.REVIEW_DECISION_RETURN
            )
        )
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    back = (
        await env.as_("ubnd-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d2.etag,
                decision=pb.REVIEW_DECISION_RETURN,
                comment="Bổ sung căn cứ pháp lý.",
            )
        )
    ).document
    assert back.outgoing_status == pb.OUTGOING_STATUS_DRAFT and back.waiting_on_user_id == "ubnd-cv"
    # Issuing a draft is refused with the reason, and nothing is numbered.
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=back.id, etag=back.etag)
        )
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "DRAFT" in (early.value.details() or "")
    with env.runtime.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.number_books)).scalar_one() == 0
        )


def violation_fields(error: grpc.aio.AioRpcError) -> list[str]:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(error)
    assert status is not None
    fields = []
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        if detail.Unpack(br):
            fields += [v.field for v in br.field_violations]
    return fields


__all__ = ["violation_fields", "year"]
