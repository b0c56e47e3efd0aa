"""A realistic edXML package and status for the edXML tests and the benchmark."""

from __future__ import annotations

import email.policy
from datetime import date, datetime
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart

from lxml import etree

from services.documents.edxml import (
    EDXML_NS,
    ICT,
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
    build_package,
)

SENDER = Organization(
    organ_id="000.00.00.H27",
    organ_name="Ủy ban nhân dân tỉnh Hà Tĩnh",
    organ_add="Số 1 Nguyễn Tất Thành, TP Hà Tĩnh",
    email="ubnd@hatinh.gov.vn",
    telephone="0239 3855 555",
    website="https://hatinh.gov.vn",
)
RECEIVER = Organization(organ_id="000.01.30.H27", organ_name="Sở Tư pháp tỉnh Hà Tĩnh")


def sample_package(attachment_bytes: int = 2_000) -> Package:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * (attachment_bytes // 256 + 1)
    return Package(
        header=MessageHeader(
            from_=SENDER,
            to=(RECEIVER, Organization(organ_id="000.02.30.H27", organ_name="Sở Nội vụ")),
            code=Code(code_number="123", code_notation="QĐ-UBND"),
            promulgation_info=PromulgationInfo(
                place="Hà Tĩnh", promulgation_date=date(2025, 7, 14)
            ),
            document_type=DocumentType(type=1, type_name="Quyết định"),
            subject="Về việc cải cách hành chính năm 2025",
            content="Giao Sở Tư pháp chủ trì, phối hợp với các sở, ngành liên quan…",
            signer_info=SignerInfo(
                full_name="Nguyễn Văn An", competence="KT. CHỦ TỊCH", position="PHÓ CHỦ TỊCH"
            ),
            due_date=date(2025, 8, 1),
            to_places=("Sở Tư pháp", "Sở Nội vụ", "Lưu: VT"),
            other_info=OtherInfo(
                priority=Priority.URGENT,
                sphere_of_promulgation="Văn bản liên thông",
                typer_notation="NVA",
                promulgation_amount=5,
                page_amount=3,
                appendixes=("Phụ lục I: Danh mục thủ tục",),
            ),
            steering_type=1,
            response_for=(
                ResponseFor(
                    organ_id="000.01.30.H27",
                    code="45/TTr-STP",
                    promulgation_date=date(2025, 7, 1),
                    document_id="000.01.30.H27,2025/07/01,45/TTr-STP",
                ),
            ),
            document_id="000.00.00.H27,2025/07/14,123/QĐ-UBND",
        ),
        trace_headers=(
            TraceHeader(
                organ_id="000.00.00.H27", timestamp=datetime(2025, 7, 14, 9, 30, tzinfo=ICT)
            ),
        ),
        business=Business(
            doc_type=BusinessDocType.NEW,
            reason="Văn bản điện tử mới",
            staff_info=StaffInfo(department="Văn phòng", staff="Trần Thị Bình", email="b@x.vn"),
        ),
        attachments=(
            Attachment(
                content_id="qd-123.pdf",
                attachment_name="QĐ 123-UBND.pdf",
                content_type="application/pdf",
                data=pdf[:attachment_bytes],
                description="Văn bản chính",
            ),
        ),
    )


def sample_status(code: StatusCode = StatusCode.ARRIVED) -> Status:
    return Status(
        response_for=ResponseFor(
            organ_id="000.00.00.H27",
            code="123/QĐ-UBND",
            promulgation_date=date(2025, 7, 14),
            document_id="000.00.00.H27,2025/07/14,123/QĐ-UBND",
        ),
        from_=RECEIVER,
        status_code=code,
        timestamp=datetime(2025, 7, 14, 10, 0, 5, tzinfo=ICT),
        description="Đã đến",
        staff_info=StaffInfo(department="Văn phòng Sở", staff="Lê Văn Cường"),
        trace_headers=(
            TraceHeader(
                organ_id="000.01.30.H27", timestamp=datetime(2025, 7, 14, 10, 0, 5, tzinfo=ICT)
            ),
        ),
    )


def mime_package(package: Package, *, bare_envelope: bool = True) -> bytes:
    """The package as another system sends it in MIME form: the XML part (by default a bare
    edXMLEnvelope) and each file as a base64 part named by its Content-ID, written with the
    standard library's MIME classes as a Java or .NET mail library would. Not our writer."""
    root = etree.fromstring(build_package(package))
    encoded = root.find(f"{{{EDXML_NS}}}AttachmentEncoded")
    if encoded is not None:
        root.remove(encoded)
    xml_root = root.find(f"{{{EDXML_NS}}}edXMLEnvelope") if bare_envelope else root
    xml = etree.tostring(xml_root, xml_declaration=True, encoding="UTF-8")
    message = MIMEMultipart("related", type="application/xml", start="<edxml@sender>")
    xml_part = MIMEApplication(xml, "xml")
    xml_part["Content-ID"] = "<edxml@sender>"
    message.attach(xml_part)
    for a in package.attachments:
        part = MIMEApplication(a.data, a.content_type.split("/", 1)[1])
        part["Content-ID"] = f"<{a.content_id}>"
        part.add_header("Content-Disposition", "attachment", filename="file")
        message.attach(part)
    return message.as_bytes(policy=email.policy.SMTP)
