"""Attachments in an S3-compatible object store (AWS S3, MinIO, SeaweedFS, Ceph…).

Objects are keyed `<prefix><sha256>` in one bucket. boto3 is synchronous, so every call runs
in a worker thread; uploads go through boto3's transfer manager (multipart above 8 MiB), and
an object becomes visible only when its PUT or multipart upload completes, so a failed upload
leaves nothing readable behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .errors import AttachmentNotFound
from .store import AttachmentStore

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(AttachmentStore):
    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        prefix: str = "sha256/",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},  # works with every S3-compatible server
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}"

    async def _head(self, sha256: str) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(
                self._client.head_object, Bucket=self.bucket, Key=self.key(sha256)
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return None
            raise

    async def _commit(self, tmp: Path, sha256: str, size: int, content_type: str) -> bool:
        if await self._head(sha256) is not None:
            return False
        await asyncio.to_thread(
            self._client.upload_file,
            str(tmp),
            self.bucket,
            self.key(sha256),
            ExtraArgs={"ContentType": content_type},
        )
        return True

    async def _get(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            response = await asyncio.to_thread(
                self._client.get_object, Bucket=self.bucket, Key=self.key(sha256)
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                raise AttachmentNotFound(sha256) from None
            raise
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def _exists(self, sha256: str) -> bool:
        return await self._head(sha256) is not None

    async def _size(self, sha256: str) -> int:
        head = await self._head(sha256)
        if head is None:
            raise AttachmentNotFound(sha256)
        return int(head["ContentLength"])

    async def _delete(self, sha256: str) -> bool:
        if await self._head(sha256) is None:
            return False
        await asyncio.to_thread(
            self._client.delete_object, Bucket=self.bucket, Key=self.key(sha256)
        )
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
