"""The model from a validated edXML tree, with its files inline (base64) or as MIME parts."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lgsp.multipart import MultipartError, Part

from .errors import EdxmlError
from .limits import Limits
from .model import (
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
from .normalize import bare_content_id
from .xmltree import path, q

DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_XLINK_HREF = f"{{{XLINK_NS}}}href"


def child(element: Any, *names: str) -> Any:
    for name in names:
        element = element.find(q(name))
        if element is None:  # the schema makes this unreachable; keep the error precise anyway
            raise EdxmlError(name, "is missing")
    return element


def _text(element: Any, name: str) -> str:
    found = element.find(q(name))
    return "" if found is None or found.text is None else found.text


def _texts(element: Any, name: str) -> tuple[str, ...]:
    return tuple(c.text or "" for c in element.findall(q(name)))


def _int(element: Any, name: str, default: int | None = None) -> int | None:
    value = _text(element, name).strip()
    return int(value) if value else default  # the schema has checked it is an xs:int


def _date(element: Any, name: str) -> date | None:
    found = element.find(q(name))
    if found is None:
        return None
    try:
        return datetime.strptime(found.text or "", DATE_FORMAT).date()
    except ValueError:
        raise EdxmlError(path(found), f"{found.text!r} is not a date (YYYY/MM/DD)") from None


def _required_date(element: Any, name: str) -> date:
    value = _date(element, name)
    if value is None:
        raise EdxmlError(f"{path(element)}/{name}", "is missing")
    return value


def _timestamp(element: Any, name: str) -> datetime:
    found = child(element, name)
    try:
        return datetime.strptime(found.text or "", TIMESTAMP_FORMAT).replace(tzinfo=ICT)
    except ValueError:
        raise EdxmlError(
            path(found), f"{found.text!r} is not a timestamp (YYYY/MM/DD HH:MM:SS)"
        ) from None


def _organization(element: Any) -> Organization:
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


def _response_for(element: Any) -> ResponseFor:
    return ResponseFor(
        organ_id=_text(element, "OrganId"),
        code=_text(element, "Code"),
        promulgation_date=_required_date(element, "PromulgationDate"),
        document_id=_text(element, "DocumentId"),
    )


def _staff(element: Any | None) -> StaffInfo | None:
    if element is None:
        return None
    return StaffInfo(
        department=_text(element, "Department"),
        staff=_text(element, "Staff"),
        mobile=_text(element, "Mobile"),
        email=_text(element, "Email"),
    )


def _traces(header: Any) -> tuple[tuple[TraceHeader, ...], Any]:
    trace_list = header.find(q("TraceHeaderList"))
    if trace_list is None:
        return (), None
    traces = tuple(
        TraceHeader(organ_id=_text(t, "OrganId"), timestamp=_timestamp(t, "Timestamp"))
        for t in trace_list.findall(q("TraceHeader"))
    )
    return traces, trace_list.find(q("Bussiness"))


def read_status(header: Any) -> Status:
    status = child(header, "Status")
    traces, _ = _traces(header)
    return Status(
        response_for=_response_for(child(status, "ResponseFor")),
        from_=_organization(child(status, "From")),
        status_code=StatusCode(_text(status, "StatusCode")),
        timestamp=_timestamp(status, "Timestamp"),
        description=_text(status, "Description"),
        staff_info=_staff(status.find(q("StaffInfo"))),
        trace_headers=traces,
    )


def _message_header(mh: Any) -> MessageHeader:
    other = mh.find(q("OtherInfo"))
    appendixes = other.find(q("Appendixes")) if other is not None else None
    to_places = mh.find(q("ToPlaces"))
    code, info = child(mh, "Code"), child(mh, "PromulgationInfo")
    kind, signer = child(mh, "DocumentType"), child(mh, "SignerInfo")
    return MessageHeader(
        from_=_organization(child(mh, "From")),
        to=tuple(_organization(t) for t in mh.findall(q("To"))),
        code=Code(code_number=_text(code, "CodeNumber"), code_notation=_text(code, "CodeNotation")),
        promulgation_info=PromulgationInfo(
            place=_text(info, "Place"),
            promulgation_date=_required_date(info, "PromulgationDate"),
        ),
        document_type=DocumentType(type=_int(kind, "Type") or 0, type_name=_text(kind, "TypeName")),
        subject=_text(mh, "Subject"),
        content=_text(mh, "Content"),
        signer_info=SignerInfo(
            full_name=_text(signer, "FullName"),
            competence=_text(signer, "Competence"),
            position=_text(signer, "Position"),
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
        response_for=tuple(_response_for(r) for r in mh.findall(q("ResponseFor"))),
        document_id=_text(mh, "DocumentId"),
    )


def read_package(root: Any, header: Any, limits: Limits, parts: dict[str, Part]) -> Package:
    message_header = _message_header(child(header, "MessageHeader"))
    traces, bussiness = _traces(header)
    business = Business()
    if bussiness is not None:
        business = Business(
            doc_type=BusinessDocType(_int(bussiness, "BussinessDocType", 0) or 0),
            reason=_text(bussiness, "BussinessDocReason"),
            paper=_int(bussiness, "Paper", 0) == 1,
            staff_info=_staff(bussiness.find(q("StaffInfo"))),
        )
    return Package(
        header=message_header,
        trace_headers=traces,
        business=business,
        attachments=_attachments(root, limits, parts),
    )


# --- files -----------------------------------------------------------------------------------

_WHITESPACE = str.maketrans("", "", " \t\r\n")


@dataclass(frozen=True)
class _Reference:
    """A manifest entry: the file a cid: names, with its name, type and description."""

    field: str  # edXMLManifest/Reference[2]
    content_id: str
    attachment_name: str
    content_type: str
    description: str


@dataclass(frozen=True)
class _Inline:
    element: Any
    field: str
    content_id: str
    base64: str


class _Budget:
    """Count and size caps over inline and MIME files together, checked before decoding."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0

    def take(self, size_bound: int, field: str) -> None:
        limits = self.limits
        if size_bound - 2 > limits.max_attachment_bytes:
            raise EdxmlError(
                field, f"attachment is over the {limits.max_attachment_bytes}-byte limit"
            )
        self.total += max(size_bound - 2, 0)
        if self.total > limits.max_total_attachment_bytes:
            raise EdxmlError(
                field,
                f"attachments together are over the {limits.max_total_attachment_bytes}-byte limit",
            )

    def check(self, data: bytes, field: str) -> None:
        if len(data) > self.limits.max_attachment_bytes:
            raise EdxmlError(
                field, f"attachment is over the {self.limits.max_attachment_bytes}-byte limit"
            )


