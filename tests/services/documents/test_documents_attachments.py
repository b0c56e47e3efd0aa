"""Attachments over gRPC (streamed upload/download, limits, types, names, reading rights) and
digital signatures end to end: SignDocument signs the main PDF with the DevCA, the package
carries it to the other agency, which verifies it; tampered or revoked → refused with 02."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.rpc import error_details_pb2, status_pb2

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import documents_pb2_grpc, events_pb2
from lgsp.auth import Principal
from lgsp.cli import main as lgsp_main
from lgsp.db import outbox_table
from services.documents.adapters import tables as t
from services.documents.service_layer.attachments import Upload
from services.documents.signing import sign_pdf, verify_with_ca
from tests.support.pdf import minimal_pdf

from .workflow_support import (  # noqa: F401
    SIGNER,
    STP,
    UBND,
    Env,
    download,
    draft,
    env_fixture,
    eventually,
    to_signed_digitally,
    upload,
)

PDF = minimal_pdf("Quyet dinh so 12/QD-UBND ve cai cach hanh chinh")


def bad_field(e: grpc.aio.AioRpcError) -> list[str]:
    for key, value in e.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for d in status.details:
                br = error_details_pb2.BadRequest()
                if d.Unpack(br):
                    return [v.field for v in br.field_violations]
    return []


def rows(env: Env, table: sa.Table) -> int:
    with env.runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def stored_files(env: Env) -> list[str]:
    root = env.data_dir / "attachments" / "sha256"
    return [f for _, _, names in os.walk(root) for f in names]


async def new_draft(env: Env) -> pb.Document:
    return (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document


async def test_upload_and_download_round_trip_with_its_event(env: Env) -> None:
    d = await new_draft(env)
    appendix = "Danh mục thủ tục hành chính\n".encode() * 5000
    main = await upload(env, "ubnd-cv", d.id, PDF, file_name="../../etc/Quyết định.pdf")
    extra = await upload(
        env,
        "ubnd-cv",
        d.id,
        appendix,
        file_name="phu-luc.txt",
        content_type="text/plain",
        main=False,
    )
    assert main.file_name == "Quyết định.pdf" and main.main and main.version == 1
    assert main.size_bytes == len(PDF) and not extra.main
    got = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=d.id))).document
    assert [a.id for a in got.attachments] == [main.id, extra.id]
    meta, data = await download(env, "ubnd-ld", d.id, extra.id)
    assert data == appendix and meta.sha256 == extra.sha256
    with env.runtime.engine.connect() as conn:
        added = [
            events.payload_of(events.decode(v))
            for v in conn.execute(
                sa.select(outbox_table.c.value).where(
                    outbox_table.c.event_type.like("%AttachmentAdded")
                )
            ).scalars()
        ]
    assert {a.attachment.id for a in added} == {main.id, extra.id}
    assert all(isinstance(a, events_pb2.AttachmentAdded) for a in added)
    # A second main text replaces the first (version 2); the first stays downloadable.
    second = await upload(env, "ubnd-cv", d.id, minimal_pdf("ban sua"), file_name="v2.pdf")
    assert second.version == 2 and second.replaces_attachment_id == main.id
    got = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=d.id))).document
    assert [a.id for a in got.attachments] == [second.id, extra.id]
    assert (await download(env, "ubnd-cv", d.id, main.id))[1] == PDF


async def test_other_agencies_cannot_see_or_add_files(env: Env) -> None:
    d = await new_draft(env)
    att = await upload(env, "ubnd-cv", d.id, PDF)
    for user in ("snv-cv", "stp-vt"):  # STP is a recipient, but nothing was sent yet
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await download(env, user, d.id, att.id)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await upload(env, user, d.id, PDF)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    other = await new_draft(env)
    with pytest.raises(grpc.aio.AioRpcError) as e:  # an attachment of another document
        await download(env, "ubnd-cv", other.id, att.id)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as e:  # reads, but may not upload
        await upload(env, "ubnd-admin", d.id, PDF)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rows(env, t.attachments) == 1


async def test_limits_types_and_nothing_stored_when_refused(env: Env) -> None:
    d = await new_draft(env)
    env.files.max_file_bytes = 100_000
    big = PDF + b"%" * 200_000
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await upload(env, "ubnd-cv", d.id, big)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert bad_field(e.value) == ["metadata.size_bytes"]
    with pytest.raises(grpc.aio.AioRpcError) as e:  # size not declared: stopped mid-stream
        await upload(env, "ubnd-cv", d.id, big, size_bytes=0)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert bad_field(e.value) == ["chunk"]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await upload(env, "ubnd-cv", d.id, b"MZ\x90\x00" + b"\x00" * 500, file_name="a.pdf")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == ["chunk"]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await upload(env, "ubnd-cv", d.id, PDF, content_type="image/png")
    assert bad_field(e.value) == ["metadata.content_type"]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await upload(env, "ubnd-cv", d.id, PDF, size_bytes=len(PDF) + 1)
    assert bad_field(e.value) == ["metadata.size_bytes"]
    assert rows(env, t.attachments) == 0 and stored_files(env) == []


async def test_signed_document_travels_and_verifies(env: Env) -> None:
    signed = await to_signed_digitally(env, PDF)
    assert signed.digitally_signed
    doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=signed.id))).document
    (main,) = doc.attachments
    assert main.version == 2 and main.digitally_signed and main.signer_certificate_serial
    _, signed_pdf = await download(env, "ubnd-vt", doc.id, main.id)
    assert signed_pdf.startswith(PDF[:20]) and len(signed_pdf) > len(PDF)
    ca = env.files.verifier.ca  # type: ignore[union-attr]
    # pyHanko's validation runs its own event loop: call it from a thread.
    assert (await asyncio.to_thread(verify_with_ca, signed_pdf, ca)).valid
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=doc.id, etag=doc.etag)
        )
    ).document
    await env.as_("ubnd-vt").SendDocument(
        pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
    )
    inc = await eventually(lambda: incoming(env))
    assert inc.incoming_status == pb.INCOMING_STATUS_ARRIVED and inc.digitally_signed
    got = (await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=inc.id))).document
    (file,) = got.attachments
    assert file.main and file.digitally_signed and file.sha256 == main.sha256
    assert (await download(env, "stp-vt", inc.id, file.id))[1] == signed_pdf
    figures = (
        await env.as_("ubnd-admin").GetDocumentFigures(
            pb.GetDocumentFiguresRequest(agency_code="000.00.00.H27")
        )
    ).total
    assert figures.outgoing_digitally_signed == 1


async def incoming(env: Env) -> pb.Document | None:
    page = await env.as_("stp-vt").ListDocuments(
        pb.ListDocumentsRequest(agency_code=STP, direction=pb.DIRECTION_INCOMING)
    )
    return page.documents[0] if page.documents else None


async def send_signed(env: Env) -> pb.Document:
    signed = await to_signed_digitally(env, PDF)
    return (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document


async def refused_with(env: Env, sent_id: str, reason: str) -> None:
    inc = await eventually(lambda: incoming(env))
    assert inc.incoming_status == pb.INCOMING_STATUS_REFUSED and not inc.digitally_signed
    assert inc.arrival_number == 0 and inc.result_note == reason
    got = (await env.as_("stp-vt").GetDocument(pb.GetDocumentRequest(id=inc.id))).document
    assert list(got.attachments) == []  # the refused files are not kept

    async def reported() -> pb.Recipient | None:
        d = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=sent_id))).document
        r = next(r for r in d.recipients if r.agency_code == STP)
        return r if r.last_incoming_status == pb.INCOMING_STATUS_REFUSED else None

    await eventually(reported)
    history = (
        await env.as_("ubnd-vt").ListDocumentHistory(
            pb.ListDocumentHistoryRequest(document_id=sent_id)
        )
    ).entries
    assert any(h.action == "recipient_status_02" and h.comment == reason for h in history)


async def test_tampered_pdf_is_refused_with_02_and_the_reason(env: Env) -> None:
    issued = await send_signed(env)
    (main,) = (
        await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=issued.id))
    ).document.attachments
    path = env.files.store.path(main.sha256)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    data = path.read_bytes()
    assert b"cai cach" in data
    path.write_bytes(data.replace(b"cai cach", b"bai bach"))  # same length, other text
    await env.as_("ubnd-vt").SendDocument(
        pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
    )
    await refused_with(
        env, issued.id, "Văn bản đã bị thay đổi sau khi ký số; chữ ký không còn toàn vẹn."
    )


async def test_revoked_certificate_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = await send_signed(env)
    (main,) = (
        await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=issued.id))
    ).document.attachments
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(env.data_dir))
    serial = main.signer_certificate_serial
    assert lgsp_main(["documents", "ca", "revoke", serial, "--reason", "key_compromise"]) == 0
    await env.as_("ubnd-vt").SendDocument(
        pb.SendDocumentRequest(document_id=issued.id, etag=issued.etag)
    )
    await refused_with(env, issued.id, "Chứng thư số của người ký đã bị thu hồi.")


async def test_without_a_main_pdf_there_is_nothing_to_sign(env: Env) -> None:
    d = await new_draft(env)
    d = (
        await env.as_("ubnd-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="ubnd-ld")
        )
    ).document
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
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-ld").SignDocument(
            pb.SignDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                sign_main_attachment=True,
                signer=pb.Signer(full_name="Nguyễn Văn An", mode=pb.SIGNING_MODE_DIRECT),
            )
        )
    assert bad_field(e.value) == ["sign_main_attachment"]


async def tampered_signed_pdf(env: Env) -> bytes:
    """A PDF signed by another official (a co-signed draft from elsewhere), then edited."""
    ca = env.files.verifier.ca  # type: ignore[union-attr]
    cred = ca.issue_official(
        full_name="Trần Thị Bình",
        agency_name="Sở Tư pháp tỉnh Hà Tĩnh",
        agency_code=STP,
        user_id="stp-ld",
    )
    # pyHanko signs on its own event loop: from a thread.
    signed = await asyncio.to_thread(sign_pdf, minimal_pdf("Quyet dinh ve cai cach"), cred)
    assert b"cai cach" in signed
    return signed.replace(b"cai cach", b"bai bach")  # same length, other text


async def awaiting_signature_with(env: Env, pdf: bytes) -> pb.Document:
    d = await new_draft(env)
    await upload(env, "ubnd-cv", d.id, pdf)
    d = (
        await env.as_("ubnd-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="ubnd-ld")
        )
    ).document
    return (
        await env.as_("ubnd-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                decision=pb.REVIEW_DECISION_APPROVE,
                signer_user_id="ubnd-ld",
            )
        )
    ).document


async def test_a_main_text_with_a_broken_signature_is_not_signed_nor_numbered(env: Env) -> None:
    """Issue 13 item 13: the main text carries a tampered signature. Signing it (digitally or
    on paper) is refused with the reason, before any number is used: the next document issued
    takes the next number."""
    first = await send_signed(env)
    assert first.number_notation == "01/QĐ-UBND"
    d = await awaiting_signature_with(env, await tampered_signed_pdf(env))
    for digitally in (True, False):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await env.as_("ubnd-ld").SignDocument(
                pb.SignDocumentRequest(
                    document_id=d.id, etag=d.etag, signer=SIGNER, sign_main_attachment=digitally
                )
            )
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "đã bị thay đổi sau khi ký số" in (e.value.details() or "")
    got = (await env.as_("ubnd-ld").GetDocument(pb.GetDocumentRequest(id=d.id))).document
    assert got.outgoing_status == pb.OUTGOING_STATUS_AWAITING_SIGNATURE and not got.number
    assert [a.version for a in got.attachments] == [1]  # no signed copy was stored
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-vt").IssueDocument(pb.IssueDocumentRequest(document_id=d.id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    nxt = await send_signed(env)
    assert nxt.number_notation == "02/QĐ-UBND"  # no gap


async def test_cancelled_uploads_never_leave_a_record_without_its_file(env: Env) -> None:
    """Issue 13 item 16: clients give up (or a proxy dies) at random moments of an upload —
    while streaming, after the last chunk, while the row commits. Whatever the moment, a row
    in `attachments` has its bytes in the store (lgsp/blobs), and every answered upload can be
    downloaded."""
    rng = random.Random(int(os.environ.get("LGSP_TEST_SEED", "13")))
    d = await new_draft(env)
    # A plain client, as other provincial systems have (no platform interceptors).
    plain = grpc.aio.insecure_channel(env.runtime.server.address)
    stub = documents_pb2_grpc.DocumentServiceStub(plain)
    metadata = env.md("ubnd-cv")

    def requests(data: bytes, sent: asyncio.Event) -> AsyncIterator[pb.UploadAttachmentRequest]:
        async def gen() -> AsyncIterator[pb.UploadAttachmentRequest]:
            yield pb.UploadAttachmentRequest(
                metadata=pb.AttachmentUpload(
                    document_id=d.id, file_name="phu-luc.pdf", main=False, size_bytes=len(data)
                )
            )
            for i in range(0, len(data), 16 * 1024):
                yield pb.UploadAttachmentRequest(chunk=data[i : i + 16 * 1024])
            sent.set()  # the last message is with gRPC: the server stores, then commits

        return gen()

    loop = asyncio.get_running_loop()
    # How long the server takes from the last chunk to its answer (store, then the row).
    spans = []
    for i in range(5):
        sent = asyncio.Event()
        call = stub.UploadAttachment(requests(minimal_pdf(f"mau {i}"), sent), metadata=metadata)
        await sent.wait()
        began = loop.time()
        await call
        spans.append(loop.time() - began)
    span = max(spans)
    answered, cancelled = [], 0
    for i in range(80):
        data = minimal_pdf(f"Phu luc so {i} " + "x" * rng.randint(0, 60_000))
        sent = asyncio.Event()
        call = stub.UploadAttachment(requests(data, sent), metadata=metadata, timeout=20)
        if rng.random() < 0.25:  # while the bytes stream
            await asyncio.sleep(rng.uniform(0, span))
        else:  # after the last chunk: while the file is stored, the row commits, it answers
            await sent.wait()
            await asyncio.sleep(rng.uniform(0, span * 1.2))
        call.cancel()
        try:
            answered.append((await call).attachment)
        except asyncio.CancelledError:
            cancelled += 1
    assert cancelled > 5  # the test did cancel, at many points
    await plain.close()
    # The handler itself cancelled at random points (what a cancellation that reaches the
    # server does to it: CancelledError at whichever await it is in), 120 times.
    caller = Principal(subject="ubnd-cv", kind="user", grants={UBND: frozenset({"specialist"})})

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 16 * 1024):
            await asyncio.sleep(0)
            yield data[i : i + 16 * 1024]

    def handler_call(i: int) -> Any:
        data = minimal_pdf(f"Ban sao so {i} " + "y" * rng.randint(0, 60_000))
        up = Upload(document_id=d.id, file_name="ban-sao.pdf", size_bytes=len(data))
        return env.files.upload(caller, up, chunks(data))

    began = loop.time()
    for i in range(5):
        await handler_call(1000 + i)
    span = (loop.time() - began) / 5
    for i in range(120):
        task = asyncio.ensure_future(handler_call(i))
        await asyncio.sleep(rng.uniform(0, span * 1.2))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for _ in range(100):  # units of work of cancelled calls may still be finishing
        await asyncio.sleep(0.05)
        if not getattr(env.files, "_linking", None):
            break
    await asyncio.sleep(0.3)
    with env.runtime.engine.connect() as conn:
        kept = conn.execute(sa.select(t.attachments.c.id, t.attachments.c.sha256)).all()
    missing = [row.id for row in kept if not await env.files.store.exists(row.sha256)]
    assert missing == [], f"{len(missing)} of {len(kept)} rows have no file"
    for a in answered:
        assert (await download(env, "ubnd-cv", d.id, a.id))[1]


async def test_a_lost_file_is_data_loss_not_unavailable(env: Env) -> None:
    d = await new_draft(env)
    att = await upload(env, "ubnd-cv", d.id, PDF)
    await env.files.store.delete(att.sha256)  # an operator's mistake on the store
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await download(env, "ubnd-cv", d.id, att.id)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS  # a retry cannot bring it back
