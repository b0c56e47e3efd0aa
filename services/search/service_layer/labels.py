"""Human labels for facet values: agency names from the directory, document type names, and
the Vietnamese names of statuses, directions, priorities and confidentiality levels.

The document types' names are the platform's one vocabulary (lgsp.document_types), the one
the documents service issues by. A code nobody knows gets no label: the value itself is
shown.
"""

from __future__ import annotations

from lgsp.agencies import AgencyDirectory
from lgsp.document_types import NAMES as DOCUMENT_TYPE_NAMES

# The index's status values (projection.outgoing_status / incoming_status); incoming ones
# carry their edXML code (QCVN 102:2016).
STATUS_NAMES = {
    "draft": "Dự thảo", "in_review": "Đang xem xét", "awaiting_signature": "Chờ ký",
    "signed": "Đã ký", "issued": "Đã ban hành", "sent": "Đã gửi", "cancelled": "Đã hủy",
    "arrived": "01 Đã đến", "refused": "02 Từ chối", "accepted": "03 Đã tiếp nhận",
    "assigned": "04 Đã phân công", "in_progress": "05 Đang xử lý", "done": "06 Hoàn thành",
    "recalled": "13 Đã thu hồi",
}  # fmt: skip
DIRECTION_NAMES = {"outgoing": "Văn bản đi", "incoming": "Văn bản đến"}
PRIORITY_NAMES = {
    "normal": "Thường", "urgent": "Khẩn", "very_urgent": "Thượng khẩn", "flash": "Hỏa tốc",
}  # fmt: skip
CONFIDENTIALITY_NAMES = {
    "normal": "Thường", "confidential": "Mật", "secret": "Tối mật", "top_secret": "Tuyệt mật",
}  # fmt: skip
AGENCY_FIELDS = ("agency_code", "sender_agency_code", "recipient_agency_codes")


class Labels:
    """`label(field, value)`: the label of an engine field's value, "" when none is known.
    Agency names come from `directory` at call time (it follows identity's tree)."""

    def __init__(self, directory: AgencyDirectory | None = None) -> None:
        self._directory = directory
        self._tables: dict[str, dict[str, str]] = {
            "doc_type": DOCUMENT_TYPE_NAMES,
            "status": STATUS_NAMES,
            "direction": DIRECTION_NAMES,
            "priority": PRIORITY_NAMES,
            "confidentiality": CONFIDENTIALITY_NAMES,
        }

    def label(self, field: str, value: str) -> str:
        if field in AGENCY_FIELDS:
            agency = self._directory.get(value) if self._directory is not None else None
            return agency.name if agency is not None else ""
        return self._tables.get(field, {}).get(value, "")
