"""One contract suite for every attachment backend (disk, S3 on SeaweedFS), plus names/types."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lgsp.blobs import (
    AttachmentError,
    AttachmentNotFound,
    AttachmentStore,
    AttachmentTooLarge,
    DiskStore,
    open_store,
    safe_file_name,
    sniff,
)
from lgsp.blobs.files import (
    DOC,
    DOCX,
    JPEG,
    PDF,
    PNG,
    TEXT,
    XLS,
    XLSX,
    XML,
    ZIP,
)
from lgsp.blobs.s3 import S3Store
from lgsp.config import AttachmentsSettings
from tests.fixtures.s3 import S3Server

PDF_BYTES = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 2000 + b"%%EOF\n"


def office(kind: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(f"{kind}/document.xml", "<w:document/>")
    return buf.getvalue()


def plain_zip(*names: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            z.writestr(name, "x")
    return buf.getvalue()


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[i : i + size]


def stored_objects(store: AttachmentStore) -> list[str]:
    """Everything the backend holds for this store, spool included: proves 'nothing stored'."""
    if isinstance(store, DiskStore):
        return sorted(
            str(p.relative_to(store.directory)) for p in store.directory.rglob("*") if p.is_file()
        )
    assert isinstance(store, S3Store)
    listing = store._client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture(scope="module")
def shared_s3_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> S3Store:
    """One client for the module: creating a boto3 client costs about half a second."""
    server: S3Server = request.getfixturevalue("s3_server")
    settings = AttachmentsSettings(
        backend="s3",
        dir=str(tmp_path_factory.mktemp("s3-spool")),
        s3_endpoint=server.endpoint,
        s3_bucket=server.bucket,
        s3_region=server.region,
        s3_access_key=server.access_key,
        s3_secret_key=server.secret_key,
    )
    store = open_store(settings, max_bytes=1024 * 1024)
    assert isinstance(store, S3Store)
    return store


@pytest.fixture(params=["disk", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AttachmentStore:
    if request.param == "disk":
        return open_store(AttachmentsSettings(dir=str(tmp_path / "att")), max_bytes=1024 * 1024)
    s3: S3Store = request.getfixturevalue("shared_s3_store")
    s3.prefix = f"test-{uuid.uuid4().hex}/sha256/"  # tests share the session's bucket
    return s3


# --- contract ---------------------------------------------------------------------------------


async def test_put_get_round_trip_streaming(store: AttachmentStore) -> None:
    stored = await store.put(chunks(PDF_BYTES), declared_type="application/pdf")
    assert stored.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert (stored.size, stored.content_type, stored.created) == (len(PDF_BYTES), PDF, True)
    assert await store.exists(stored.sha256)
    assert await store.size(stored.sha256) == len(PDF_BYTES)
    got = [c async for c in store.get(stored.sha256, chunk_size=10_000)]
    assert b"".join(got) == PDF_BYTES
    assert max(len(c) for c in got) <= 10_000 and len(got) > 1


async def test_same_content_is_stored_once(store: AttachmentStore) -> None:
    first = await store.put(chunks(PDF_BYTES))
    second = await store.put(chunks(PDF_BYTES, 1000))
    assert first.sha256 == second.sha256
    assert (first.created, second.created) == (True, False)
    assert len(stored_objects(store)) == 1


async def test_delete(store: AttachmentStore) -> None:
    stored = await store.put_bytes(b"Xin ch\xc3\xa0o, \xc4\x91\xe1\xbb\x93ng ch\xc3\xad\n")
    assert stored.content_type == TEXT
    assert await store.delete(stored.sha256) is True
    assert await store.exists(stored.sha256) is False
    assert await store.delete(stored.sha256) is False
    with pytest.raises(AttachmentNotFound):
        await store.read(stored.sha256)
    with pytest.raises(AttachmentNotFound):
        await store.size(stored.sha256)


async def test_oversized_stream_is_aborted_and_nothing_is_stored(store: AttachmentStore) -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        yield b"%PDF-1.7\n"
        while True:
            produced += 64 * 1024
            yield b"0" * (64 * 1024)

    with pytest.raises(AttachmentTooLarge):
        await store.put(endless())
    assert produced < 2 * 1024 * 1024  # stopped at the limit, did not read on
    assert stored_objects(store) == []


async def test_declared_size_over_limit_is_refused_before_reading(store: AttachmentStore) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("must not be read")
        yield b""

    with pytest.raises(AttachmentTooLarge):
        await store.put(never(), expected_size=10 * 1024 * 1024)


async def test_failed_client_stream_leaves_nothing(store: AttachmentStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield PDF_BYTES[:1000]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put(broken())
    assert stored_objects(store) == []


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00" + b"\x00" * 100,
        b"\x7fELF\x02\x01\x01" + b"\x00" * 100,
        b"#!/bin/sh\nrm -rf /\n",
        b"\x00\x01\x02\x03 unknown binary",
        plain_zip("readme.txt", "setup.exe"),
    ],
    ids=["windows-exe", "elf", "script", "unknown", "zip-with-exe"],
)
async def test_disallowed_types_are_refused_and_not_stored(
    store: AttachmentStore, data: bytes
) -> None:
    with pytest.raises(AttachmentError) as err:
        await store.put(chunks(data))
    assert err.value.field == "content"
    assert stored_objects(store) == []


async def test_exe_declared_as_pdf_is_refused(store: AttachmentStore) -> None:
    with pytest.raises(AttachmentError):
        await store.put_bytes(b"MZ" + b"\x00" * 64, declared_type="application/pdf")
    with pytest.raises(AttachmentError) as err:
        await store.put_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, declared_type="application/pdf")
    assert err.value.field == "content_type"
    assert stored_objects(store) == []


async def test_declared_size_and_hash_are_checked(store: AttachmentStore) -> None:
    with pytest.raises(AttachmentError) as err:
        await store.put(chunks(PDF_BYTES), expected_size=len(PDF_BYTES) - 1)
    assert err.value.field == "size_bytes"
    with pytest.raises(AttachmentError) as err:
        await store.put(chunks(PDF_BYTES), expected_sha256="0" * 64)
    assert err.value.field == "sha256"
    assert stored_objects(store) == []
    ok = await store.put(chunks(PDF_BYTES), expected_sha256=hashlib.sha256(PDF_BYTES).hexdigest())
    assert ok.created


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "A" * 64, "ab/../cd", ""])
async def test_keys_that_are_not_hashes_are_refused(store: AttachmentStore, key: str) -> None:
    with pytest.raises(AttachmentError):
        await store.exists(key)
    with pytest.raises(AttachmentError):
        await store.delete(key)
    with pytest.raises(AttachmentError):
        store.get(key)


async def test_empty_file_is_refused(store: AttachmentStore) -> None:
    with pytest.raises(AttachmentError, match="empty"):
        await store.put(chunks(b""))


async def test_concurrent_uploads_of_one_file(store: AttachmentStore) -> None:
    results = await asyncio.gather(*(store.put(chunks(PDF_BYTES)) for _ in range(5)))
    assert {r.sha256 for r in results} == {hashlib.sha256(PDF_BYTES).hexdigest()}
    assert await store.read(results[0].sha256) == PDF_BYTES


# --- disk layout ------------------------------------------------------------------------------


async def test_disk_layout_is_content_addressed(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    stored = await store.put_bytes(PDF_BYTES)
    h = stored.sha256
    assert (tmp_path / "sha256" / h[:2] / h[2:4] / h).read_bytes() == PDF_BYTES
    assert list((tmp_path / "tmp").iterdir()) == []


# --- sniffing and names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF_BYTES, PDF),
        (b"\x89PNG\r\n\x1a\n\x00\x00", PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, DOC),
        (b'<?xml version="1.0" encoding="UTF-8"?><edXML/>', XML),
        ("Quyết định số 123/QĐ-UBND\r\n".encode(), TEXT),
    ],
)
def test_sniff(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


def test_sniff_office_files_by_their_directory(tmp_path: Path) -> None:
    for data, expected in [(office("word"), DOCX), (office("xl"), XLSX), (plain_zip("a.txt"), ZIP)]:
        path = tmp_path / "f"
        path.write_bytes(data)
        assert sniff(data[:100], path) == expected


async def test_ole2_takes_the_declared_excel_type(tmp_path: Path) -> None:
    stored = await DiskStore(tmp_path).put_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
        declared_type="application/vnd.ms-excel",
    )
    assert stored.content_type == XLS


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("Quyết định 123-QĐ-UBND.pdf", "Quyết định 123-QĐ-UBND.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system32\\cmd.exe", "cmd.exe"),
        ("/abs/path/Tờ trình.docx", "Tờ trình.docx"),
        ("báo\x00cáo\x1f.pdf", "báocáo.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("CON.txt", "_CON.txt"),
        ("lpt1", "_lpt1"),
        ('a<b>c:d"e|f?g*h.pdf', "a_b_c_d_e_f_g_h.pdf"),
        ("  .hidden  ", "hidden"),
        ("Phu\u0323 lu\u0323c.pdf", "Phụ lục.pdf"),  # decomposed → NFC
    ],
)
def test_safe_file_name(given: str, safe: str) -> None:
    assert safe_file_name(given) == safe


def test_safe_file_name_caps_length_keeping_extension() -> None:
    name = safe_file_name("Đ" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 255
    assert name.startswith("ĐĐ")


@pytest.mark.parametrize("bad", ["", "..", "/", "../..", " . ", "\x00\x01"])
def test_safe_file_name_refuses_nothing_left(bad: str) -> None:
    with pytest.raises(AttachmentError) as err:
        safe_file_name(bad)
    assert err.value.field == "file_name"
