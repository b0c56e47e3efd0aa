"""Document types (thể loại văn bản) and their abbreviations.

The 29 administrative types are those of Nghị định 30/2020/NĐ-CP, Article 7 and Appendix III.
Công văn and thư công have no abbreviation: their notation is built from the agency (and the
drafting unit) only. Legal documents (văn bản quy phạm pháp luật, Luật Ban hành VBQPPL) carry
the year in their notation and are numbered in their own book; a province issues resolutions
of the People's Council and decisions of the People's Committee, and receives decrees and
circulars from the centre.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentKind:
    """One document type. `code` is the API key; `abbreviation` goes into the notation."""

    code: str
    name: str
    abbreviation: str
    legal: bool = False

    # edXML DocumentType/Type: 1 legal document, 2 administrative document.
    @property
    def edxml_type(self) -> int:
        return 1 if self.legal else 2


ADMINISTRATIVE_TYPES: tuple[DocumentKind, ...] = (
    DocumentKind("NQ", "Nghị quyết", "NQ"),
    DocumentKind("QĐ", "Quyết định", "QĐ"),
    DocumentKind("CT", "Chỉ thị", "CT"),
    DocumentKind("QC", "Quy chế", "QC"),
    DocumentKind("QyĐ", "Quy định", "QyĐ"),
    DocumentKind("TC", "Thông cáo", "TC"),
    DocumentKind("TB", "Thông báo", "TB"),
    DocumentKind("HD", "Hướng dẫn", "HD"),
    DocumentKind("CTr", "Chương trình", "CTr"),
    DocumentKind("KH", "Kế hoạch", "KH"),
    DocumentKind("PA", "Phương án", "PA"),
    DocumentKind("ĐA", "Đề án", "ĐA"),
    DocumentKind("DA", "Dự án", "DA"),
    DocumentKind("BC", "Báo cáo", "BC"),
    DocumentKind("BB", "Biên bản", "BB"),
    DocumentKind("TTr", "Tờ trình", "TTr"),
    DocumentKind("HĐ", "Hợp đồng", "HĐ"),
    DocumentKind("CV", "Công văn", ""),
    DocumentKind("CĐ", "Công điện", "CĐ"),
    DocumentKind("BGN", "Bản ghi nhớ", "BGN"),
    DocumentKind("BTT", "Bản thỏa thuận", "BTT"),
    DocumentKind("GUQ", "Giấy ủy quyền", "GUQ"),
    DocumentKind("GM", "Giấy mời", "GM"),
    DocumentKind("GGT", "Giấy giới thiệu", "GGT"),
    DocumentKind("GNP", "Giấy nghỉ phép", "GNP"),
    DocumentKind("PG", "Phiếu gửi", "PG"),
    DocumentKind("PC", "Phiếu chuyển", "PC"),
    DocumentKind("PB", "Phiếu báo", "PB"),
    DocumentKind("TCg", "Thư công", ""),
)

LEGAL_TYPES: tuple[DocumentKind, ...] = (
    DocumentKind("NQ-QPPL", "Nghị quyết (quy phạm pháp luật)", "NQ", legal=True),
    DocumentKind("QĐ-QPPL", "Quyết định (quy phạm pháp luật)", "QĐ", legal=True),
    DocumentKind("NĐ", "Nghị định", "NĐ", legal=True),
    DocumentKind("TT", "Thông tư", "TT", legal=True),
)

DOCUMENT_TYPES: dict[str, DocumentKind] = {t.code: t for t in ADMINISTRATIVE_TYPES + LEGAL_TYPES}


def document_type(code: str) -> DocumentKind | None:
    return DOCUMENT_TYPES.get(code)


def document_type_by_name(name: str, *, legal: bool) -> DocumentKind | None:
    """The type an edXML TypeName names (case-insensitive); legal variants when `legal`."""
    wanted = name.strip().casefold()
    for kind in LEGAL_TYPES + ADMINISTRATIVE_TYPES if legal else ADMINISTRATIVE_TYPES:
        if kind.name.casefold() == wanted or kind.name.split(" (")[0].casefold() == wanted:
            return kind
    return None
