"""Fixtures shared by the documents tests and `python -m bench.documents`: three agencies of
Hà Tĩnh, officials with their roles, a signer and a draft. Not used by the service itself."""

from __future__ import annotations

from typing import Any

from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.documents.v1 import documents_pb2 as pb

UBND = "000.00.00.H27"
STP = "000.01.30.H27"
SNV = "000.02.30.H27"

AGENCIES = AgencyDirectory(
    [
        Agency(UBND, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", "", "Hà Tĩnh"),
        Agency(STP, "Sở Tư pháp tỉnh Hà Tĩnh", "STP", UBND, "Hà Tĩnh"),
        Agency(SNV, "Sở Nội vụ tỉnh Hà Tĩnh", "SNV", UBND, "Hà Tĩnh"),
    ]
)

# user → (agency, roles)
OFFICIALS: dict[str, tuple[str, list[str]]] = {
    "ubnd-cv": (UBND, ["specialist"]),
    "ubnd-ld": (UBND, ["leader"]),
    "ubnd-ld2": (UBND, ["leader"]),
    "ubnd-vt": (UBND, ["clerk"]),
    "ubnd-vt2": (UBND, ["clerk"]),
    "ubnd-admin": (UBND, ["admin", "agency_admin"]),
    "stp-vt": (STP, ["clerk"]),
    "stp-ld": (STP, ["leader"]),
    "stp-cv": (STP, ["specialist"]),
    "snv-cv": (SNV, ["specialist"]),
}

SIGNER = pb.Signer(
    full_name="Nguyễn Văn An",
    position="PHÓ CHỦ TỊCH",
    mode=pb.SIGNING_MODE_DEPUTY,
    on_behalf_of="CHỦ TỊCH",
)


def official_claims(user: str) -> dict[str, Any]:
    """The token claims of a demo official (for a stand-in issuer's `token(**claims)`)."""
    agency, roles = OFFICIALS[user]
    return {
        "sub": user,
        "preferred_username": user,
        "realm_access": {"roles": roles},
        "agency_code": agency,
        "agency_roles": {agency: roles},
    }


def draft(**overrides: Any) -> pb.Document:
    doc = pb.Document(
        agency_code=UBND,
        document_type_code="QĐ",
        subject="Về việc ban hành Kế hoạch cải cách hành chính năm 2026",
        summary="Giao các sở, ngành triển khai kế hoạch cải cách hành chính.",
        due_date="2026-12-31",
        priority=pb.PRIORITY_URGENT,
        confidentiality=pb.CONFIDENTIALITY_NORMAL,
        recipients=[
            pb.Recipient(agency_code=STP, name="Sở Tư pháp", kind=pb.RECIPIENT_KIND_MAIN),
            pb.Recipient(name="Lưu: VT", kind=pb.RECIPIENT_KIND_ARCHIVE),
        ],
    )
    for k, v in overrides.items():
        if k == "recipients":
            del doc.recipients[:]
            doc.recipients.extend(v)
        else:
            setattr(doc, k, v)
    return doc
