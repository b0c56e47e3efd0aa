"""Issue 17 over the bus: every refused package answered with 02 and its reason, a recall
of a finished document refused with 16 (both sides see it), a re-send under a new DocumentId
registered once, arrival checks at RegisterIncoming and on packages, and a main text signed
by another agency's official shown to the clerk."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.db import UnitOfWork
from lgsp.workdays import PROVINCE_TZ
from services.documents import edxml
from services.documents.adapters.repository import Repository
from services.documents.transport import BusTransport, Delivery
from tests.support.pdf import minimal_pdf

from .test_documents_incoming import deliver, incoming_of_stp, recipient_status, sent_to_stp
from .workflow_support import (  # noqa: F401
    SNV,
    STP,
    UBND,
    Env,
    env_fixture,
    eventually,
    to_signed,
)

DLQ = "lgsp.exchange.v1.dlq"


async def sender_package(env: Env, sent: pb.Document) -> edxml.Package:
    """The package the sender's system built for `sent` (to deliver variants of it)."""
    with env.app._read() as conn:
        outgoing = Repository(conn).get(sent.id)
    assert outgoing is not None
    return env.app.exchange.package(
        outgoing, [r for r in outgoing.recipients if r.agency_code], env.app.now()
    )


async def history(env: Env, user: str, doc_id: str) -> list[pb.HistoryEntry]:
    reply = await env.as_(user).ListDocumentHistory(
        pb.ListDocumentHistoryRequest(document_id=doc_id)
    )
    return list(reply.entries)


async def test_register_incoming_refuses_bad_numbers_and_dates_naming_the_field(
    env: Env,
) -> None:
    today = env.app.today()
    base = pb.Document(
        agency_code=STP,
        document_type_code="CV",
        number_notation="12/UBND-VX",
        subject="Về việc báo cáo",
        sender_agency_name="UBND xã Cẩm Xuyên",
        promulgation_date=today.isoformat(),
    )
    cases = [
        ({"number_notation": "abc"}, "document.number_notation"),
        ({"number_notation": "12"}, "document.number_notation"),
        ({"promulgation_date": (today + timedelta(days=1)).isoformat()}, "promulgation_date"),
        ({"due_date": (today - timedelta(days=1)).isoformat()}, "document.due_date"),
        # A sender's code, when given, is an identifier code: it is what finds the document
        # again when its electronic copy arrives.
        ({"sender_agency_code": "not a code"}, "document.sender_agency_code"),
        ({"sender_agency_code": "000.00.00.h27"}, "document.sender_agency_code"),
    ]
    for change, field in cases:
        doc = pb.Document()
        doc.CopyFrom(base)
        for name, value in change.items():
            setattr(doc, name, value)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await env.as_("stp-vt").RegisterIncoming(pb.RegisterIncomingRequest(document=doc))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, change
        assert field in (e.value.details() or ""), (change, e.value.details())
    assert await incoming_of_stp(env) == []
    ok = await env.as_("stp-vt").RegisterIncoming(pb.RegisterIncomingRequest(document=base))
    assert ok.document.arrival_number == 1  # nothing refused took a number


async def test_register_incoming_does_not_number_the_same_paper_document_twice(env: Env) -> None:
    """A clerk entering the same letter again (sender, number and notation, date) under a
    new request id gets ALREADY_EXISTS naming the entry, not a second arrival number."""
    paper = pb.Document(
        agency_code=STP,
        document_type_code="CV",
        number_notation="45/UBND-VX",
        subject="Về việc tăng cường phòng chống dịch",
        sender_agency_code=UBND,
        sender_agency_name="Ủy ban nhân dân tỉnh Hà Tĩnh",
        promulgation_date=env.app.today().isoformat(),
    )
    first = await env.as_("stp-vt").RegisterIncoming(
        pb.RegisterIncomingRequest(document=paper, request_id="paper-1")
    )
    again = pb.Document()
    again.CopyFrom(paper)
    again.subject = "Tăng cường phòng chống dịch"  # typed again, a little differently
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("stp-vt").RegisterIncoming(
            pb.RegisterIncomingRequest(document=again, request_id="paper-2")
        )
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "arrival number 1" in (e.value.details() or "")
    assert [d.id for d in await incoming_of_stp(env)] == [first.document.id]
    # Another date is another document; so is one from another sender.
    other = pb.Document()
    other.CopyFrom(paper)
    other.sender_agency_code = SNV
    second = await env.as_("stp-vt").RegisterIncoming(
        pb.RegisterIncomingRequest(document=other, request_id="paper-3")
    )
    assert second.document.arrival_number == 2


