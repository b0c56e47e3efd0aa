"""A minimal edXML (QCVN 102:2016) builder, written apart from the documents service's codec
on purpose: tests use it as another system would, to drive the national document axis mock
and its connector with a document header (routing fields only) or a status message. Not
used by any service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from lxml import etree

NS = "http://www.e-doc.vn/Schema/"
STATUS_CODES = ("01", "02", "03", "04", "05", "06", "13", "15", "16")


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        child.text = text
    return child


def _envelope() -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{NS}}}edXMLEnvelope", nsmap={"edXML": NS})
    return root, _el(root, "edXMLHeader")


def build_document(
    *,
    message_id: str,
    sender: tuple[str, str],
    recipients: Sequence[tuple[str, str]],
    subject: str,
    code_number: str = "",
    code_notation: str = "",
    document_type: str = "Công văn",
    promulgation_place: str = "",
    promulgation_date: date | None = None,
    signer: str = "",
    body: str = "",
) -> bytes:
    """sender and each recipient: (identifier code, name)."""
    root, header = _envelope()
    mh = _el(header, "MessageHeader")
    frm = _el(mh, "From")
    _el(frm, "OrganId", sender[0])
    _el(frm, "OrganName", sender[1])
    for code, name in recipients:
        to = _el(mh, "To")
        _el(to, "OrganId", code)
        _el(to, "OrganName", name)
    _el(mh, "DocumentId", message_id)
    code = _el(mh, "Code")
    _el(code, "CodeNumber", code_number)
    _el(code, "CodeNotation", code_notation)
    info = _el(mh, "PromulgationInfo")
    _el(info, "Place", promulgation_place)
    _el(info, "PromulgationDate", (promulgation_date or date.today()).isoformat())
    _el(_el(mh, "DocumentType"), "TypeName", document_type)
    _el(mh, "Subject", subject)
    _el(_el(mh, "SignerInfo"), "FullName", signer)
    _el(header, "TraceHeaderList")
    _el(_el(root, "edXMLBody"), "Content", body)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_status(
    *,
    original_sender: str,
    original_message_id: str,
    reporter: tuple[str, str],
    status_code: str,
    description: str = "",
    at: datetime | None = None,
) -> bytes:
    """A status (01 arrived … 06 done, 13 recalled, 15/16 recall agreed/refused) for its sender."""
    if status_code not in STATUS_CODES:
        raise ValueError(f"edXML status code must be one of {', '.join(STATUS_CODES)}")
    root, header = _envelope()
    st = _el(header, "Status")
    rf = _el(st, "ResponseFor")
    _el(rf, "OrganId", original_sender)
    _el(rf, "DocumentId", original_message_id)
    frm = _el(st, "From")
    _el(frm, "OrganId", reporter[0])
    _el(frm, "OrganName", reporter[1])
    _el(st, "StatusCode", status_code)
    _el(st, "Description", description)
    _el(st, "Timestamp", (at or datetime.now(UTC)).isoformat(timespec="seconds"))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
