"""The names of the document types, as the platform codes them: the administrative documents of
Nghị định 30/2020/NĐ-CP (Article 7, Appendix III) and the legal documents the province sends
and receives. One vocabulary for every service: documents issues by it (its rules, who may
issue what, the notation's abbreviation, live in its domain), search labels its facets with it.
"""

from __future__ import annotations

ADMINISTRATIVE = {
    "NQ": "Nghị quyết", "QĐ": "Quyết định", "CT": "Chỉ thị", "QC": "Quy chế",
    "QyĐ": "Quy định", "TC": "Thông cáo", "TB": "Thông báo", "HD": "Hướng dẫn",
    "CTr": "Chương trình", "KH": "Kế hoạch", "PA": "Phương án", "ĐA": "Đề án", "DA": "Dự án",
    "BC": "Báo cáo", "BB": "Biên bản", "TTr": "Tờ trình", "HĐ": "Hợp đồng", "CV": "Công văn",
    "CĐ": "Công điện", "BGN": "Bản ghi nhớ", "BTT": "Bản thỏa thuận", "GUQ": "Giấy ủy quyền",
    "GM": "Giấy mời", "GGT": "Giấy giới thiệu", "GNP": "Giấy nghỉ phép", "PG": "Phiếu gửi",
    "PC": "Phiếu chuyển", "PB": "Phiếu báo", "TCg": "Thư công",
}  # fmt: skip
LEGAL = {
    "NQ-QPPL": "Nghị quyết (quy phạm pháp luật)", "QĐ-QPPL": "Quyết định (quy phạm pháp luật)",
    "NĐ": "Nghị định", "TT": "Thông tư",
}  # fmt: skip
# Every type's name by its code.
NAMES: dict[str, str] = {**ADMINISTRATIVE, **LEGAL}
