"""Build and parse edXML packages and status messages (QCVN 102:2016), defensively.

Every package built and every package parsed is validated against schema/edxml.xsd. Parsing is
hardened for input from other systems: a byte cap before lxml sees anything, no DOCTYPE at all
(so no entities: XXE and billion-laughs never reach the parser's entity code), no network, no
DTD loading, libxml2's huge-tree protections on, and caps on attachment count and size checked
on the base64 length before anything is decoded. Every failure is an EdxmlError naming the field.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any

from lxml import etree

from lgsp.agency_code import agency_code_problem

from .errors import EdxmlError
from .model import (
    EDXML_NS,
    ICT,
    XLINK_NS,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    MessageHeader,
    Organization,
    OtherInfo,
    Package,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    StatusCode,
    TraceHeader,
)

MiB = 1024 * 1024
DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
# libxml2 refuses a text node above 10,000,000 characters unless huge_tree is on (we keep it
# off), so one attachment's base64 must stay below that: 7 MiB encodes to about 9.8 MB.
MAX_ATTACHMENT_CEILING = 7 * MiB


@dataclass(frozen=True)
class Limits:
    """Caps applied when parsing (and building, so we never send what others would refuse)."""

    max_package_bytes: int = 48 * MiB
    max_attachment_bytes: int = MAX_ATTACHMENT_CEILING
    max_total_attachment_bytes: int = 32 * MiB
    max_attachments: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.max_attachment_bytes <= MAX_ATTACHMENT_CEILING:
            raise ValueError(
                f"max_attachment_bytes must be 1..{MAX_ATTACHMENT_CEILING} "
                "(libxml2's text-node limit with huge_tree off)"
            )


DEFAULT_LIMITS = Limits()


def _q(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


_XLINK_HREF = f"{{{XLINK_NS}}}href"
_local = threading.local()  # lxml schema objects and parsers are not shared across threads


def _schema() -> etree.XMLSchema:
    schema = getattr(_local, "schema", None)
    if schema is None:
        source = resources.files(__package__).joinpath("schema/edxml.xsd").read_bytes()
        schema = etree.XMLSchema(etree.fromstring(source, _parser()))
        _local.schema = schema
    return schema


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


# --- parsing ---------------------------------------------------------------------------------


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Package | Status:
    """A document package or a status message from edXML bytes; EdxmlError if not acceptable."""
    root = _load(data, limits)
    header = _child(root, "edXMLEnvelope", "edXMLHeader")
    if header.find(_q("Status")) is not None:
        return _read_status(header)
    return _read_package(root, header, limits)


def parse_package(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Package:
    result = parse(data, limits)
    if not isinstance(result, Package):
        raise EdxmlError("MessageHeader", "a status message, not a document package")
    return result


def parse_status(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Status:
    result = parse(data, limits)
    if not isinstance(result, Status):
        raise EdxmlError("Status", "a document package, not a status message")
    return result


_ENCODING_DECL = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _load(data: bytes, limits: Limits) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EdxmlError("document", "must be bytes")
    data = bytes(data)
    if len(data) > limits.max_package_bytes:
        raise EdxmlError(
            "document", f"{len(data)} bytes is over the {limits.max_package_bytes}-byte limit"
        )
    if not data.strip():
        raise EdxmlError("document", "is empty")
    # UTF-8 only: a NUL byte means UTF-16/32, whose DOCTYPE the byte scan below could not see.
    if b"\x00" in data:
        raise EdxmlError("document", "must be UTF-8 XML (found a NUL byte)")
    declared = _ENCODING_DECL.match(data.lstrip(b"\xef\xbb\xbf"))
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise EdxmlError("document", "must be encoded in UTF-8")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise EdxmlError("document", "DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise EdxmlError("document", f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encodings in odd declarations
        raise EdxmlError("document", f"not readable XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # belt and braces
        raise EdxmlError("document", "DOCTYPE and entity declarations are not allowed")
    if root.tag != _q("edXML"):
        raise EdxmlError("edXML", f"the root element must be edXML in namespace {EDXML_NS}")
    _validate(root)
    return root


def _validate(root: Any) -> None:
    schema = _schema()
    if schema.validate(root):
        return
    error = schema.error_log.last_error
    for entry in schema.error_log:  # the first error is the cause; later ones follow from it
        error = entry
        break
    raise EdxmlError(_error_field(root, error), _strip_ns(error.message))


_EXPECTED = re.compile(r"Expected is (?:one of )?\( \{[^}]*\}(\w+)")


def _error_field(root: Any, error: Any) -> str:
    element = _walk(root, error.path or "")
    if element is None:
        return "document"
    path = _path(element)
    expected = _EXPECTED.search(error.message)
    if expected and "Missing child element" in error.message:
        return f"{path}/{expected.group(1)}"
    if expected and "This element is not expected" in error.message:
        parent = element.getparent()
        base = _path(parent) if parent is not None else ""
        return f"{base}/{expected.group(1)}" if base else expected.group(1)
    return path


_STEP = re.compile(r"^(?:[^:\[]*:)?([^\[]+)(?:\[(\d+)\])?$")


def _walk(root: Any, path: str) -> Any | None:
    """The element libxml2's error path (/*/edXML:edXMLEnvelope/*[2]…) points at.

    Its prefixes are the document's own, so the path is followed by local names, not XPath.
    """
    steps = [s for s in path.split("/") if s]
    if not steps:
        return None
    element = root
    for step in steps[1:]:
        m = _STEP.match(step)
        if m is None:
            return None
        name, index = m.group(1), int(m.group(2) or 1)
        children = [
            c
            for c in element
            if isinstance(c.tag, str) and (name == "*" or etree.QName(c).localname == name)
        ]
        if len(children) < index:
            return None
        element = children[index - 1]
    return element


def _path(element: Any) -> str:
    """MessageHeader/To[2]/OrganId: the element's place below edXMLHeader or edXMLBody."""
    parts: list[str] = []
    while element is not None:
        name = etree.QName(element).localname
        if name in ("edXMLHeader", "edXMLBody", "edXML"):
            break
        parent = element.getparent()
        if parent is not None and len(parent.findall(element.tag)) > 1:
            same = [c for c in parent if c.tag == element.tag]
            name = f"{name}[{same.index(element) + 1}]"
        parts.append(name)
        element = parent
    return "/".join(reversed(parts)) or "edXML"


