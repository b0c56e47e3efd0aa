"""Document types (thể loại văn bản), their abbreviations, and who may issue each.

The 29 administrative types are those of Nghị định 30/2020/NĐ-CP, Article 7 and Appendix III.
Công văn and thư công have no abbreviation: their notation is built from the agency (and the
drafting unit) only. Legal documents (văn bản quy phạm pháp luật) carry the year in their
notation and are numbered in their own book.

Who issues what (`issued_by`, one column of the one table below; `check_issuer`):
- Luật Ban hành văn bản quy phạm pháp luật 2025 (Luật 64/2025/QH15, Article 4 as amended by
  Luật 87/2025/QH15): in a province, legal documents are the resolutions of the People's
  Councils (Hội đồng nhân dân, provincial and commune level) and the decisions of the People's
  Committees (Ủy ban nhân dân, both levels). Decrees (Nghị định) are the Government's and
  circulars (Thông tư) ministers': nobody in the province issues them, a province receives
  them. A department (sở, ban, ngành) or any other agency issues no legal document.
- Nghị định 30/2020/NĐ-CP, Article 7: the administrative types. A resolution (Nghị quyết cá
  biệt) is what a collegial body (the People's Council) adopts — the People's Committee and
  its chairman decide by Quyết định; a directive (Chỉ thị) is the chairman of a People's
  Committee's. Every agency issues the other administrative types, individual decisions
  (Quyết định cá biệt, without the year in the notation) included.

An agency's kind comes from its legal name (`issuer_kind`): "Hội đồng nhân dân …" is a
People's Council, "Ủy ban nhân dân …" a People's Committee (the province's and the communes'
alike, as the identity seed names them), anything else — Sở …, Văn phòng …, Trung tâm …,
their units — an agency that issues administrative documents only.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from typing import Any

from lgsp.document_types import NAMES

from .errors import InvalidField


class IssuerKind(enum.StrEnum):
    """What an agency is, for the issuing authority of document types."""

    PEOPLES_COUNCIL = "Hội đồng nhân dân"
    PEOPLES_COMMITTEE = "Ủy ban nhân dân"
    OTHER = "cơ quan chuyên môn, đơn vị"  # sở, ban, ngành, văn phòng, their units


COUNCIL = frozenset({IssuerKind.PEOPLES_COUNCIL})
COMMITTEE = frozenset({IssuerKind.PEOPLES_COMMITTEE})
ANY = frozenset(IssuerKind)
CENTRAL_ONLY: frozenset[IssuerKind] = frozenset()  # the Government, ministers: never here


def _fold(text: str) -> str:
    # "Uỷ" (old tone placement) and "Ủy" are the same word; NFC alone does not unify them.
    return unicodedata.normalize("NFC", text).strip().casefold().replace("uỷ", "ủy")


def issuer_kind(agency_name: str) -> IssuerKind:
    """The kind of an agency by its legal name (as the agency directory gives it)."""
    name = _fold(agency_name)
    if name.startswith(_fold(IssuerKind.PEOPLES_COUNCIL)):
        return IssuerKind.PEOPLES_COUNCIL
    if name.startswith(_fold(IssuerKind.PEOPLES_COMMITTEE)):
        return IssuerKind.PEOPLES_COMMITTEE
    return IssuerKind.OTHER


@dataclass(frozen=True)
class DocumentKind:
    """One document type. `code` is the API key; `abbreviation` goes into the notation;
    `issued_by` the kinds of agency that may issue it."""

    code: str
    name: str
    abbreviation: str
    legal: bool = False
    issued_by: frozenset[IssuerKind] = ANY

    # edXML DocumentType/Type: 1 legal document, 2 administrative document.
    @property
    def edxml_type(self) -> int:
        return 1 if self.legal else 2

    def may_be_issued_by(self, kind: IssuerKind) -> bool:
        return kind in self.issued_by


def _kind(code: str, abbreviation: str, **rules: Any) -> DocumentKind:
    """A type named as the platform's vocabulary names it (lgsp.document_types)."""
    return DocumentKind(code, NAMES[code], abbreviation, **rules)


ADMINISTRATIVE_TYPES: tuple[DocumentKind, ...] = (
    _kind("NQ", "NQ", issued_by=COUNCIL),
    _kind("QĐ", "QĐ"),
    _kind("CT", "CT", issued_by=COMMITTEE),
    _kind("QC", "QC"),
    _kind("QyĐ", "QyĐ"),
    _kind("TC", "TC"),
    _kind("TB", "TB"),
    _kind("HD", "HD"),
    _kind("CTr", "CTr"),
    _kind("KH", "KH"),
    _kind("PA", "PA"),
    _kind("ĐA", "ĐA"),
    _kind("DA", "DA"),
    _kind("BC", "BC"),
    _kind("BB", "BB"),
    _kind("TTr", "TTr"),
    _kind("HĐ", "HĐ"),
    _kind("CV", ""),
    _kind("CĐ", "CĐ"),
    _kind("BGN", "BGN"),
    _kind("BTT", "BTT"),
    _kind("GUQ", "GUQ"),
    _kind("GM", "GM"),
    _kind("GGT", "GGT"),
    _kind("GNP", "GNP"),
    _kind("PG", "PG"),
    _kind("PC", "PC"),
    _kind("PB", "PB"),
    _kind("TCg", ""),
)

LEGAL_TYPES: tuple[DocumentKind, ...] = (
    _kind("NQ-QPPL", "NQ", legal=True, issued_by=COUNCIL),
    _kind("QĐ-QPPL", "QĐ", legal=True, issued_by=COMMITTEE),
    _kind("NĐ", "NĐ", legal=True, issued_by=CENTRAL_ONLY),
    _kind("TT", "TT", legal=True, issued_by=CENTRAL_ONLY),
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


def check_issuer(kind: DocumentKind, agency_name: str, field: str) -> None:
    """InvalidField (naming `field`) unless an agency named `agency_name` may issue `kind`."""
    issuer = issuer_kind(agency_name)
    if kind.may_be_issued_by(issuer):
        return
    if not kind.issued_by:
        who = "the Government or a minister; a province receives it and never issues one"
    else:
        who = " or ".join(sorted(k.value for k in kind.issued_by))
    raise InvalidField(field, f"{agency_name} cannot issue a {kind.name}: it is issued by {who}")
