"""Attachments over gRPC with the S3 store (SeaweedFS, tests.fixtures.s3): the same streamed
upload, download, refusal and signing paths as on disk, checked in the bucket itself with an
independent S3 client (boto3), not through the store."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
import sqlalchemy as sa

from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.blobs.s3 import S3Store
from services.documents.adapters import tables as t
from tests.fixtures.s3 import S3Server
from tests.support.pdf import minimal_pdf

from .workflow_support import Env, download, draft, running_env, to_signed_digitally, upload

PDF = minimal_pdf("Cong van so 45/UBND-VX ve chuyen doi so")


@pytest.fixture
async def s3_env(tmp_path: Path, s3_server: S3Server) -> AsyncIterator[tuple[Env, Any, str]]:
    settings = {
        "LGSP_ATTACHMENTS_BACKEND": "s3",
        "LGSP_ATTACHMENTS_S3_ENDPOINT": s3_server.endpoint,
        "LGSP_ATTACHMENTS_S3_BUCKET": s3_server.bucket,
        "LGSP_ATTACHMENTS_S3_REGION": s3_server.region,
        "LGSP_ATTACHMENTS_S3_ACCESS_KEY": s3_server.access_key,
        "LGSP_ATTACHMENTS_S3_SECRET_KEY": s3_server.secret_key,
    }
    async with running_env(tmp_path, settings) as env:
        assert isinstance(env.files.store, S3Store)
        prefix = f"test-{uuid.uuid4().hex}/sha256/"  # the session's tests share the bucket
        env.files.store.prefix = prefix
        client = boto3.client(
            "s3",
            endpoint_url=s3_server.endpoint,
            region_name=s3_server.region,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
        )
        yield env, client, prefix


def bucket_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def attachment_rows(env: Env) -> int:
    with env.runtime.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.attachments)).scalar_one())


async def test_upload_download_and_refusals_on_s3(
    s3_env: tuple[Env, Any, str], s3_server: S3Server
) -> None:
    env, client, prefix = s3_env
    d = (await env.as_("ubnd-cv").CreateDraft(pb.CreateDraftRequest(document=draft()))).document
    appendix = "Phụ lục: danh mục dữ liệu dùng chung\n".encode() * 20_000  # ~0.8 MB, 13 chunks
    main = await upload(env, "ubnd-cv", d.id, PDF)
    extra = await upload(
        env, "ubnd-cv", d.id, appendix, file_name="phu-luc.txt", content_type="text/plain",
        main=False,
    )  # fmt: skip
    assert main.sha256 == hashlib.sha256(PDF).hexdigest()
    assert extra.sha256 == hashlib.sha256(appendix).hexdigest()
    # In the bucket, content-addressed, byte for byte.
    assert bucket_keys(client, s3_server.bucket, prefix) == sorted(
        [prefix + main.sha256, prefix + extra.sha256]
    )
    obj = client.get_object(Bucket=s3_server.bucket, Key=prefix + extra.sha256)
    assert obj["Body"].read() == appendix
    # And back through gRPC, to a reader of the same agency.
    _, got = await download(env, "ubnd-ld", d.id, extra.id)
    assert got == appendix
    # The same content again is stored once.
    again = await upload(
        env, "ubnd-cv", d.id, appendix, file_name="phu-luc-2.txt", content_type="text/plain",
        main=False,
    )  # fmt: skip
    assert again.sha256 == extra.sha256
    assert len(bucket_keys(client, s3_server.bucket, prefix)) == 2

    # Refused uploads leave nothing: no row, no object, not even a partial one.
    rows_before = attachment_rows(env)
    env.files.max_file_bytes = 100_000
    big = PDF + b"%" * 300_000
    with pytest.raises(grpc.aio.AioRpcError) as e:  # size not declared: stopped mid-stream
        await upload(env, "ubnd-cv", d.id, big, size_bytes=0)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as e:  # declared size is a lie
        await upload(env, "ubnd-cv", d.id, PDF, size_bytes=len(PDF) + 1)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert attachment_rows(env) == rows_before
    assert len(bucket_keys(client, s3_server.bucket, prefix)) == 2


async def test_signing_reads_and_writes_the_s3_store(
    s3_env: tuple[Env, Any, str], s3_server: S3Server
) -> None:
    env, client, prefix = s3_env
    signed = await to_signed_digitally(env, PDF)
    assert signed.digitally_signed
    doc = (await env.as_("ubnd-vt").GetDocument(pb.GetDocumentRequest(id=signed.id))).document
    (main,) = doc.attachments
    assert main.version == 2 and main.digitally_signed
    _, signed_pdf = await download(env, "ubnd-vt", doc.id, main.id)
    assert len(signed_pdf) > len(PDF)
    # The original and the signed copy are both objects in the bucket.
    keys = bucket_keys(client, s3_server.bucket, prefix)
    assert prefix + hashlib.sha256(signed_pdf).hexdigest() in keys
    assert prefix + hashlib.sha256(PDF).hexdigest() in keys