def _strip_ns(message: str) -> str:
    return re.sub(r"\{[^}]*\}", "", message)


def _child(element: Any, *names: str) -> Any:
    for name in names:
        element = element.find(_q(name))
        if element is None:  # the schema makes this unreachable; keep the error precise anyway
            raise EdxmlError(name, "is missing")
    return element


def _text(element: Any, name: str) -> str:
    child = element.find(_q(name))
    return "" if child is None or child.text is None else child.text


def _texts(element: Any, name: str) -> tuple[str, ...]:
    return tuple(c.text or "" for c in element.findall(_q(name)))


def _int(element: Any, name: str, default: int | None = None) -> int | None:
    value = _text(element, name).strip()
    return int(value) if value else default  # the schema has checked it is an xs:int


def _date(element: Any, name: str) -> date | None:
    child = element.find(_q(name))
    if child is None:
        return None
    try:
        return datetime.strptime(child.text or "", DATE_FORMAT).date()
    except ValueError:
        raise EdxmlError(_path(child), f"{child.text!r} is not a date (YYYY/MM/DD)") from None


def _required_date(element: Any, name: str) -> date:
    value = _date(element, name)
    if value is None:
        raise EdxmlError(f"{_path(element)}/{name}", "is missing")
    return value


def _timestamp(element: Any, name: str) -> datetime:
    child = _child(element, name)
    try:
        return datetime.strptime(child.text or "", TIMESTAMP_FORMAT).replace(tzinfo=ICT)
    except ValueError:
        raise EdxmlError(
            _path(child), f"{child.text!r} is not a timestamp (YYYY/MM/DD HH:MM:SS)"
        ) from None


def _read_organization(element: Any) -> Organization:
    return Organization(
        organ_id=_text(element, "OrganId"),
        organ_name=_text(element, "OrganName"),
        organization_in_charge=_text(element, "OrganizationInCharge"),
        organ_add=_text(element, "OrganAdd"),
        email=_text(element, "Email"),
        telephone=_text(element, "Telephone"),
        fax=_text(element, "Fax"),
        website=_text(element, "Website"),
    )


def _read_response_for(element: Any) -> ResponseFor:
    return ResponseFor(
        organ_id=_text(element, "OrganId"),
        code=_text(element, "Code"),
        promulgation_date=_required_date(element, "PromulgationDate"),
        document_id=_text(element, "DocumentId"),
    )


def _read_staff(element: Any | None) -> StaffInfo | None:
    if element is None:
        return None
    return StaffInfo(
        department=_text(element, "Department"),
        staff=_text(element, "Staff"),
        mobile=_text(element, "Mobile"),
        email=_text(element, "Email"),
    )


