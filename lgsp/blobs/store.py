"""Content-addressed attachment storage: one interface, a disk and an S3 backend.

Files are keyed by the lowercase hex SHA-256 of their content, so the same file uploaded
twice is stored once; reference counting (which documents use a file) is the service's job.

`put` streams chunks to a local spool file while hashing and counting, refuses the stream the
moment it passes the size limit, sniffs the type from the content, and only then publishes
the file under its hash: by an atomic rename on disk, by one PUT (or a completed multipart
upload) in S3. A refused or failed upload leaves nothing behind in either backend.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from .errors import AttachmentError, AttachmentTooLarge
from .files import ALLOWED_TYPES, SNIFF_BYTES, check_declared, sniff

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MiB
CHUNK_SIZE = 1 * MiB  # the gRPC contract's chunk size
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str
    created: bool  # False when the same content was already stored (deduplicated)


def check_key(sha256: str) -> str:
    """`sha256` if it is a storage key; a path-traversal attempt or junk raises."""
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise AttachmentError("sha256", "must be 64 lowercase hex digits")
    return sha256


class AttachmentStore(abc.ABC):
    """Where attachment bytes live. Backends implement the five `_`-methods below."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_types: frozenset[str] = ALLOWED_TYPES,
        spool_dir: str | Path | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.allowed_types = allowed_types
        self.spool_dir = Path(spool_dir) if spool_dir else None
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        declared_type: str = "",
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredFile:
        """Store a stream; AttachmentError (nothing stored) if it breaks any rule."""
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        if expected_size is not None and expected_size > limit:
            raise AttachmentTooLarge(limit)  # refuse before reading a byte
        if expected_sha256 is not None:
            check_key(expected_sha256)
        spool = self._spool()
        fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=spool)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            head = b""
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > limit:
                        raise AttachmentTooLarge(limit)
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)  # local spool, ≤ 1 MiB: cheaper inline than a thread hop
            if size == 0:
                raise AttachmentError("content", "the file is empty")
            if expected_size is not None and expected_size != size:
                raise AttachmentError(
                    "size_bytes", f"declared {expected_size} bytes but received {size}"
                )
            sha256 = digest.hexdigest()
            if expected_sha256 is not None and expected_sha256 != sha256:
                raise AttachmentError("sha256", "the content does not match the declared sha256")
            content_type = check_declared(declared_type, sniff(head, tmp))
            if content_type not in self.allowed_types:
                raise AttachmentError("content", f"{content_type} is not an allowed type")
            created = await self._commit(tmp, sha256, size, content_type)
            return StoredFile(sha256=sha256, size=size, content_type=content_type, created=created)
        finally:
            with contextlib.suppress(FileNotFoundError):  # a disk commit renamed it away
                os.unlink(tmp)

    async def put_bytes(self, data: bytes, **kwargs: object) -> StoredFile:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put(one(), **kwargs)  # type: ignore[arg-type]

    def get(self, sha256: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; AttachmentNotFound (on first iteration) if absent."""
        return self._get(check_key(sha256), chunk_size)

    async def read(self, sha256: str) -> bytes:
        return b"".join([chunk async for chunk in self.get(sha256)])

    async def exists(self, sha256: str) -> bool:
        return await self._exists(check_key(sha256))

    async def size(self, sha256: str) -> int:
        """Stored size in bytes; AttachmentNotFound if absent."""
        return await self._size(check_key(sha256))

    async def delete(self, sha256: str) -> bool:
        """Remove the file; False if it was not there. Callers count references first."""
        return await self._delete(check_key(sha256))

    async def close(self) -> None:  # noqa: B027 - optional for backends
        pass

    def _spool(self) -> Path | None:
        return self.spool_dir

    @abc.abstractmethod
    async def _commit(self, tmp: Path, sha256: str, size: int, content_type: str) -> bool: ...

    @abc.abstractmethod
    def _get(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def _exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    async def _size(self, sha256: str) -> int: ...

    @abc.abstractmethod
    async def _delete(self, sha256: str) -> bool: ...
