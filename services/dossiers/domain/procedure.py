"""An administrative procedure (thủ tục hành chính) of the catalogue, and its rules.

The code is the one of the national database of administrative procedures
(csdl.dichvucong.gov.vn, e.g. "1.001193" Đăng ký khai sinh); the processing time is in working
days; the required papers (thành phần hồ sơ) say how many originals and copies; the steps of the
internal procedure (quy trình nội bộ) share the processing time out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.receipt import check_agency_code

PROCEDURE_CODE = re.compile(r"[0-9]\.[0-9]{6}(\.[0-9A-Z.]{1,20})?")
MAX_NAME = 1000
MAX_URL = 500
MAX_QUERY = 200


class OnlineLevel(IntEnum):
    """How far the procedure can be done online (Nghị định 42/2022/NĐ-CP art. 11)."""

    UNSPECIFIED = 0
    INFORMATION = 1
    PARTIAL = 2  # một phần
    FULL = 3  # toàn trình


@dataclass(frozen=True)
class ProcedureField:
    """A field (lĩnh vực), e.g. HT "Hộ tịch"."""

    code: str
    name: str


@dataclass(frozen=True)
class RequiredPaper:
    code: str
    name: str
    originals: int = 0
    copies: int = 0
    mandatory: bool = True
    template_url: str = ""


@dataclass(frozen=True)
class Step:
    """One step of the internal procedure: who does it and its share of the time."""

    name: str
    actor: str
    working_days: float


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    field: ProcedureField
    agency_codes: tuple[str, ...]
    processing_days: int
    fee_vnd: int = 0
    fee_description: str = ""
    required_papers: tuple[RequiredPaper, ...] = ()
    online_level: OnlineLevel = OnlineLevel.PARTIAL
    result_description: str = ""
    legal_basis: str = ""
    active: bool = True
    steps: tuple[Step, ...] = ()
    source_url: str = ""  # the procedure's page in the national database
    update_time: datetime | None = None
    version: int = 1

    @property
    def etag(self) -> str:
        return str(self.version)

    def paper(self, code: str) -> RequiredPaper | None:
        return next((p for p in self.required_papers if p.code == code), None)


def check_procedure(p: Procedure) -> Procedure:
    """`p` if the catalogue's rules allow it; InvalidField naming the first field that fails
    (names as in the contract: procedure.code, procedure.required_papers[1].copies…)."""
    if not PROCEDURE_CODE.fullmatch(p.code):
        raise InvalidField(
            "procedure.code", "not a code of the national procedure database (e.g. 1.001193)"
        )
    if not p.name.strip():
        raise InvalidField("procedure.name", "required")
    if len(p.name) > MAX_NAME:
        raise InvalidField("procedure.name", f"at most {MAX_NAME} characters")
    if not p.field.code.strip() or not p.field.name.strip():
        raise InvalidField("procedure.field", "code and name required")
    if not p.agency_codes:
        raise InvalidField("procedure.agency_codes", "at least one agency handles it")
    for i, code in enumerate(p.agency_codes):
        check_agency_code(code, field=f"procedure.agency_codes[{i}]")
    if not 0 <= p.processing_days <= 365:
        raise InvalidField("procedure.processing_days", "0 to 365 working days")
    if p.fee_vnd < 0:
        raise InvalidField("procedure.fee_vnd", "must not be negative")
    seen: set[str] = set()
    for i, paper in enumerate(p.required_papers):
        where = f"procedure.required_papers[{i}]"
        if not paper.code.strip() or paper.code in seen:
            raise InvalidField(f"{where}.code", "required and unique within the procedure")
        seen.add(paper.code)
        if not paper.name.strip():
            raise InvalidField(f"{where}.name", "required")
        if paper.originals < 0 or paper.copies < 0 or paper.originals + paper.copies == 0:
            raise InvalidField(f"{where}.copies", "at least one original or copy")
    if p.source_url and (
        len(p.source_url) > MAX_URL or not re.fullmatch(r"https://[^\s<>\"]+", p.source_url)
    ):
        raise InvalidField(
            "procedure.source_url", f"an https:// address of at most {MAX_URL} characters"
        )
    if p.steps:
        total = sum(s.working_days for s in p.steps)
        if any(s.working_days < 0 for s in p.steps) or abs(total - p.processing_days) > 1e-6:
            raise InvalidField(
                "procedure.steps",
                f"the steps take {total:g} working days, the procedure {p.processing_days}",
            )
    return p


def same_terms(a: Procedure, b: Procedure) -> bool:
    """Whether two versions of a procedure say the same (version and update time aside)."""
    return dataclasses.replace(a, version=0, update_time=None) == dataclasses.replace(
        b, version=0, update_time=None
    )


@dataclass(frozen=True)
class ProcedureQuery:
    """What ListProcedures filters on. `agency_codes` is the agency asked for and those beneath
    it (None: any agency); `text` is already folded (lgsp.textfold)."""

    field_code: str = ""
    agency_codes: frozenset[str] | None = None
    min_online_level: OnlineLevel = OnlineLevel.UNSPECIFIED
    include_inactive: bool = False
    text: str = ""
