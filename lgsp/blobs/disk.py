"""Attachments as files: <dir>/sha256/ab/cd/<hash>, published by atomic rename."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from .errors import AttachmentNotFound
from .store import AttachmentStore


class DiskStore(AttachmentStore):
    def __init__(self, directory: str | Path, **kwargs: object) -> None:
        self.directory = Path(directory)
        # The spool lives beside the files so publishing is a rename on one filesystem.
        spool = self.directory / "tmp"
        spool.mkdir(parents=True, exist_ok=True)
        super().__init__(spool_dir=spool, **kwargs)  # type: ignore[arg-type]

    def path(self, sha256: str) -> Path:
        return self.directory / "sha256" / sha256[:2] / sha256[2:4] / sha256

    async def _commit(self, tmp: Path, sha256: str, size: int, content_type: str) -> bool:
        return await asyncio.to_thread(self._commit_sync, tmp, sha256)

    def _commit_sync(self, tmp: Path, sha256: str) -> bool:
        final = self.path(sha256)
        if final.exists():
            return False  # same content already stored; the spool file is dropped
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # durable before it becomes visible under its name
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return True

    async def _get(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            f = await asyncio.to_thread(open, self.path(sha256), "rb")
        except FileNotFoundError:
            raise AttachmentNotFound(sha256) from None
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    async def _exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    async def _size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise AttachmentNotFound(sha256) from None

    async def _delete(self, sha256: str) -> bool:
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True