async def test_recall_of_a_finished_document_is_refused_with_16_both_ways(env: Env) -> None:
    sent, inc = await sent_to_stp(env)
    inc = (
        await env.as_("stp-vt").AcceptDocument(
            pb.AcceptDocumentRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    inc = (
        await env.as_("stp-ld").AssignDocument(
            pb.AssignDocumentRequest(document_id=inc.id, etag=inc.etag, handler_user_id="stp-cv")
        )
    ).document
    inc = (
        await env.as_("stp-cv").StartProcessing(
            pb.StartProcessingRequest(document_id=inc.id, etag=inc.etag)
        )
    ).document
    await env.as_("stp-cv").CompleteDocument(
        pb.CompleteDocumentRequest(document_id=inc.id, etag=inc.etag, result_note="Đã xong")
    )
    await eventually(
        lambda: _status_is(env, sent.id, pb.INCOMING_STATUS_DONE)
    )  # 06 reached the sender
    sent = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent.id))).document
    await env.as_("ubnd-vt").RecallDocument(
        pb.RecallDocumentRequest(document_id=sent.id, etag=sent.etag, reason="Ban hành nhầm.")
    )
    # The sender learns the recall was refused (16) and why.
    await eventually(lambda: _status_is(env, sent.id, pb.INCOMING_STATUS_RECALL_REFUSED))
    entries = await history(env, "ubnd-vt", sent.id)
    assert entries[-1].action == "recipient_status_16"
    assert entries[-1].comment.startswith("Văn bản đã được xử lý xong ngày")
    # The recipient's document stays DONE and its clerk sees the recall in the history.
    done = (await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=inc.id))).document
    assert done.incoming_status == pb.INCOMING_STATUS_DONE
    refused = [e for e in await history(env, "stp-vt", inc.id) if e.action == "recall_refused"]
    assert len(refused) == 1 and refused[0].comment.startswith("Ban hành nhầm.")


async def _status_is(env: Env, doc_id: str, status: int) -> bool:
    return await recipient_status(env, doc_id) == status


async def test_a_resend_under_a_new_document_id_is_registered_once(env: Env) -> None:
    sent, inc = await sent_to_stp(env)
    pkg = await sender_package(env, sent)
    again = replace(pkg, header=replace(pkg.header, document_id=pkg.header.document_id + ",2"))
    deliver(env, again, "resend-1")

    async def noted() -> list[pb.HistoryEntry]:
        return [e for e in await history(env, "stp-vt", inc.id) if e.action == "duplicate_arrival"]

    [entry] = await eventually(noted)
    assert "số 1" in entry.comment and "resend-1" in entry.comment
    docs = await incoming_of_stp(env)
    assert [d.id for d in docs] == [inc.id]
    # A document refused before may be sent again: that one is registered.
    refused = (
        await env.as_("stp-vt").RefuseDocument(
            pb.RefuseDocumentRequest(document_id=inc.id, etag=docs[0].etag, reason="Thiếu phụ lục.")
        )
    ).document
    assert refused.incoming_status == pb.INCOMING_STATUS_REFUSED
    deliver(env, again, "resend-2")

    async def two() -> list[pb.Document] | None:
        found = await incoming_of_stp(env)
        return found if len(found) == 2 else None

    docs = await eventually(two)
    fresh = next(d for d in docs if d.id != inc.id)
    assert fresh.incoming_status == pb.INCOMING_STATUS_ARRIVED and fresh.arrival_number == 2


