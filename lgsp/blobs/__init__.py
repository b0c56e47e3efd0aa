"""The platform's blob store: files kept by the sha256 of their content, on disk or in S3, with
type sniffing and safe names. Documents writes attachments here; search reads them by hash.

store = open_store(settings.attachments)
stored = await store.put(chunks, declared_type="application/pdf", expected_size=n)
async for chunk in store.get(stored.sha256): ...
"""

from __future__ import annotations

from pathlib import Path

from lgsp.config import AttachmentsSettings

from .disk import DiskStore
from .errors import AttachmentError, AttachmentNotFound, AttachmentTooLarge
from .files import ALLOWED_TYPES, check_declared, safe_file_name, sniff
from .store import CHUNK_SIZE, DEFAULT_MAX_BYTES, AttachmentStore, StoredFile, check_key


def open_store(
    settings: AttachmentsSettings, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> AttachmentStore:
    """The backend the configuration names ([attachments] backend = "disk" | "s3")."""
    if settings.backend == "s3":
        from .s3 import S3Store  # boto3 is imported only when S3 is configured

        return S3Store(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            max_bytes=max_bytes,
            spool_dir=Path(settings.dir) / "tmp" if settings.dir else None,
        )
    if not settings.dir:
        raise ValueError("attachments.dir is not set (load_settings() fills it)")
    return DiskStore(settings.dir, max_bytes=max_bytes)


__all__ = [
    "ALLOWED_TYPES",
    "CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "AttachmentError",
    "AttachmentNotFound",
    "AttachmentStore",
    "AttachmentTooLarge",
    "DiskStore",
    "StoredFile",
    "check_declared",
    "check_key",
    "open_store",
    "safe_file_name",
    "sniff",
]
