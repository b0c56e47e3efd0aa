"""Write edXML packages and status messages: the one writer, in the strictest common form.

What we send is what every reader we know of reads (docs/documents-exchange.md): the full
``edXML`` root, ``edXMLManifest`` with Reference carrying both ``xlink:href`` and ContentId
(``cid:`` form), and every file inline, base64 in ``AttachmentEncoded`` (not as MIME parts,
which not every SDK reads). Elements go in the schema's order, empty optional ones are omitted,
and the result is validated against the schema before it leaves.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from lxml import etree

from lgsp.agency_code import agency_code_problem

from .errors import EdxmlError
from .limits import DEFAULT_LIMITS, Limits
from .model import (
    EDXML_NS,
    ICT,
    XLINK_NS,
    Attachment,
    Business,
    Organization,
    Package,
    ResponseFor,
    StaffInfo,
    Status,
    StatusCode,
    TraceHeader,
)
from .reader import DATE_FORMAT, TIMESTAMP_FORMAT
from .xmltree import q as _q
from .xmltree import validate as _validate

_XLINK_HREF = f"{{{XLINK_NS}}}href"


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