def _read_traces(header: Any) -> tuple[tuple[TraceHeader, ...], Any]:
    trace_list = header.find(_q("TraceHeaderList"))
    if trace_list is None:
        return (), None
    traces = tuple(
        TraceHeader(organ_id=_text(t, "OrganId"), timestamp=_timestamp(t, "Timestamp"))
        for t in trace_list.findall(_q("TraceHeader"))
    )
    return traces, trace_list.find(_q("Bussiness"))


def _read_status(header: Any) -> Status:
    status = _child(header, "Status")
    traces, _ = _read_traces(header)
    return Status(
        response_for=_read_response_for(_child(status, "ResponseFor")),
        from_=_read_organization(_child(status, "From")),
        status_code=StatusCode(_text(status, "StatusCode")),
        timestamp=_timestamp(status, "Timestamp"),
        description=_text(status, "Description"),
        staff_info=_read_staff(status.find(_q("StaffInfo"))),
        trace_headers=traces,
    )


def _read_package(root: Any, header: Any, limits: Limits) -> Package:
    mh = _child(header, "MessageHeader")
    other = mh.find(_q("OtherInfo"))
    appendixes = other.find(_q("Appendixes")) if other is not None else None
    to_places = mh.find(_q("ToPlaces"))
    message_header = MessageHeader(
        from_=_read_organization(_child(mh, "From")),
        to=tuple(_read_organization(t) for t in mh.findall(_q("To"))),
        code=Code(
            code_number=_text(_child(mh, "Code"), "CodeNumber"),
            code_notation=_text(_child(mh, "Code"), "CodeNotation"),
        ),
        promulgation_info=PromulgationInfo(
            place=_text(_child(mh, "PromulgationInfo"), "Place"),
            promulgation_date=_required_date(_child(mh, "PromulgationInfo"), "PromulgationDate"),
        ),
        document_type=DocumentType(
            type=_int(_child(mh, "DocumentType"), "Type") or 0,
            type_name=_text(_child(mh, "DocumentType"), "TypeName"),
        ),
        subject=_text(mh, "Subject"),
        content=_text(mh, "Content"),
        signer_info=SignerInfo(
            full_name=_text(_child(mh, "SignerInfo"), "FullName"),
            competence=_text(_child(mh, "SignerInfo"), "Competence"),
            position=_text(_child(mh, "SignerInfo"), "Position"),
        ),
        due_date=_date(mh, "DueDate"),
        to_places=_texts(to_places, "Place") if to_places is not None else (),
        other_info=OtherInfo()
        if other is None
        else OtherInfo(
            priority=Priority(_int(other, "Priority", 0) or 0),
            sphere_of_promulgation=_text(other, "SphereOfPromulgation"),
            typer_notation=_text(other, "TyperNotation"),
            promulgation_amount=_int(other, "PromulgationAmount"),
            page_amount=_int(other, "PageAmount"),
            appendixes=_texts(appendixes, "Appendix") if appendixes is not None else (),
        ),
        steering_type=_int(mh, "SteeringType", 0) or 0,
        response_for=tuple(_read_response_for(r) for r in mh.findall(_q("ResponseFor"))),
        document_id=_text(mh, "DocumentId"),
    )
    traces, bussiness = _read_traces(header)
    business = Business()
    if bussiness is not None:
        business = Business(
            doc_type=BusinessDocType(_int(bussiness, "BussinessDocType", 0) or 0),
            reason=_text(bussiness, "BussinessDocReason"),
            paper=_int(bussiness, "Paper", 0) == 1,
            staff_info=_read_staff(bussiness.find(_q("StaffInfo"))),
        )
    return Package(
        header=message_header,
        trace_headers=traces,
        business=business,
        attachments=_read_attachments(root, limits),
    )


_WHITESPACE = str.maketrans("", "", " \t\r\n")