async def test_a_package_failing_the_checks_or_the_schema_is_answered_with_02(env: Env) -> None:
    sent, _ = await sent_to_stp(env)
    pkg = await sender_package(env, sent)
    on = pkg.header.promulgation_info.promulgation_date
    # Parsed, but its due date is before its promulgation date: refused at the door.
    early = replace(
        pkg,
        header=replace(
            pkg.header,
            code=edxml.Code("77", pkg.header.code.code_notation),
            due_date=on - timedelta(days=3),
            document_id=pkg.header.document_id + ",due",
        ),
    )
    deliver(env, early, "early-due")

    # Bytes our schema refuses (30 February), still naming sender and DocumentId.
    bad = edxml.build_package(pkg).replace(
        f"PromulgationDate>{on:%Y/%m/%d}<".encode(), b"PromulgationDate>2026/02/30<", 1
    )
    assert bad != edxml.build_package(pkg)
    with UnitOfWork(env.runtime.engine, source="documents") as uow:
        BusTransport().send(uow, Delivery("bad-date", UBND, STP, bad))
        uow.commit()
    env.runtime.after_commit()

    async def answered() -> list[pb.HistoryEntry] | None:
        entries = [e for e in await history(env, "ubnd-vt", sent.id) if e.to_status == "REFUSED"]
        return entries if entries else None

    [refusal] = await eventually(answered)
    assert refusal.action == "recipient_status_02"
    assert refusal.comment.startswith("Gói tin không đúng quy chuẩn QCVN 102:2016 tại phần tử")
    assert "PromulgationDate" in refusal.comment

    async def early_refused() -> list[pb.Document]:
        return [d for d in await incoming_of_stp(env) if d.number_notation.startswith("77/")]

    [door] = await eventually(early_refused)
    assert door.incoming_status == pb.INCOMING_STATUS_REFUSED
    assert re.match(r"Hạn xử lý \d\d/\d\d/\d{4} trước ngày ban hành", door.result_note)
    assert door.arrival_number == 0  # refused at the door: no number in the incoming book
    assert len(await incoming_of_stp(env)) == 2  # the first and the refused one, nothing else
    assert await no_dead_letters(env)


async def no_dead_letters(env: Env) -> bool:
    """Nothing on the exchange's dead-letter topic (read from its start by a new group)."""
    assert env.runtime.bus is not None
    consumer = env.runtime.bus.consumer(f"dlq-none-{uuid.uuid4().hex[:6]}", [DLQ])
    try:
        return all([await consumer.poll(timeout=0.3) == [] for _ in range(3)])
    finally:
        await consumer.close()


