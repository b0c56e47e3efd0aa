"""Enough of a refused package to answer it: who sent it, its DocumentId and recipients.

A package that fails the schema (say PromulgationDate 2026/02/30) still deserves a status 02
back to its sender (QCVN 102:2016: the receiver reports every package it refuses). `salvage`
reads the routing fields from such bytes with lxml in recover mode — no network, no DTD, no
entity expansion, any DOCTYPE/ENTITY declaration refused before lxml sees the bytes, and the
same byte cap as the strict codec — matching elements by local name, so any namespace or
none, either root form, and the XML part of a MIME package are read alike. It returns None
when the sender's code or the DocumentId cannot be read: those bytes go to the dead-letter
queue, since nobody can be answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from lxml import etree

from lgsp.agency_code import is_agency_code
from lgsp.multipart import MultipartError, looks_like_mime, split

from .codec import DEFAULT_LIMITS
from .errors import EdxmlError

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Where the XML starts: a declaration or the first edXML element (MIME headers come before;
# a tag, so `start="<edxml@…>"` and a Content-ID `<edxml@…>` are not taken for it).
_XML_START = re.compile(rb"<\?xml|<(?:[\w.-]+:)?edXML(?:Envelope)?[\s>/]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID = 100
MAX_TEXT = 200


@dataclass(frozen=True)
class Salvaged:
    """A package refused as malformed, with what can be read of its header."""

    sender: str  # From/OrganId
    document_id: str  # MessageHeader/DocumentId
    recipients: tuple[str, ...]  # To/OrganId that are well-formed codes
    code: str  # "CodeNumber/CodeNotation" as written, "" if unreadable
    promulgation_date: date | None  # None when missing or not a real date
    error: EdxmlError  # why the strict codec refused it

    @property
    def reason_vi(self) -> str:
        """The refusal as the sender's clerk reads it in the status 02."""
        return (
            "Gói tin không đúng quy chuẩn QCVN 102:2016 tại phần tử "
            f"{self.error.field} (chi tiết: {self.error.reason[:300]})."
        )


def salvage(data: bytes, error: EdxmlError) -> Salvaged | None:
    if len(data) > DEFAULT_LIMITS.max_package_bytes or b"\x00" in data:
        return None
    data = _xml_part(data)
    if _DECLARATION.search(data):
        return None
    start = _XML_START.search(data)
    if start is None:
        return None
    parser = etree.XMLParser(
        recover=True,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(data[start.start() :], parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None:
        return None
    header = _first(root, "MessageHeader")
    if header is None:  # a malformed status is not answered with a status
        return None
    sender = _text(_first(_first(header, "From"), "OrganId"))
    document_id = _text(_first(header, "DocumentId"))
    if not is_agency_code(sender) or not _usable_id(document_id):
        return None
    recipients = tuple(
        dict.fromkeys(
            code
            for to in _children(header, "To")
            if is_agency_code(code := _text(_first(to, "OrganId")))
        )
    )
    code_el = _first(header, "Code")
    number, notation = _text(_first(code_el, "CodeNumber")), _text(_first(code_el, "CodeNotation"))
    code = f"{number}/{notation}" if number and notation else ""
    return Salvaged(
        sender=sender,
        document_id=document_id,
        recipients=recipients,
        code=_clean(code),
        promulgation_date=_date(
            _text(_first(_first(header, "PromulgationInfo"), "PromulgationDate"))
        ),
        error=error,
    )


def _xml_part(data: bytes) -> bytes:
    """The root part of a MIME package (decoded, whatever its transfer encoding); the bytes
    themselves when they are not MIME or too broken to split (then the XML is looked for)."""
    if not looks_like_mime(data):
        return data
    try:
        return split(data, max_parts=DEFAULT_LIMITS.max_attachments + 1).root.decode()
    except MultipartError:
        return data


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: etree._Element | None, name: str) -> Iterator[etree._Element]:
    if el is None:
        return iter(())
    return (c for c in el if _local(c) == name)


def _first(el: etree._Element | None, name: str) -> etree._Element | None:
    """The first descendant named `name` (a header can sit at any depth in a recovered tree)."""
    if el is None:
        return None
    for child in el.iter():
        if child is not el and _local(child) == name:
            return child
    return None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip()[: MAX_TEXT * 2] if el is not None else ""


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)[:MAX_TEXT]


def _usable_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and not _CONTROL.search(value)


def _date(text: str) -> date | None:
    m = re.fullmatch(r"(\d{4})[/-](\d{2})[/-](\d{2})", text)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
