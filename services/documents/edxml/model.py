"""The edXML package (QCVN 102:2016) as plain frozen dataclasses.

Field names follow the standard's elements in snake_case (OrganId → organ_id). Optional
text elements are "" when absent; the builder omits empty ones, so build → parse gives back an
equal object. Dates are `datetime.date`; timestamps are timezone-aware `datetime`s, written in
Vietnam time (UTC+7) with second precision, which is how edXML carries them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from lgsp.workdays import PROVINCE_TZ

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
XLINK_NS = "http://www.w3.org/1999/xlink"
# edXML timestamps carry no zone; the national document axis reads them as Vietnam time.
ICT = PROVINCE_TZ


class BusinessDocType(enum.IntEnum):
    """BussinessDocType: what the package does to the document (the standard's spelling)."""

    NEW = 0
    RECALL = 1  # thu hồi
    UPDATE = 2  # cập nhật
    REPLACE = 3  # thay thế


class StatusCode(enum.StrEnum):
    """StatusCode of a status message: how far the receiver got with a document."""

    ARRIVED = "01"  # đã đến
    REFUSED = "02"  # từ chối
    ACCEPTED = "03"  # đã tiếp nhận
    ASSIGNED = "04"  # phân công
    IN_PROGRESS = "05"  # đang xử lý
    DONE = "06"  # hoàn thành
    RECALLED = "13"  # thu hồi
    RECALL_ACCEPTED = "15"  # đồng ý thu hồi (answer to a recall)
    RECALL_REFUSED = "16"  # từ chối thu hồi (answer to a recall)


class Priority(enum.IntEnum):
    """OtherInfo/Priority (độ khẩn)."""

    NORMAL = 0  # thường
    URGENT = 1  # khẩn
    VERY_URGENT = 2  # thượng khẩn
    FLASH = 3  # hỏa tốc
    FLASH_TIMED = 4  # hỏa tốc hẹn giờ


@dataclass(frozen=True)
class Organization:
    """From / To: an agency with its identifier code (OrganId)."""

    organ_id: str
    organ_name: str = ""
    organization_in_charge: str = ""
    organ_add: str = ""
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""


@dataclass(frozen=True)
class Code:
    """Số và ký hiệu: CodeNumber "123", CodeNotation "QĐ-UBND"."""

    code_number: str
    code_notation: str

    def __str__(self) -> str:
        return f"{self.code_number}/{self.code_notation}"


@dataclass(frozen=True)
class PromulgationInfo:
    place: str
    promulgation_date: date


@dataclass(frozen=True)
class DocumentType:
    """Type: the standard's numeric kind (1 legal, 2 administrative…); TypeName as printed."""

    type: int
    type_name: str


@dataclass(frozen=True)
class SignerInfo:
    """Competence (TM., KT., …), Position (PHÓ CHỦ TỊCH), FullName."""

    full_name: str
    competence: str = ""
    position: str = ""


@dataclass(frozen=True)
class OtherInfo:
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str = ""
    typer_notation: str = ""
    promulgation_amount: int | None = None
    page_amount: int | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """The earlier document a package or status answers: its issuer, "123/QĐ-UBND", date, id."""

    organ_id: str
    code: str
    promulgation_date: date
    document_id: str = ""


@dataclass(frozen=True)
class MessageHeader:
    from_: Organization
    to: tuple[Organization, ...]
    code: Code
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str
    signer_info: SignerInfo
    content: str = ""
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    other_info: OtherInfo = field(default_factory=OtherInfo)
    steering_type: int = 0  # 0 none, 1 directs, 2 reports on a directive
    response_for: tuple[ResponseFor, ...] = ()
    document_id: str = ""  # "<OrganId>,<YYYY/MM/DD>,<CodeNumber>/<CodeNotation>" by convention

    def conventional_document_id(self) -> str:
        """The DocumentId other systems expect when none was given."""
        d = self.promulgation_info.promulgation_date
        return f"{self.from_.organ_id},{d:%Y/%m/%d},{self.code}"


@dataclass(frozen=True)
class TraceHeader:
    """One hop: the agency that handled the package and when."""

    organ_id: str
    timestamp: datetime


@dataclass(frozen=True)
class StaffInfo:
    department: str = ""
    staff: str = ""
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True)
class Business:
    """TraceHeaderList/Bussiness: new, recall, update or replace, with the reason."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str = ""
    paper: bool = False  # a paper copy is also sent
    staff_info: StaffInfo | None = None


@dataclass(frozen=True)
class Attachment:
    """A file carried base64-encoded in AttachmentEncoded; ContentId links it to the manifest."""

    content_id: str
    attachment_name: str
    content_type: str
    data: bytes = field(repr=False)
    description: str = ""


@dataclass(frozen=True)
class Package:
    """A document package: header, trace, business action and files."""

    header: MessageHeader
    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business = field(default_factory=Business)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Status:
    """A status message: the receiver `from_` reports `status_code` on a document."""

    response_for: ResponseFor
    from_: Organization
    status_code: StatusCode
    timestamp: datetime
    description: str = ""
    staff_info: StaffInfo | None = None
    trace_headers: tuple[TraceHeader, ...] = ()
