"""The documents service on a real gRPC server for the workflow tests: a stand-in token
issuer (tests.support.issuer), three agencies of Hà Tĩnh and officials with their roles
(tests.services.documents.support, shared with the benchmark), and a stub that calls as one of them.
Attachments go to a disk store and signatures to a development CA, both in the test's temp
directory."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
from services.documents.plugin import PLUGIN
from services.documents.service_layer.attachments import DocumentFiles
from services.documents.service_layer.documents import DocumentsApp
from tests.services.documents.support import (  # noqa: F401 - re-exported for the tests
    AGENCIES,
    OFFICIALS,
    SIGNER,
    SNV,
    STP,
    UBND,
    draft,
    official_claims,
)
from tests.support.issuer import FakeIssuer


@dataclass
class Env:
    issuer: FakeIssuer
    stub: documents_pb2_grpc.DocumentServiceStub
    runtime: ServiceRuntime
    app: DocumentsApp
    files: DocumentFiles
    data_dir: Path
    axis: Any = None  # the national axis exchange, when the settings turn it on

    def md(self, user: str) -> tuple[tuple[str, str], ...]:
        token = self.issuer.token(**official_claims(user))
        return (("authorization", f"Bearer {token}"),)

    def as_(self, user: str) -> Any:
        """`env.as_("ubnd-vt").IssueDocument(req)`: the stub's methods called as `user`."""
        env = self

        class _Caller:
            def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
                method = getattr(env.stub, name)
                return lambda request: method(request, metadata=env.md(user), timeout=20)

        return _Caller()


@contextlib.asynccontextmanager
async def running_env(
    tmp_path: Path, settings_env: Mapping[str, str] | None = None
) -> AsyncIterator[Env]:
    """The documents service with its settings from `settings_env` (LGSP_* variables) on top of
    a data directory in tmp_path."""
    issuer = FakeIssuer()
    await issuer.start()
    # No national axis unless a test asks for one (and names its mock's port): a test must not
    # poll the mailboxes of a platform running on this machine.
    base = {"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_DOCUMENTS_NATIONAL_AXIS": "false"}
    settings = load_settings(env={**base, **(settings_env or {})})
    authn = JwtAuthenticator(issuer.issuer)
    plugin = PLUGIN.with_options(agencies=AGENCIES, authenticator=authn)
    runtime = ServiceRuntime(plugin, settings, port=0)
    await runtime.start()
    ch = channel(runtime.server.address, service_name="documents-test")
    try:
        yield Env(
            issuer,
            documents_pb2_grpc.DocumentServiceStub(ch),
            runtime,
            runtime.app.app,
            runtime.app.files,
            tmp_path,
            runtime.app.axis,
        )
    finally:
        await ch.close()
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()


@pytest.fixture(name="env")
async def env_fixture(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(tmp_path) as env:
        yield env


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


async def upload(
    env: Env,
    user: str,
    document_id: str,
    data: bytes,
    *,
    file_name: str = "du-thao.pdf",
    content_type: str = "application/pdf",
    main: bool = True,
    size_bytes: int | None = None,
    chunk: int = 64 * 1024,
) -> pb.Attachment:
    """UploadAttachment as `user`: the metadata message, then `data` in chunks."""

    async def messages() -> AsyncIterator[pb.UploadAttachmentRequest]:
        yield pb.UploadAttachmentRequest(
            metadata=pb.AttachmentUpload(
                document_id=document_id,
                file_name=file_name,
                content_type=content_type,
                main=main,
                size_bytes=len(data) if size_bytes is None else size_bytes,
            )
        )
        for i in range(0, len(data), chunk):
            yield pb.UploadAttachmentRequest(chunk=data[i : i + chunk])

    response = await env.stub.UploadAttachment(messages(), metadata=env.md(user), timeout=20)
    return response.attachment


async def download(env: Env, user: str, document_id: str, attachment_id: str) -> tuple[Any, bytes]:
    """DownloadAttachment as `user`: (metadata, content)."""
    meta, data = None, b""
    call = env.stub.DownloadAttachment(
        pb.DownloadAttachmentRequest(document_id=document_id, attachment_id=attachment_id),
        metadata=env.md(user),
        timeout=20,
    )
    async for part in call:
        if part.WhichOneof("part") == "metadata":
            meta = part.metadata
        else:
            data += part.chunk
    return meta, data


async def to_signed_digitally(env: Env, pdf: bytes, doc: pb.Document | None = None) -> pb.Document:
    """Draft with a main PDF → review → approve → SignDocument(sign_main_attachment)."""
    d = (
        await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=doc or draft()))
    ).document
    await upload(env, "ubnd-cv", d.id, pdf)
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
            pb.SignDocumentRequest(
                document_id=d.id, etag=d.etag, signer=SIGNER, sign_main_attachment=True
            )
        )
    ).document


async def dead_letters(env: Env, topic: str) -> list[Any]:
    """The records of a dead-letter topic, read by a fresh consumer group (waits for one)."""
    bus = env.runtime.bus
    assert bus is not None
    consumer = bus.consumer(f"dlq-check-{uuid.uuid4().hex[:6]}", [topic])
    try:

        async def some() -> list[Any]:
            return await consumer.poll(timeout=0.2)

        records: list[Any] = await eventually(some)
        return records
    finally:
        await consumer.close()
