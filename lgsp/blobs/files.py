"""What a file is and what it may be called: type sniffing by magic bytes, safe file names.

Types come from the content, never from the name or the uploader's claim: a PDF is a PDF
because it starts with %PDF-. Only the types officials exchange are allowed; executables and
anything unrecognised are refused.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from pathlib import Path

from .errors import AttachmentError

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ZIP = "application/zip"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PNG = "image/png"
JPEG = "image/jpeg"
XML = "application/xml"
TEXT = "text/plain"

ALLOWED_TYPES = frozenset({PDF, DOCX, XLSX, PPTX, ZIP, DOC, XLS, PNG, JPEG, XML, TEXT})
OLE2_TYPES = frozenset({DOC, XLS, "application/vnd.ms-powerpoint"})
# Declared types that mean the same as what we sniff.
_ALIASES = {"text/xml": XML, "image/jpg": JPEG, "image/pjpeg": JPEG}

SNIFF_BYTES = 8192  # how much of the head sniffing looks at (plus the ZIP directory)

_EXECUTABLE_MAGIC = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java executable"),
    (b"#!", "a script"),
)


def sniff(head: bytes, path: Path | None = None) -> str:
    """The MIME type of a file from its first bytes (and, for ZIP, its directory at `path`).

    Raises AttachmentError("content", …) for executables and unknown types.
    """
    for magic, what in _EXECUTABLE_MAGIC:
        if head.startswith(magic):
            raise AttachmentError("content", f"{what} is not an allowed attachment")
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return DOC  # OLE2 compound file; refined from the declared type by the caller
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    text_type = _text_kind(head)
    if text_type is not None:
        return text_type
    raise AttachmentError("content", "the file type is not recognised or not allowed")


def _zip_kind(path: Path | None) -> str:
    if path is None:
        return ZIP
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()  # the central directory only: nothing is decompressed
    except (zipfile.BadZipFile, OSError, ValueError):
        raise AttachmentError("content", "a damaged ZIP/Office file") from None
    if any(
        n.lower().endswith((".exe", ".dll", ".bat", ".cmd", ".scr", ".js", ".vbs")) for n in names
    ):
        raise AttachmentError("content", "a ZIP containing executables is not allowed")
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return DOCX
        if any(n.startswith("xl/") for n in names):
            return XLSX
        if any(n.startswith("ppt/") for n in names):
            return PPTX
    return ZIP


def _text_kind(head: bytes) -> str | None:
    sample = head[:SNIFF_BYTES]
    if b"\x00" in sample:
        return None
    sample = sample.removeprefix(b"\xef\xbb\xbf")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return None
        text = sample[: exc.start].decode("utf-8")
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\r\n\f")
    if controls:
        return None
    return XML if text.lstrip().startswith("<?xml") else TEXT


def check_declared(declared: str, sniffed: str) -> str:
    """The type to store: the sniffed one, refined by a consistent declared type.

    A declared type that contradicts the content is refused (a .exe renamed to .pdf, say).
    """
    declared = _ALIASES.get(declared.strip().lower(), declared.strip().lower())
    if declared in ("", "application/octet-stream", sniffed):
        return sniffed
    if sniffed == DOC and declared in OLE2_TYPES:
        return declared
    if sniffed == ZIP and declared in (DOCX, XLSX, PPTX):
        return sniffed  # an Office name on a plain ZIP: store what it really is
    if sniffed == TEXT and declared.startswith("text/"):
        return TEXT
    raise AttachmentError("content_type", f"declared {declared!r} but the content is {sniffed!r}")


_WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$", re.IGNORECASE)
_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*]')
MAX_NAME_BYTES = 255


def safe_file_name(name: str) -> str:
    """A file name safe to show, store and offer for download; keeps Vietnamese letters.

    Strips any directory part (POSIX or Windows), control and format characters (including
    bidi overrides that disguise "fdp.exe" as "exe.pdf"), characters Windows forbids, leading
    dots and spaces, and Windows device names; caps the length at 255 UTF-8 bytes keeping the
    extension. Raises AttachmentError("file_name", …) when nothing usable is left.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = _RESERVED_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name:
        raise AttachmentError("file_name", "no usable file name is left after cleaning")
    if _WINDOWS_RESERVED.match(name):
        name = f"_{name}"
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = name, ""
        suffix = f".{ext}" if ext else ""
        budget = MAX_NAME_BYTES - len(suffix.encode())
        stem = stem.encode()[:budget].decode("utf-8", "ignore").rstrip(" .")
        name = stem + suffix
    return name
