"""Incoming documents: registered by a clerk or from the exchange, refused, recalled, updated
and replaced by the sender (BussinessDocType 1/2/3), with statuses back to the sender."""

from __future__ import annotations

import uuid
from dataclasses import replace

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.db import UnitOfWork
from services.documents import edxml
from services.documents.transport import BusTransport, Delivery

from .workflow_support import (  # noqa: F401
    STP,
    UBND,
    Env,
    dead_letters,
    draft,
    env_fixture,
    eventually,
    to_signed,
)


async def sent_to_stp(env: Env) -> tuple[pb.Document, pb.Document]:
    signed = await to_signed(env)
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    sent = (
        await env.as_("ubnd-vt").SendDocument(
            pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
        )
    ).document
    incoming = await eventually(lambda: incoming_of_stp(env))
    # The status 01 coming back changes the sender's document (its etag): wait for it and
    # read it again, so a step the caller takes next does not race it (ABORTED).
    await eventually(lambda: _is(env, sent.id, pb.INCOMING_STATUS_ARRIVED))
    sent = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
    return sent, incoming[0]


async def incoming_of_stp(env: Env) -> list[pb.Document]:
    page = await env.as_("stp-vt").ListDocuments(
        pb.ListDocumentsRequest(agency_code=STP, direction=pb.DIRECTION_INCOMING)
    )
    return list(page.documents)


async def recipient_status(env: Env, doc_id: str) -> int:
    doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=doc_id))).document
    return next(r.last_incoming_status for r in doc.recipients if r.agency_code == STP)


async def test_clerk_registers_paper_documents_in_sequence(env: Env) -> None:
    numbers = []
    for i in range(3):
        doc = pb.Document(
            agency_code=STP,
            document_type_code="CV",
            number_notation=f"{i + 40}/UBND-NC",
            subject="Về việc rà soát thủ tục hành chính",
            sender_agency_name="Ủy ban nhân dân xã Thạch Hà",
            promulgation_date="2026-03-02",
        )
        got = (
            await env.as_("stp-vt").RegisterIncoming(
                pb.RegisterIncomingRequest(document=doc, request_id=f"req-{i}")
            )
        ).document
        numbers.append(got.arrival_number)
        assert got.incoming_status == pb.INCOMING_STATUS_ARRIVED and not got.electronic
        assert got.number == i + 40 and got.notation == "UBND-NC"
    assert numbers == [1, 2, 3]
    # The same request again registers nothing new.
    again = (
        await env.as_("stp-vt").RegisterIncoming(
            pb.RegisterIncomingRequest(
                document=pb.Document(
                    agency_code=STP,
                    document_type_code="CV",
                    number_notation="40/UBND-NC",
                    subject="Về việc rà soát thủ tục hành chính",
                    sender_agency_name="UBND xã Thạch Hà",
                ),
                request_id="req-0",
            )
        )
    ).document
    assert again.arrival_number == 1
    assert len(await incoming_of_stp(env)) == 3
    # A specialist cannot register; a missing sender is named.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-cv").RegisterIncoming(
            pb.RegisterIncomingRequest(document=pb.Document(agency_code=STP))
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-vt").RegisterIncoming(
            pb.RegisterIncomingRequest(
                document=pb.Document(
                    agency_code=STP, number_notation="1/X", subject="x", document_type_code="CV"
                )
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_refusal_goes_back_to_the_sender(env: Env) -> None:
    sent, inc = await sent_to_stp(env)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-vt").RefuseDocument(
            pb.RefuseDocumentRequest(document_id=inc.id, etag=inc.etag)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    refused = (
        await env.as_("stp-vt").RefuseDocument(
            pb.RefuseDocumentRequest(
                document_id=inc.id, etag=inc.etag, reason="Không đúng thẩm quyền giải quyết."
            )
        )
    ).document
    assert refused.incoming_status == pb.INCOMING_STATUS_REFUSED
    await eventually(lambda: _is(env, sent.id, pb.INCOMING_STATUS_REFUSED))
    history = (
        await env.as_("ubnd-vt").ListDocumentHistory(
            pb.ListDocumentHistoryRequest(document_id=sent.id)
        )
    ).entries
    assert history[-1].comment == "Không đúng thẩm quyền giải quyết."
    # A refused document cannot be accepted afterwards.
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await env.as_("stp-vt").AcceptDocument(
            pb.AcceptDocumentRequest(document_id=inc.id, etag=refused.etag)
        )
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _is(env: Env, doc_id: str, status: int) -> bool:
    return await recipient_status(env, doc_id) == status


async def test_recall_reaches_the_recipient_and_15_agrees_to_it(env: Env) -> None:
    sent, inc = await sent_to_stp(env)
    recalled = (
        await env.as_("ubnd-vt").RecallDocument(
            pb.RecallDocumentRequest(
                document_id=sent.id, etag=sent.etag, reason="Văn bản ban hành sai thể thức."
            )
        )
    ).document
    assert recalled.outgoing_status == pb.OUTGOING_STATUS_RECALLED

    async def closed() -> bool:
        doc = (await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=inc.id))).document
        return doc.incoming_status == pb.INCOMING_STATUS_RECALLED

    await eventually(closed)
    # The recipient agrees to the recall (15, QCVN 102:2016 / the axis SDKs' status codes).
    await eventually(lambda: _is(env, sent.id, pb.INCOMING_STATUS_RECALL_ACCEPTED))