def _attachments(root: Any, limits: Limits, parts: dict[str, Part]) -> tuple[Attachment, ...]:
    inline = _inline(root)
    manifest = _manifest(root)
    count = len(inline) + len(parts)
    if count > limits.max_attachments:
        raise EdxmlError(
            "AttachmentEncoded" if not parts else "edXMLManifest",
            f"{count} attachments is over the limit of {limits.max_attachments}",
        )
    budget = _Budget(limits)
    by_id: dict[str, _Inline] = {}
    for item in inline:
        if item.content_id in by_id:
            raise EdxmlError(f"{item.field}/ContentId", f"{item.content_id!r} is used twice")
        budget.take(len(item.base64) // 4 * 3, f"{item.field}/ContentTransferEncoded")
        by_id[item.content_id] = item
    for content_id, part in parts.items():
        if content_id in by_id:
            raise EdxmlError(
                f"{by_id[content_id].field}/ContentId",
                f"{content_id!r} is carried twice: inline and as a MIME part",
            )
        budget.take(part.decoded_size_bound(), _part_field(part))
    if manifest is None:
        if parts:  # a part no manifest names has no name or type: nothing to register it as
            raise EdxmlError("edXMLManifest", "is missing: it must list the MIME parts")
        return tuple(_from_inline(item, budget) for item in inline)
    listed: set[str] = set()
    attachments: list[Attachment] = []
    for ref in manifest:
        if ref.content_id in listed:
            raise EdxmlError(f"{ref.field}/ContentId", f"cid:{ref.content_id} is listed twice")
        listed.add(ref.content_id)
        if ref.content_id in by_id:
            attachments.append(_from_inline(by_id[ref.content_id], budget))
        elif ref.content_id in parts:
            attachments.append(_from_part(ref, parts[ref.content_id], budget))
        elif parts:
            raise EdxmlError(
                f"{ref.field}/ContentId",
                f"cid:{ref.content_id} names no MIME part and no attachment in AttachmentEncoded",
            )
    unlisted = sorted(set(by_id) - listed) + sorted(set(parts) - listed)
    missing = sorted(listed - set(by_id) - set(parts))
    if missing or unlisted:
        raise EdxmlError(
            "edXMLManifest",
            f"references and attachments differ (no file for {missing}, unlisted {unlisted})",
        )
    return tuple(attachments)


def _inline(root: Any) -> list[_Inline]:
    encoded = root.find(q("AttachmentEncoded"))
    if encoded is None:
        return []
    items = []
    for element in encoded.findall(q("Attachment")):
        text = _text(element, "ContentTransferEncoded")
        if any(c in text for c in " \t\r\n"):  # systems that wrap base64 lines (MIME style)
            text = text.translate(_WHITESPACE)
        items.append(_Inline(element, path(element), _text(element, "ContentId"), text))
    return items


def _from_inline(item: _Inline, budget: _Budget) -> Attachment:
    field = f"{item.field}/ContentTransferEncoded"
    try:
        data = base64.b64decode(item.base64, validate=True)
    except (binascii.Error, ValueError):
        raise EdxmlError(field, "is not valid base64") from None
    budget.check(data, field)
    element = item.element
    return Attachment(
        content_id=item.content_id,
        attachment_name=_text(element, "AttachmentName"),
        content_type=_text(element, "ContentType"),
        data=data,
        description=_text(element, "Description"),
    )


def _part_field(part: Part) -> str:
    return f"MIME {part.name} <{part.content_id}>"


def _from_part(ref: _Reference, part: Part, budget: _Budget) -> Attachment:
    try:
        data = part.decode()
    except MultipartError as e:
        raise EdxmlError(_part_field(part), e.reason) from None
    budget.check(data, _part_field(part))
    return Attachment(
        content_id=ref.content_id,
        attachment_name=ref.attachment_name,
        content_type=ref.content_type,
        data=data,
        description=ref.description,
    )


def _manifest(root: Any) -> list[_Reference] | None:
    manifest = root.find(f"{q('edXMLEnvelope')}/{q('edXMLBody')}/{q('edXMLManifest')}")
    if manifest is None:
        return None
    return [
        _Reference(
            field=path(ref),
            content_id=bare_content_id(_text(ref, "ContentId") or ref.get(_XLINK_HREF, "")),
            attachment_name=_text(ref, "AttachmentName"),
            content_type=_text(ref, "ContentType"),
            description=_text(ref, "Description"),
        )
        for ref in manifest.findall(q("Reference"))
    ]
