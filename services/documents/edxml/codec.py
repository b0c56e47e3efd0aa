"""Parse edXML packages and status messages (QCVN 102:2016) as real senders send them.

Accepted forms: plain XML (files inline, base64 in AttachmentEncoded) or a MIME multipart
(multipart/related or mixed) whose root part is the XML and whose other parts are the files,
named by ``cid:`` in the manifest; the root may be ``edXML`` or a bare ``edXMLEnvelope``; the
variants of element names and orders that widely used SDKs write are brought to the schema's
form (normalize.py) and then validated against schema/edxml.xsd. A byte cap applies before
anything is parsed; count and size caps apply to the files before any is decoded. Every failure
is an EdxmlError naming the field. Writing is in writer.py (one writer, one form).
"""

from __future__ import annotations

from typing import Any

from lgsp.multipart import MultipartError, Part, looks_like_mime, split

from .errors import EdxmlError
from .limits import DEFAULT_LIMITS, Limits
from .model import Package, Status
from .normalize import normalize
from .reader import child, read_package, read_status
from .writer import build, build_package, build_status
from .xmltree import load, q, validate

__all__ = ["build", "build_package", "build_status", "parse", "parse_package", "parse_status"]


def parse(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, content_type: str | None = None
) -> Package | Status:
    """A document package or a status message; EdxmlError if not acceptable.

    `data` is XML, or a MIME message with its own headers; `content_type` is the media type
    the bytes came with when the MIME headers travelled apart (an HTTP Content-Type).
    """
    root, parts = _load(data, limits, content_type)
    header = child(root, "edXMLEnvelope", "edXMLHeader")
    if header.find(q("Status")) is not None:
        if parts:
            raise EdxmlError("Status", "a status message carries no files (found MIME parts)")
        return read_status(header)
    return read_package(root, header, limits, parts)


def parse_package(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, content_type: str | None = None
) -> Package:
    result = parse(data, limits, content_type=content_type)
    if not isinstance(result, Package):
        raise EdxmlError("MessageHeader", "a status message, not a document package")
    return result


def parse_status(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, content_type: str | None = None
) -> Status:
    result = parse(data, limits, content_type=content_type)
    if not isinstance(result, Status):
        raise EdxmlError("Status", "a document package, not a status message")
    return result


_XML_TYPES = frozenset({"application/xml", "text/xml", "application/xop+xml"})


def _load(data: bytes, limits: Limits, content_type: str | None) -> tuple[Any, dict[str, Part]]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EdxmlError("document", "must be bytes")
    data = bytes(data)
    if len(data) > limits.max_package_bytes:
        raise EdxmlError(
            "document", f"{len(data)} bytes is over the {limits.max_package_bytes}-byte limit"
        )
    parts: dict[str, Part] = {}
    media = (content_type or "").split(";")[0].strip().lower()
    if media.startswith("multipart/") or (not content_type and looks_like_mime(data)):
        try:
            mime = split(data, content_type=content_type, max_parts=limits.max_attachments + 1)
            if mime.root.content_type not in _XML_TYPES:
                raise MultipartError(
                    mime.root.name, f"the root part is {mime.root.content_type}, not XML"
                )
            xml = mime.root.decode()
        except MultipartError as e:
            raise EdxmlError(f"MIME {e.field}", e.reason) from None
        parts = mime.parts
    else:
        xml = data
    root = normalize(load(xml))
    validate(root)
    return root, parts