def _read_attachments(root: Any, limits: Limits) -> tuple[Attachment, ...]:
    encoded = root.find(_q("AttachmentEncoded"))
    elements = [] if encoded is None else encoded.findall(_q("Attachment"))
    if len(elements) > limits.max_attachments:
        raise EdxmlError(
            "AttachmentEncoded",
            f"{len(elements)} attachments is over the limit of {limits.max_attachments}",
        )
    # Sizes first, from the base64 length alone: nothing is decoded if any cap is broken.
    total = 0
    payloads: list[str] = []
    for element in elements:
        text = _text(element, "ContentTransferEncoded")
        if any(c in text for c in " \t\r\n"):  # systems that wrap base64 lines (MIME style)
            text = text.translate(_WHITESPACE)
        size = len(text) // 4 * 3
        field = f"{_path(element)}/ContentTransferEncoded"
        if size - 2 > limits.max_attachment_bytes:
            raise EdxmlError(
                field, f"attachment is over the {limits.max_attachment_bytes}-byte limit"
            )
        total += size
        if total - 2 * len(payloads) > limits.max_total_attachment_bytes:
            raise EdxmlError(
                field,
                f"attachments together are over the {limits.max_total_attachment_bytes}-byte limit",
            )
        payloads.append(text)
    manifest = _manifest(root)
    attachments: list[Attachment] = []
    seen: set[str] = set()
    for element, text in zip(elements, payloads, strict=True):
        base = _path(element)
        content_id = _text(element, "ContentId")
        if content_id in seen:
            raise EdxmlError(f"{base}/ContentId", f"{content_id!r} is used twice")
        seen.add(content_id)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise EdxmlError(f"{base}/ContentTransferEncoded", "is not valid base64") from None
        if len(data) > limits.max_attachment_bytes:
            raise EdxmlError(
                f"{base}/ContentTransferEncoded",
                f"attachment is over the {limits.max_attachment_bytes}-byte limit",
            )
        attachments.append(
            Attachment(
                content_id=content_id,
                attachment_name=_text(element, "AttachmentName"),
                content_type=_text(element, "ContentType"),
                data=data,
                description=_text(element, "Description"),
            )
        )
    if manifest is not None and set(manifest) != seen:
        missing = sorted(set(manifest) - seen)
        extra = sorted(seen - set(manifest))
        raise EdxmlError(
            "edXMLManifest",
            f"references and attachments differ (no file for {missing}, unlisted {extra})",
        )
    return tuple(attachments)


def _manifest(root: Any) -> list[str] | None:
    manifest = root.find(f"{_q('edXMLEnvelope')}/{_q('edXMLBody')}/{_q('edXMLManifest')}")
    if manifest is None:
        return None
    ids = []
    for ref in manifest.findall(_q("Reference")):
        content_id = _text(ref, "ContentId") or ref.get(_XLINK_HREF, "")
        ids.append(content_id.removeprefix("cid:"))
    return ids


# --- building --------------------------------------------------------------------------------


class _Builder:
    """Writes elements in the schema's order; omits empty optional ones; names bad fields."""

    def sub(self, parent: Any, name: str, text: str | None = None, *, path: str = "") -> Any:
        element = etree.SubElement(parent, _q(name))
        if text is not None:
            try:
                element.text = text
            except ValueError:
                raise EdxmlError(
                    path or name, "contains characters XML cannot carry (control characters)"
                ) from None
        return element

    def opt(self, parent: Any, name: str, text: str, path: str) -> None:
        if text:
            self.sub(parent, name, text, path=f"{path}/{name}")

    def organization(self, parent: Any, name: str, org: Organization, path: str) -> None:
        _check_code(org.organ_id, f"{path}/OrganId")
        element = self.sub(parent, name)
        self.sub(element, "OrganId", org.organ_id, path=f"{path}/OrganId")
        self.opt(element, "OrganizationInCharge", org.organization_in_charge, path)
        self.opt(element, "OrganName", org.organ_name, path)
        self.opt(element, "OrganAdd", org.organ_add, path)
        self.opt(element, "Email", org.email, path)
        self.opt(element, "Telephone", org.telephone, path)
        self.opt(element, "Fax", org.fax, path)
        self.opt(element, "Website", org.website, path)

    def response_for(self, parent: Any, rf: ResponseFor, path: str) -> None:
        _check_code(rf.organ_id, f"{path}/OrganId")
        element = self.sub(parent, "ResponseFor")
        self.sub(element, "OrganId", rf.organ_id, path=f"{path}/OrganId")
        self.sub(element, "Code", rf.code, path=f"{path}/Code")
        self.sub(element, "PromulgationDate", f"{rf.promulgation_date:{DATE_FORMAT}}")
        self.opt(element, "DocumentId", rf.document_id, path)

    def staff(self, parent: Any, staff: StaffInfo | None, path: str) -> None:
        if staff is None:
            return
        element = self.sub(parent, "StaffInfo")
        self.opt(element, "Department", staff.department, path)
        self.opt(element, "Staff", staff.staff, path)
        self.opt(element, "Mobile", staff.mobile, path)
        self.opt(element, "Email", staff.email, path)

    def traces(
        self, header: Any, traces: tuple[TraceHeader, ...], business: Business | None
    ) -> None:
        if not traces and business is None:
            return
        element = self.sub(header, "TraceHeaderList")
        for i, trace in enumerate(traces, 1):
            path = f"TraceHeaderList/TraceHeader[{i}]"
            _check_code(trace.organ_id, f"{path}/OrganId")
            t = self.sub(element, "TraceHeader")
            self.sub(t, "OrganId", trace.organ_id)
            self.sub(t, "Timestamp", _format_timestamp(trace.timestamp, f"{path}/Timestamp"))
        if business is not None:
            path = "TraceHeaderList/Bussiness"
            b = self.sub(element, "Bussiness")
            self.sub(b, "BussinessDocType", str(int(business.doc_type)))
            self.opt(b, "BussinessDocReason", business.reason, path)
            self.staff(b, business.staff_info, f"{path}/StaffInfo")
            self.sub(b, "Paper", "1" if business.paper else "0")


