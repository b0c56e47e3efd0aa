"""The administration's abbreviations, used both ways: a query for "CCHC" also finds "cải
cách hành chính", and one for "cải cách hành chính" also finds "CCHC".

The abbreviations officials write in subjects, notations and bodies (Nghị định 30/2020/NĐ-CP,
Appendix III, writes organ names and document types the same way: UBND, HĐND, TTg…). Keys
and expansions are folded as the engines index them ("HĐND" -> "hdnd").
"""

from __future__ import annotations

from lgsp.textfold import fold

_TABLE = {
    "CCHC": "cải cách hành chính",
    "TTHC": "thủ tục hành chính",
    "CNTT": "công nghệ thông tin",
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "MTTQ": "mặt trận tổ quốc",
    "CĐS": "chuyển đổi số",
    "CSDL": "cơ sở dữ liệu",
    "DVC": "dịch vụ công",
    "DVCTT": "dịch vụ công trực tuyến",
    "VBQPPL": "văn bản quy phạm pháp luật",
    "QPPL": "quy phạm pháp luật",
    "NSNN": "ngân sách nhà nước",
    "BHXH": "bảo hiểm xã hội",
    "BHYT": "bảo hiểm y tế",
    "GPMB": "giải phóng mặt bằng",
    "NTM": "nông thôn mới",
    "ATGT": "an toàn giao thông",
    "ATTT": "an toàn thông tin",
    "PCCC": "phòng cháy chữa cháy",
    "PCTT": "phòng chống thiên tai",
    "KTXH": "kinh tế xã hội",
    "CBCCVC": "cán bộ công chức viên chức",
    "QLNN": "quản lý nhà nước",
    "HTX": "hợp tác xã",
    "KCN": "khu công nghiệp",
    "CCN": "cụm công nghiệp",
    "BCĐ": "ban chỉ đạo",
    "TTg": "thủ tướng",
}

# Folded abbreviation -> folded words of its expansion, and back.
EXPANSIONS: dict[str, tuple[str, ...]] = {
    fold(k): tuple(fold(v).split()) for k, v in _TABLE.items()
}
ABBREVIATIONS: dict[tuple[str, ...], str] = {v: k for k, v in EXPANSIONS.items()}
LONGEST = max(len(v) for v in EXPANSIONS.values())