def deliver(env: Env, pkg: edxml.Package, message_id: str | None = None) -> None:
    """A package from the sender's system straight onto the exchange (as the axis would)."""
    with UnitOfWork(env.runtime.engine, source="documents") as uow:
        BusTransport().send(
            uow,
            Delivery(
                message_id or str(uuid.uuid4()),
                pkg.header.from_.organ_id,
                STP,
                edxml.build_package(pkg),
            ),
        )
        uow.commit()
    env.runtime.after_commit()


async def test_update_and_replace_from_the_sender(env: Env) -> None:
    sent, inc = await sent_to_stp(env)
    app = env.app
    with app._read() as conn:  # the package the sender built
        from services.documents.adapters.repository import Repository

        outgoing = Repository(conn).get(sent.id)
    assert outgoing is not None
    base = app.exchange.package(
        outgoing, [r for r in outgoing.recipients if r.agency_code], app.now()
    )

    # 2: update — same document, corrected subject; registered once even if delivered twice.
    update = replace(
        base,
        header=replace(base.header, subject="Về việc ban hành Kế hoạch (đã đính chính)"),
        business=edxml.Business(
            doc_type=edxml.BusinessDocType.UPDATE, reason="Đính chính trích yếu"
        ),
    )
    deliver(env, update, "msg-update")
    deliver(env, update, "msg-update")

    async def updated() -> bool:
        doc = (await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=inc.id))).document
        return doc.subject == "Về việc ban hành Kế hoạch (đã đính chính)"

    await eventually(updated)
    assert len(await incoming_of_stp(env)) == 1

    # 3: replace — a new document replaces the old one, which is closed as recalled.
    new_header = replace(
        base.header,
        code=edxml.Code("02", "QĐ-UBND"),
        subject="Về việc ban hành Kế hoạch (thay thế)",
        response_for=(
            edxml.ResponseFor(
                organ_id=UBND,
                code=inc.number_notation,
                promulgation_date=base.header.promulgation_info.promulgation_date,
            ),
        ),
    )
    deliver(
        env,
        replace(
            base,
            header=new_header,
            business=edxml.Business(doc_type=edxml.BusinessDocType.REPLACE, reason="Thay thế"),
        ),
    )
    docs = await eventually(lambda: _two(env))
    new = next(d for d in docs if d.number_notation == "02/QĐ-UBND")
    old = next(d for d in docs if d.id == inc.id)
    assert new.related_document_id == inc.id and new.incoming_status == pb.INCOMING_STATUS_ARRIVED
    assert old.incoming_status == pb.INCOMING_STATUS_RECALLED
    assert new.arrival_number == 2


async def _two(env: Env) -> list[pb.Document] | None:
    docs = await incoming_of_stp(env)
    if len(docs) == 2 and any(d.incoming_status == pb.INCOMING_STATUS_RECALLED for d in docs):
        return docs
    return None


async def test_malformed_edxml_goes_to_the_dead_letters(env: Env) -> None:
    with UnitOfWork(env.runtime.engine, source="documents") as uow:
        BusTransport().send(
            uow, Delivery("bad-1", UBND, STP, b"<edXMLEnvelope>not edXML</edXMLEnvelope>")
        )
        uow.commit()
    env.runtime.after_commit()
    records = await dead_letters(env, "lgsp.exchange.v1.dlq")
    assert records[0].headers.get("dlq_reason") == b"handler-failed"
    assert b"refused" in records[0].headers.get("dlq_error", b"")
    assert await incoming_of_stp(env) == []