def _check_code(code: str, field: str) -> None:
    problem = agency_code_problem(code)
    if problem is not None:
        raise EdxmlError(field, f"agency code {code!r} {problem}")


def _format_timestamp(value: datetime, field: str) -> str:
    if value.tzinfo is None:
        raise EdxmlError(field, "timestamp must be timezone-aware")
    return value.astimezone(ICT).strftime(TIMESTAMP_FORMAT)


def _envelope() -> tuple[Any, Any, Any]:
    root = etree.Element(_q("edXML"), nsmap={None: EDXML_NS})
    # The edXML: prefix on the envelope is what other systems' parsers look for by name.
    envelope = etree.SubElement(root, _q("edXMLEnvelope"), nsmap={"edXML": EDXML_NS})
    header = etree.SubElement(envelope, _q("edXMLHeader"))
    return root, envelope, header


def _finish(root: Any) -> bytes:
    _validate(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_package(package: Package, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """edXML bytes for a document package; EdxmlError naming the field if it is not valid."""
    b = _Builder()
    h = package.header
    root, envelope, header = _envelope()
    mh = b.sub(header, "MessageHeader")
    b.organization(mh, "From", h.from_, "MessageHeader/From")
    if not h.to:
        raise EdxmlError("MessageHeader/To", "at least one recipient is required")
    for i, to in enumerate(h.to, 1):
        b.organization(
            mh, "To", to, f"MessageHeader/To[{i}]" if len(h.to) > 1 else "MessageHeader/To"
        )
    code = b.sub(mh, "Code")
    b.sub(code, "CodeNumber", h.code.code_number, path="MessageHeader/Code/CodeNumber")
    b.sub(code, "CodeNotation", h.code.code_notation, path="MessageHeader/Code/CodeNotation")
    pi = b.sub(mh, "PromulgationInfo")
    b.sub(pi, "Place", h.promulgation_info.place, path="MessageHeader/PromulgationInfo/Place")
    b.sub(pi, "PromulgationDate", f"{h.promulgation_info.promulgation_date:{DATE_FORMAT}}")
    dt = b.sub(mh, "DocumentType")
    b.sub(dt, "Type", str(h.document_type.type))
    b.sub(dt, "TypeName", h.document_type.type_name, path="MessageHeader/DocumentType/TypeName")
    b.sub(mh, "Subject", h.subject, path="MessageHeader/Subject")
    b.opt(mh, "Content", h.content, "MessageHeader")
    si = b.sub(mh, "SignerInfo")
    b.opt(si, "Competence", h.signer_info.competence, "MessageHeader/SignerInfo")
    b.opt(si, "Position", h.signer_info.position, "MessageHeader/SignerInfo")
    b.sub(si, "FullName", h.signer_info.full_name, path="MessageHeader/SignerInfo/FullName")
    if h.due_date is not None:
        b.sub(mh, "DueDate", f"{h.due_date:{DATE_FORMAT}}")
    if h.to_places:
        places = b.sub(mh, "ToPlaces")
        for place in h.to_places:
            b.sub(places, "Place", place, path="MessageHeader/ToPlaces/Place")
    o = h.other_info
    oi = b.sub(mh, "OtherInfo")
    b.sub(oi, "Priority", str(int(o.priority)))
    b.opt(oi, "SphereOfPromulgation", o.sphere_of_promulgation, "MessageHeader/OtherInfo")
    b.opt(oi, "TyperNotation", o.typer_notation, "MessageHeader/OtherInfo")
    if o.promulgation_amount is not None:
        b.sub(oi, "PromulgationAmount", str(o.promulgation_amount))
    if o.page_amount is not None:
        b.sub(oi, "PageAmount", str(o.page_amount))
    if o.appendixes:
        apps = b.sub(oi, "Appendixes")
        for appendix in o.appendixes:
            b.sub(apps, "Appendix", appendix, path="MessageHeader/OtherInfo/Appendixes/Appendix")
    b.sub(mh, "SteeringType", str(h.steering_type))
    for i, rf in enumerate(h.response_for, 1):
        b.response_for(mh, rf, f"MessageHeader/ResponseFor[{i}]")
    b.opt(mh, "DocumentId", h.document_id, "MessageHeader")
    b.traces(header, package.trace_headers, package.business)
    _write_attachments(b, root, envelope, package.attachments, limits)
    return _finish(root)


def _write_attachments(
    b: _Builder, root: Any, envelope: Any, attachments: tuple[Attachment, ...], limits: Limits
) -> None:
    if len(attachments) > limits.max_attachments:
        raise EdxmlError(
            "AttachmentEncoded",
            f"{len(attachments)} attachments is over the limit of {limits.max_attachments}",
        )
    total = 0
    seen: set[str] = set()
    for i, a in enumerate(attachments, 1):
        field = f"AttachmentEncoded/Attachment[{i}]"
        if a.content_id in seen:
            raise EdxmlError(f"{field}/ContentId", f"{a.content_id!r} is used twice")
        seen.add(a.content_id)
        if len(a.data) > limits.max_attachment_bytes:
            raise EdxmlError(
                f"{field}/ContentTransferEncoded",
                f"attachment is over the {limits.max_attachment_bytes}-byte limit",
            )
        total += len(a.data)
        if total > limits.max_total_attachment_bytes:
            raise EdxmlError(
                f"{field}/ContentTransferEncoded",
                f"attachments together are over the {limits.max_total_attachment_bytes}-byte limit",
            )
    body = b.sub(envelope, "edXMLBody")
    if not attachments:
        return
    manifest = b.sub(body, "edXMLManifest")
    manifest.set("version", "1.0")
    for i, a in enumerate(attachments, 1):
        field = f"edXMLManifest/Reference[{i}]"
        ref = etree.SubElement(manifest, _q("Reference"), nsmap={"xlink": XLINK_NS})
        ref.set(_XLINK_HREF, f"cid:{a.content_id}")
        ref.set(f"{{{XLINK_NS}}}type", "simple")
        b.opt(ref, "Description", a.description, field)
        b.sub(ref, "AttachmentName", a.attachment_name, path=f"{field}/AttachmentName")
        b.sub(ref, "ContentType", a.content_type, path=f"{field}/ContentType")
        b.sub(ref, "ContentId", f"cid:{a.content_id}", path=f"{field}/ContentId")
    encoded = b.sub(root, "AttachmentEncoded")
    for i, a in enumerate(attachments, 1):
        field = f"AttachmentEncoded/Attachment[{i}]"
        element = b.sub(encoded, "Attachment")
        b.sub(element, "ContentType", a.content_type, path=f"{field}/ContentType")
        b.sub(element, "ContentId", a.content_id, path=f"{field}/ContentId")
        b.opt(element, "Description", a.description, field)
        b.sub(element, "ContentTransferEncoded", base64.b64encode(a.data).decode("ascii"))
        b.sub(element, "AttachmentName", a.attachment_name, path=f"{field}/AttachmentName")


def build_status(status: Status) -> bytes:
    """edXML bytes for a status message (01 arrived … 06 done, 13 recalled)."""
    b = _Builder()
    root, envelope, header = _envelope()
    st = b.sub(header, "Status")
    b.response_for(st, status.response_for, "Status/ResponseFor")
    b.organization(st, "From", status.from_, "Status/From")
    b.sub(st, "StatusCode", StatusCode(status.status_code).value)
    b.opt(st, "Description", status.description, "Status")
    b.sub(st, "Timestamp", _format_timestamp(status.timestamp, "Status/Timestamp"))
    b.staff(st, status.staff_info, "Status/StaffInfo")
    b.traces(header, status.trace_headers, None)
    b.sub(envelope, "edXMLBody")
    return _finish(root)


def build(message: Package | Status, limits: Limits = DEFAULT_LIMITS) -> bytes:
    if isinstance(message, Status):
        return build_status(message)
    return build_package(message, limits)
