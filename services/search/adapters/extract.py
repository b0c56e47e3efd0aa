"""Text of attachments for the index: PDF (pypdf) and DOCX (python-docx), within caps.

Extraction never raises: a malformed, encrypted, oversized or unknown file gives "" and a
reason, so one bad upload cannot stop the indexer. Caps bound what one file may cost: its
size, its pages, the uncompressed size of a DOCX's XML (zip bombs), the characters kept and
the wall time (checked between pages; pypdf is pure Python and cannot be interrupted
mid-page, which the page and size caps bound instead).
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from dataclasses import dataclass

log = logging.getLogger(__name__)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024  # larger files are indexed without their text
    max_pages: int = 300
    max_chars: int = 200_000  # kept per file: more than any official document needs
    max_seconds: float = 10.0
    max_docx_xml_bytes: int = 50 * 1024 * 1024  # uncompressed word/document.xml


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    reason: str = ""  # why text is empty or cut: "", "unsupported", "too large", "malformed: …"


_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n{3,}")


def _tidy(text: str, limit: int) -> str:
    text = text.replace("\x00", " ")
    return _LINES.sub("\n\n", _SPACES.sub(" ", text)).strip()[:limit]


def kind_of(data: bytes, content_type: str = "") -> str:
    """ "pdf", "docx" or "" — from the bytes, not the claimed type."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                if "word/document.xml" in z.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            return ""
    return ""


def extract_text(data: bytes, content_type: str = "", limits: Limits = Limits()) -> Extracted:
    if len(data) > limits.max_bytes:
        return Extracted("", "too large")
    kind = kind_of(data, content_type)
    try:
        if kind == "pdf":
            return _pdf(data, limits)
        if kind == "docx":
            return _docx(data, limits)
    except Exception as e:  # any parser failure: the file is indexed without text
        return Extracted("", f"malformed: {type(e).__name__}: {str(e)[:200]}")
    return Extracted("", "unsupported")


def _pdf(data: bytes, limits: Limits) -> Extracted:
    from pypdf import PdfReader

    started = time.monotonic()
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            reader.decrypt("")  # many "encrypted" PDFs only restrict printing
        except Exception:
            return Extracted("", "encrypted")
    parts: list[str] = []
    size = 0
    reason = ""
    for i, page in enumerate(reader.pages):
        if i >= limits.max_pages:
            reason = "page cap"
            break
        if time.monotonic() - started > limits.max_seconds:
            reason = "time cap"
            break
        text = page.extract_text() or ""
        parts.append(text)
        size += len(text)
        if size >= limits.max_chars:
            reason = "char cap"
            break
    return Extracted(_tidy("\n".join(parts), limits.max_chars), reason)


def _docx(data: bytes, limits: Limits) -> Extracted:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml_size = sum(i.file_size for i in z.infolist() if i.filename.startswith("word/"))
    if xml_size > limits.max_docx_xml_bytes:
        return Extracted("", "too large (uncompressed)")
    import docx

    d = docx.Document(io.BytesIO(data))
    parts: list[str] = [p.text for p in d.paragraphs]
    for table in d.tables:  # official documents put lists of recipients, tasks… in tables
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return Extracted(_tidy("\n".join(parts), limits.max_chars))
