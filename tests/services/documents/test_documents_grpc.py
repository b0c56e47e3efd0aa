"""Bad input over gRPC, each answered with the right status and nothing half-stored."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import sqlalchemy as sa

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.db import outbox_table
from services.documents.adapters import tables as t

from .test_documents_workflow import violation_fields
from .workflow_support import STP, Env, draft, env_fixture, to_signed  # noqa: F401


def count(env: Env, table: sa.Table, *where: object) -> int:
    with env.runtime.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
        )


async def test_unknown_recipient_agency_is_invalid_argument(env: Env) -> None:
    bad = draft(
        recipients=[
            pb.Recipient(agency_code=STP, name="Sở Tư pháp"),
            pb.Recipient(agency_code="000.99.99.H27", name="Sở Không Tồn Tại"),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=bad))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_fields(e.value) == ["document.recipients[1].agency_code"]
    assert count(env, t.documents) == 0 and count(env, outbox_table) == 0


async def test_confidential_document_is_never_sent_electronically(env: Env) -> None:
    signed = await to_signed(env, draft(confidentiality=pb.CONFIDENTIALITY_CONFIDENTIAL))
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    exchange_before = count(env, outbox_table, outbox_table.c.topic == "lgsp.exchange.v1")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-vt").SendDocument(
            pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "confidential" in (e.value.details() or "")
    after = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=issued.id))).document
    assert after.outgoing_status == pb.OUTGOING_STATUS_ISSUED and after.etag == issued.etag
    assert (
        count(env, outbox_table, outbox_table.c.topic == "lgsp.exchange.v1") == exchange_before == 0
    )
    assert count(env, outbox_table, outbox_table.c.event_type.like("%DocumentSent")) == 0
    # Its events never carry the subject line.
    with env.runtime.engine.connect() as conn:
        from lgsp import events

        for value in conn.execute(sa.select(outbox_table.c.value)).scalars():
            payload = events.payload_of(events.decode(value))
            if hasattr(payload, "document"):
                assert payload.document.subject == ""


async def test_specialist_cannot_sign_and_nothing_changes(env: Env) -> None:
    d = (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document
    d = (
        await env.as_("ubnd-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="ubnd-ld")
        )
    ).document
    with pytest.raises(grpc.aio.AioRpcError) as review:
        await env.as_("ubnd-cv").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                decision=pb.REVIEW_DECISION_APPROVE,
                signer_user_id="ubnd-cv",
            )
        )
    assert review.value.code() == grpc.StatusCode.PERMISSION_DENIED
    d = (
        await env.as_("ubnd-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                decision=pb.REVIEW_DECISION_APPROVE,
                signer_user_id="ubnd-ld",
            )
        )
    ).document
    events_before = count(env, outbox_table)
    signer = pb.Signer(
        full_name="Trần Thị Bình", position="CHUYÊN VIÊN", mode=pb.SIGNING_MODE_DIRECT
    )
    with pytest.raises(grpc.aio.AioRpcError) as sign:
        await env.as_("ubnd-cv").SignDocument(
            pb.SignDocumentRequest(document_id=d.id, etag=d.etag, signer=signer)
        )
    assert sign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "leader" in (sign.value.details() or "")
    # Another leader is not the signer the reviewer named.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await env.as_("ubnd-ld2").SignDocument(
            pb.SignDocumentRequest(document_id=d.id, etag=d.etag, signer=signer)
        )
    assert other.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    same = (await env.as_("ubnd-ld").GetDocument(pb.GetDocumentRequest(id=d.id))).document
    assert same.outgoing_status == pb.OUTGOING_STATUS_AWAITING_SIGNATURE and same.etag == d.etag
    assert count(env, outbox_table) == events_before


async def test_another_agency_cannot_read_a_document(env: Env) -> None:
    d = (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("snv-cv").GetDocument(pb.GetDocumentRequest(id=d.id))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await env.as_("snv-cv").GetDocument(
            pb.GetDocumentRequest(id="00000000-0000-4000-8000-000000000000")
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert (e.value.details() or "").replace(d.id, "X") == (missing.value.details() or "").replace(
        "00000000-0000-4000-8000-000000000000", "X"
    )  # the same answer: existence is not leaked
    # Even a recipient agency cannot read the draft before it is sent.
    with pytest.raises(grpc.aio.AioRpcError) as recipient:
        await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=d.id))
    assert recipient.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as listing:
        await env.as_("snv-cv").ListDocuments(pb.ListDocumentsRequest(agency_code=d.agency_code))
    assert listing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await env.stub.GetDocument(pb.GetDocumentRequest(id=d.id))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_two_clerks_issue_the_same_document_at_once(env: Env) -> None:
    signed = await to_signed(env)
    req = pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
    results = await asyncio.gather(
        env.as_("ubnd-vt").IssueDocument(req),
        env.as_("ubnd-vt2").IssueDocument(req),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(failed) == 1
    assert failed[0].code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
    assert ok[0].document.number_notation == "01/QĐ-UBND"
    with env.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(t.number_books.c.last_number)).scalars().all() == [1]
    assert count(env, outbox_table, outbox_table.c.event_type.like("%DocumentIssued")) == 1
    # The next document gets 02: the losing clerk burned no number.
    nxt = await to_signed(env)
    nxt = (
        await env.as_("ubnd-vt2").IssueDocument(
            pb.IssueDocumentRequest(document_id=nxt.id, etag=nxt.etag)
        )
    ).document
    assert nxt.number_notation == "02/QĐ-UBND"


async def test_bad_fields_name_the_field(env: Env) -> None:
    cases = [
        (draft(document_type_code="XYZ"), "document.document_type_code"),
        (draft(subject="  "), "document.subject"),
        (draft(due_date="31/12/2026"), "document.due_date"),
        (draft(agency_code="000.77.77.H27"), "document.agency_code"),
    ]
    for doc, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=doc))
        if field == "document.agency_code":
            # No role in an agency that does not exist: refused before anything is looked at.
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            continue
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert violation_fields(e.value) == [field]
    assert count(env, t.documents) == 0
