"""Who may issue what (issue 13 item 11): one table in the domain (document_types,
`issued_by`), enforced when a draft is made or retyped and again when it is issued. A province
never issues decrees or circulars; a People's Council issues resolutions, a People's Committee
legal decisions and directives; a department (sở) issues no legal document."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.workdays import local_date
from services.documents.domain.document_types import (
    DOCUMENT_TYPES,
    IssuerKind,
    check_issuer,
    document_type,
    issuer_kind,
)
from services.documents.domain.errors import InvalidField
from services.documents.service_layer.documents import DocumentsApp

from .test_documents_workflow import violation_fields
from .workflow_support import STP, UBND, Env, draft, env_fixture, to_signed  # noqa: F401


def test_agencies_are_classified_by_their_legal_name() -> None:
    assert issuer_kind("Hội đồng nhân dân tỉnh Hà Tĩnh") is IssuerKind.PEOPLES_COUNCIL
    assert issuer_kind("HỘI ĐỒNG NHÂN DÂN xã Thạch Hà") is IssuerKind.PEOPLES_COUNCIL
    assert issuer_kind("Ủy ban nhân dân phường Thành Sen") is IssuerKind.PEOPLES_COMMITTEE
    assert issuer_kind("Uỷ ban nhân dân tỉnh Hà Tĩnh") is IssuerKind.PEOPLES_COMMITTEE
    for other in ("Sở Tư pháp", "Văn phòng Ủy ban nhân dân tỉnh", "Phòng Nghiệp vụ Y", ""):
        assert issuer_kind(other) is IssuerKind.OTHER


def test_the_issuing_table() -> None:
    council, committee, department = (
        "Hội đồng nhân dân tỉnh Hà Tĩnh",
        "Ủy ban nhân dân tỉnh Hà Tĩnh",
        "Sở Tư pháp tỉnh Hà Tĩnh",
    )
    allowed = {
        name: sorted(
            code
            for code, kind in DOCUMENT_TYPES.items()
            if kind.may_be_issued_by(issuer_kind(name))
        )
        for name in (council, committee, department)
    }
    for name in (council, committee, department):
        assert "NĐ" not in allowed[name] and "TT" not in allowed[name]
    assert "NQ-QPPL" in allowed[council] and "NQ" in allowed[council]
    assert "QĐ-QPPL" not in allowed[council]
    assert {"QĐ-QPPL", "QĐ", "CT"} <= set(allowed[committee])
    assert "NQ" not in allowed[committee] and "NQ-QPPL" not in allowed[committee]
    assert not [code for code in allowed[department] if DOCUMENT_TYPES[code].legal]
    assert "QĐ" in allowed[department] and "NQ" not in allowed[department]
    assert "CT" not in allowed[department]
    kind = document_type("TT")
    assert kind is not None
    with pytest.raises(InvalidField) as e:
        check_issuer(kind, committee, "document.document_type_code")
    assert "Government or a minister" in e.value.reason


@pytest.mark.parametrize(
    ("user", "agency", "code"),
    [
        ("ubnd-ld", UBND, "NQ-QPPL"),
        ("ubnd-ld", UBND, "NQ"),
        ("ubnd-ld", UBND, "NĐ"),
        ("ubnd-ld", UBND, "TT"),
        ("stp-cv", STP, "QĐ-QPPL"),
        ("stp-cv", STP, "TT"),
        ("stp-cv", STP, "NQ-QPPL"),
        ("stp-cv", STP, "CT"),
    ],
)
async def test_no_draft_of_a_type_the_agency_cannot_issue(
    env: Env, user: str, agency: str, code: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_(user).CreateDraft(
            pb.CreateDraftRequest(document=draft(agency_code=agency, document_type_code=code))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_fields(e.value) == ["document.document_type_code"]


async def test_what_an_agency_may_issue_goes_through(env: Env) -> None:
    for user, agency, code in [("ubnd-cv", UBND, "QĐ-QPPL"), ("ubnd-cv", UBND, "CT")]:
        await env.as_(user).CreateDraft(
            pb.CreateDraftRequest(document=draft(agency_code=agency, document_type_code=code))
        )
    d = (
        await env.as_("stp-cv").CreateDraft(
            pb.CreateDraftRequest(document=draft(agency_code=STP, document_type_code="QĐ"))
        )
    ).document
    # A specialist of the Sở retypes its individual decision into a legal one, then a Thông tư.
    for code in ("QĐ-QPPL", "TT"):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await env.as_("stp-cv").UpdateDocument(
                pb.UpdateDocumentRequest(
                    document=pb.Document(id=d.id, etag=d.etag, document_type_code=code),
                    update_mask=field_mask_pb2.FieldMask(paths=["document_type_code"]),
                )
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violation_fields(e.value) == ["document.document_type_code"]


async def test_a_draft_from_before_the_rule_is_not_issued(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Thông tư drafted in UBND before the table existed (or under an agency renamed since)
    reaches the clerk: refused at issue, and no number of the legal book is used."""
    with monkeypatch.context() as m:
        m.setattr(DocumentsApp, "_check_type", lambda self, doc: None)
        signed = await to_signed(env, draft(document_type_code="TT"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Thông tư" in (e.value.details() or "")
    legal = await to_signed(env, draft(document_type_code="QĐ-QPPL"))
    issued = (
        await env.as_("ubnd-vt").IssueDocument(
            pb.IssueDocumentRequest(document_id=legal.id, etag=legal.etag)
        )
    ).document
    assert issued.number_notation == f"01/{local_date(datetime.now(UTC)).year}/QĐ-UBND"