async def test_a_main_text_signed_by_another_agency_is_shown_to_the_clerk(env: Env) -> None:
    ca = env.files.verifier.ca  # type: ignore[union-attr]
    cred = ca.issue_official(
        full_name="Trần Văn Bình",
        agency_name="Ủy ban nhân dân tỉnh Hà Tĩnh",
        agency_code=UBND,
        email="binh.tv@hatinh.gov.vn",
        unit="Văn phòng",
    )
    from services.documents.signing import sign_pdf

    # pyHanko runs its own event loop: sign from a thread.
    signed = await asyncio.to_thread(
        sign_pdf, minimal_pdf(), cred, reason="Ký ban hành", location="Hà Tĩnh"
    )
    pkg = edxml.Package(
        header=edxml.MessageHeader(
            from_=edxml.Organization(organ_id=SNV, organ_name="Sở Nội vụ"),
            to=(edxml.Organization(organ_id=STP, organ_name="Sở Tư pháp"),),
            code=edxml.Code("31", "SNV-TCBC"),
            promulgation_info=edxml.PromulgationInfo("Hà Tĩnh", env.app.today()),
            document_type=edxml.DocumentType(2, "Công văn"),
            subject="Về việc rà soát biên chế",
            signer_info=edxml.SignerInfo(full_name="Trần Văn Bình"),
            document_id=f"{SNV},{env.app.today():%Y/%m/%d},31/SNV-TCBC",
        ),
        attachments=(
            edxml.Attachment("file1", "cong-van.pdf", "application/pdf", signed, "Văn bản chính"),
        ),
    )
    deliver(env, pkg, "signed-elsewhere")
    [doc] = await eventually(lambda: incoming_of_stp(env))
    assert doc.incoming_status == pb.INCOMING_STATUS_ARRIVED and doc.digitally_signed
    assert doc.sender_agency_code == SNV and doc.signer_agency_code == UBND
    [warning] = doc.warnings
    assert warning.code == "SIGNER_AGENCY_MISMATCH"
    assert UBND in warning.message and SNV in warning.message


async def test_the_electronic_copy_of_a_document_registered_from_paper_is_not_numbered_again(
    env: Env,
) -> None:
    signed = await to_signed(env)
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document
    paper = (
        await env.as_("stp-vt").RegisterIncoming(
            pb.RegisterIncomingRequest(
                document=pb.Document(
                    agency_code=STP,
                    document_type_code=issued.document_type_code,
                    number_notation=issued.number_notation,
                    subject=issued.subject,
                    sender_agency_code=UBND,
                    sender_agency_name="Ủy ban nhân dân tỉnh Hà Tĩnh",
                    promulgation_date=issued.promulgation_date,
                )
            )
        )
    ).document
    sent = (
        await env.as_("ubnd-vt").SendDocument(
            pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
        )
    ).document
    # One number for the paper and the electronic copy (Nghị định 30/2020, Điều 22 khoản 2),
    # and the sender's package is still answered.
    await eventually(lambda: _status_is(env, sent.id, pb.INCOMING_STATUS_ARRIVED))
    assert [d.id for d in await incoming_of_stp(env)] == [paper.id]
    notes = [e for e in await history(env, "stp-vt", paper.id) if e.action == "duplicate_arrival"]
    assert len(notes) == 1


async def test_a_status_for_last_years_document_of_the_same_number_is_not_taken_for_this_one(
    env: Env,
) -> None:
    """Numbers restart every year (one book per agency and year): a status naming 01/… of
    last year must not land on this year's 01/…, which has its own recipients' answers."""
    sent, _ = await sent_to_stp(env)
    this_year = date.fromisoformat(sent.promulgation_date)

    def status(code: edxml.StatusCode, on: date, note: str) -> None:
        answer = edxml.Status(
            response_for=edxml.ResponseFor(
                organ_id=UBND, code=sent.number_notation, promulgation_date=on
            ),
            from_=edxml.Organization(organ_id=STP, organ_name="Sở Tư pháp"),
            status_code=code,
            description=note,
            timestamp=datetime.now(PROVINCE_TZ).replace(microsecond=0),
        )
        with UnitOfWork(env.runtime.engine, source="documents") as uow:
            BusTransport().send(
                uow, Delivery(str(uuid.uuid4()), STP, UBND, edxml.build_status(answer))
            )
            uow.commit()
        env.runtime.after_commit()

    status(edxml.StatusCode.DONE, this_year.replace(year=this_year.year - 1), "năm trước")
    status(edxml.StatusCode.ACCEPTED, this_year, "Đã tiếp nhận")  # the same partition: after
    await eventually(lambda: _status_is(env, sent.id, pb.INCOMING_STATUS_ACCEPTED))
    actions = [e.action for e in await history(env, "ubnd-vt", sent.id)]
    assert "recipient_status_06" not in actions
