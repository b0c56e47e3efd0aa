"""Issue 13 item 10: an agency's drafts, signatures and books belong to its own officials. The
province's chairman and clerk hold their roles in UBND tỉnh, above the Sở Tư pháp in the tree:
that gives them no hand in the Sở's documents until the Sở issues them."""

from __future__ import annotations

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from tests.support.pdf import minimal_pdf

from .workflow_support import SIGNER, STP, Env, draft, env_fixture, upload  # noqa: F401

PDF = minimal_pdf("Quyet dinh cua So Tu phap")


async def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call  # type: ignore[misc]
    return e.value.code()


async def test_provincial_officials_do_not_act_in_a_department(env: Env) -> None:
    # The province's chairman drafts a decision in the Sở's name.
    assert (
        await code_of(
            env.as_("ubnd-ld").CreateDraft(pb.CreateDraftRequest(document=draft(agency_code=STP)))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    d = (
        await env.as_("stp-cv").CreateDraft(
            pb.CreateDraftRequest(document=draft(agency_code=STP, document_type_code="QĐ"))
        )
    ).document
    files = await upload(env, "stp-cv", d.id, PDF)
    # The province's clerk and chairman read the Sở's draft, its versions and its files.
    for user in ("ubnd-vt", "ubnd-ld", "ubnd-admin"):
        for call in (
            env.as_(user).GetDocument(pb.GetDocumentRequest(id=d.id)),
            env.as_(user).ListDocumentVersions(pb.ListDocumentVersionsRequest(document_id=d.id)),
            env.as_(user).ListDocumentHistory(pb.ListDocumentHistoryRequest(document_id=d.id)),
        ):
            assert await code_of(call) == grpc.StatusCode.NOT_FOUND, user
        with pytest.raises(grpc.aio.AioRpcError) as e:
            call = env.stub.DownloadAttachment(
                pb.DownloadAttachmentRequest(document_id=d.id, attachment_id=files.id),
                metadata=env.md(user),
            )
            async for _ in call:
                pass
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert (
            await code_of(env.as_(user).ListDocuments(pb.ListDocumentsRequest(agency_code=STP)))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    d = (
        await env.as_("stp-cv").SubmitForReview(
            pb.SubmitForReviewRequest(document_id=d.id, etag=d.etag, reviewer_user_id="stp-ld")
        )
    ).document
    # The chairman approves and signs it himself.
    assert (
        await code_of(
            env.as_("ubnd-ld").ReviewDocument(
                pb.ReviewDocumentRequest(
                    document_id=d.id,
                    etag=d.etag,
                    decision=pb.REVIEW_DECISION_APPROVE,
                    signer_user_id="ubnd-ld",
                )
            )
        )
        == grpc.StatusCode.NOT_FOUND  # he cannot even see the draft
    )
    d = (
        await env.as_("stp-ld").ReviewDocument(
            pb.ReviewDocumentRequest(
                document_id=d.id,
                etag=d.etag,
                decision=pb.REVIEW_DECISION_APPROVE,
                signer_user_id="stp-ld",
            )
        )
    ).document
    d = (
        await env.as_("stp-ld").SignDocument(
            pb.SignDocumentRequest(document_id=d.id, etag=d.etag, signer=SIGNER)
        )
    ).document
    # The province's clerk numbers it in the Sở's book (after signing it is still in-house).
    assert (
        await code_of(
            env.as_("ubnd-vt").IssueDocument(pb.IssueDocumentRequest(document_id=d.id, etag=d.etag))
        )
        == grpc.StatusCode.NOT_FOUND
    )
    issued = (
        await env.as_("stp-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=d.id, etag=d.etag)
        )
    ).document
    assert issued.number_notation == "01/QĐ-STP"
    # Issued, it is the Sở's act: the province reads it (supervision), and still cannot send
    # or recall it.
    got = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=d.id))).document
    assert got.number_notation == "01/QĐ-STP"
    assert (
        await code_of(
            env.as_("ubnd-vt").SendDocument(
                pb.SendDocumentRequest(document_id=d.id, etag=issued.etag)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
