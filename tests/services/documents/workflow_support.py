"""The documents service on a real gRPC server for the workflow tests: a stand-in token
issuer (tests/lgsp/auth/_issuer.py), three agencies of Hà Tĩnh, officials with their roles,
and a stub that calls as one of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from services.documents.adapters.agencies import StaticAgencyDirectory
from services.documents.bootstrap import build_spec
from services.documents.service_layer.documents import DocumentsApp
from services.documents.service_layer.ports import Agency
from tests.lgsp.auth._issuer import FakeIssuer

UBND = "000.00.00.H30"
STP = "000.01.30.H30"
SNV = "000.02.30.H30"

AGENCIES = StaticAgencyDirectory(
    [
        Agency(UBND, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", "", "Hà Tĩnh"),
        Agency(STP, "Sở Tư pháp tỉnh Hà Tĩnh", "STP", UBND, "Hà Tĩnh"),
        Agency(SNV, "Sở Nội vụ tỉnh Hà Tĩnh", "SNV", UBND, "Hà Tĩnh"),
    ]
)

# user → (agency, roles)
OFFICIALS: dict[str, tuple[str, list[str]]] = {
    "ubnd-cv": (UBND, ["specialist"]),
    "ubnd-ld": (UBND, ["leader"]),
    "ubnd-ld2": (UBND, ["leader"]),
    "ubnd-vt": (UBND, ["clerk"]),
    "ubnd-vt2": (UBND, ["clerk"]),
    "ubnd-admin": (UBND, ["admin", "agency_admin"]),
    "stp-vt": (STP, ["clerk"]),
    "stp-ld": (STP, ["leader"]),
    "stp-cv": (STP, ["specialist"]),
    "snv-cv": (SNV, ["specialist"]),
}


@dataclass
class Env:
    issuer: FakeIssuer
    stub: documents_pb2_grpc.DocumentServiceStub
    runtime: ServiceRuntime
    app: DocumentsApp

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        agency, roles = OFFICIALS[user]
        token = self.issuer.token(
            sub=user,
            preferred_username=user,
            realm_access={"roles": roles},
            agency_code=agency,
            agency_roles={agency: roles},
        )
        return (("authorization", f"Bearer {token}"),)

    def as_(self, user: str) -> Any:
        """`env.as_("ubnd-vt").IssueDocument(req)`: the stub's methods called as `user`."""
        env = self

        class _Caller:
            def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
                method = getattr(env.stub, name)
                return lambda request: method(request, metadata=env.md(user), timeout=20)

        return _Caller()


@pytest.fixture(name="env")
async def env_fixture(tmp_path: Path) -> AsyncIterator[Env]:
    issuer = FakeIssuer()
    await issuer.start()
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    authn = JwtAuthenticator(issuer.issuer)
    holder: dict[str, DocumentsApp] = {}
    spec = build_spec(settings, agencies=AGENCIES, authenticator=authn, holder=holder)
    runtime = ServiceRuntime(spec, settings, port=0)
    await runtime.start()
    ch = channel(runtime.server.address, service_name="documents-test")
    try:
        yield Env(issuer, documents_pb2_grpc.DocumentServiceStub(ch), runtime, holder["app"])
    finally:
        await ch.close()
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()


def draft(**overrides: Any) -> pb.Document:
    doc = pb.Document(
        agency_code=UBND,
        document_type_code="QĐ",
        subject="Về việc ban hành Kế hoạch cải cách hành chính năm 2026",
        summary="Giao các sở, ngành triển khai kế hoạch cải cách hành chính.",
        due_date="2026-12-31",
        priority=pb.PRIORITY_URGENT,
        confidentiality=pb.CONFIDENTIALITY_NORMAL,
        recipients=[
            pb.Recipient(agency_code=STP, name="Sở Tư pháp", kind=pb.RECIPIENT_KIND_MAIN),
            pb.Recipient(name="Lưu: VT", kind=pb.RECIPIENT_KIND_ARCHIVE),
        ],
    )
    for k, v in overrides.items():
        if k == "recipients":
            del doc.recipients[:]
            doc.recipients.extend(v)
        else:
            setattr(doc, k, v)
    return doc


SIGNER = pb.Signer(
    full_name="Nguyễn Văn An",
    position="PHÓ CHỦ TỊCH",
    mode=pb.SIGNING_MODE_DEPUTY,
    on_behalf_of="CHỦ TỊCH",
)


async def to_signed(env: Env, doc: pb.Document | None = None) -> pb.Document:
    """Draft → review → approve → sign, by the right officials."""
    d = (
        await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=doc or draft()))
    ).document
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
    return (
        await env.as_("ubnd-ld").SignDocument(
            pb.SignDocumentRequest(document_id=d.id, etag=d.etag, signer=SIGNER)
        )
    ).document


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy (the exchange goes through the bus)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
