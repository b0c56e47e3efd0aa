"""The few edXML (QCVN 102:2016) header fields the axis routes by, read with a hardened parser.

Only the routing fields are read: From/OrganId, To/OrganId, DocumentId of a MessageHeader, or
ResponseFor/From/StatusCode of a Status. Elements are matched by local name so either the
edXML namespace or none is accepted. The parser never touches the network, never loads a DTD
and never expands entities; a document that declares a DOCTYPE at all is refused, which
rules out entity-expansion bombs and external entities before lxml sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from lgsp.agency_code import is_agency_code

NS = "http://www.e-doc.vn/Schema/"
# 15 and 16: the recipient agrees to, or refuses, a recall (13) of a document it holds.
STATUS_CODES = {"01", "02", "03", "04", "05", "06", "13", "15", "16"}
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class EdxmlError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class DocumentHeader:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str


@dataclass(frozen=True)
class StatusHeader:
    original_sender: str  # ResponseFor/OrganId: whose mailbox receives the status
    original_message_id: str  # ResponseFor/DocumentId
    reporter: str  # From/OrganId
    status_code: str
    description: str


def valid_agency_code(code: str) -> bool:
    return is_agency_code(code)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse(body: bytes) -> etree._Element:
    if _DTD.search(body):
        raise EdxmlError("body", "DOCTYPE and ENTITY declarations are not allowed")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise EdxmlError("body", f"not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise EdxmlError("body", "DOCTYPE is not allowed")  # e.g. a UTF-16 body
    if etree.QName(root).localname == "edXML":  # the envelope wrapped with its attachments
        envelopes = _find(root, "edXMLEnvelope")
        if len(envelopes) != 1:
            raise EdxmlError("body", "an edXML package holds exactly one edXMLEnvelope")
        root = envelopes[0]
    if etree.QName(root).localname != "edXMLEnvelope":
        raise EdxmlError("body", "root element must be edXMLEnvelope (or edXML wrapping it)")
    return root


def _find(node: etree._Element, *path: str) -> list[etree._Element]:
    found = [node]
    for name in path:
        found = [
            child
            for parent in found
            for child in parent
            if isinstance(child.tag, str) and etree.QName(child).localname == name
        ]
    return found


def _text(node: etree._Element, *path: str) -> str:
    hits = _find(node, *path)
    return (hits[0].text or "").strip() if hits else ""


def _agency(value: str, field: str) -> str:
    if not value:
        raise EdxmlError(field, "missing")
    if not valid_agency_code(value):
        raise EdxmlError(field, f"{value!r} is not an agency identifier code")
    return value


def kind_of(root: etree._Element) -> str:
    """ "document" (a MessageHeader) or "status" (a Status) package."""
    if _find(root, "edXMLHeader", "MessageHeader"):
        return "document"
    if _find(root, "edXMLHeader", "Status"):
        return "status"
    raise EdxmlError("edXMLHeader", "needs a MessageHeader or a Status")


def document_header(root: etree._Element) -> DocumentHeader:
    header = _find(root, "edXMLHeader", "MessageHeader")[0]
    message_id = _text(header, "DocumentId") or _text(header, "MessageId")
    if not message_id or len(message_id) > 100:
        raise EdxmlError("DocumentId", "missing or longer than 100 characters")
    sender = _agency(_text(header, "From", "OrganId"), "From/OrganId")
    recipients = tuple(
        dict.fromkeys(
            _agency((to.text or "").strip(), "To/OrganId") for to in _find(header, "To", "OrganId")
        )
    )
    if not recipients:
        raise EdxmlError("To/OrganId", "at least one recipient is needed")
    return DocumentHeader(message_id, sender, recipients, _text(header, "Subject"))


def status_header(root: etree._Element) -> StatusHeader:
    status = _find(root, "edXMLHeader", "Status")[0]
    code = _text(status, "StatusCode")
    if code not in STATUS_CODES:
        raise EdxmlError("StatusCode", f"{code!r} is not one of {', '.join(sorted(STATUS_CODES))}")
    original_id = _text(status, "ResponseFor", "DocumentId")
    if not original_id:
        raise EdxmlError("ResponseFor/DocumentId", "missing")
    return StatusHeader(
        original_sender=_agency(_text(status, "ResponseFor", "OrganId"), "ResponseFor/OrganId"),
        original_message_id=original_id,
        reporter=_agency(_text(status, "From", "OrganId"), "From/OrganId"),
        status_code=code,
        description=_text(status, "Description"),
    )
