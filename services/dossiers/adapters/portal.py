"""The national public service portal's dossier (its push, or its handover) → a Submission
of the online channel. Strict: every field the province uses must have its type and size;
a field that breaks that is MalformedDossier naming it (the push answers 400). Fields the
province does not use are ignored, so the portal may add some. Whether the dossier may be
taken in is not decided here: the intake rules do that, the same as at the desk."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.dossiers.domain.dossier import (
    Applicant,
    ApplicantKind,
    Channel,
    Paper,
    Submission,
)
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.fields import check_date

MAX_PAPERS = 50

# Reasons shown to the citizen on the portal when the province refuses a dossier, by the
# field the intake rules name (the English reason goes along as detail).
REFUSAL_MESSAGES = {
    "procedure_code": "Thủ tục hành chính không có trong danh mục của tỉnh hoặc đã ngừng tiếp nhận",
    "agency_code": "Cơ quan được chọn không giải quyết thủ tục hành chính này",
    "applicant": "Thông tin người nộp hồ sơ không hợp lệ",
    "applicant.identity_number": "Số định danh cá nhân không hợp lệ hoặc không khớp ngày sinh",
    "papers": "Hồ sơ thiếu thành phần hồ sơ bắt buộc",
}


def refusal_message(error: InvalidField) -> str:
    """The Vietnamese reason for a refusal on `error.field`, for the citizen."""
    if error.field.startswith("papers") and not error.reason.startswith("missing"):
        # A paper malformed (papers[2].sha256) or too many: not a missing paper.
        return "Thành phần hồ sơ không hợp lệ"
    key = error.field.split("[", 1)[0]
    return REFUSAL_MESSAGES.get(
        key,
        REFUSAL_MESSAGES.get(key.split(".", 1)[0], "Hồ sơ không đáp ứng điều kiện tiếp nhận"),
    )


class MalformedDossier(Exception):
    """The portal's dossier breaks the format (→ 400 naming the field)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(data: Mapping[str, Any], key: str, where: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise MalformedDossier(where, "a string is required")
    if len(value) > limit:
        raise MalformedDossier(where, f"at most {limit} characters")
    if required and not value.strip():
        raise MalformedDossier(where, "required")
    return value.strip()


def _count(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise MalformedDossier(where, "an integer from 0 to 100")
    return value


def _applicant(value: Any) -> Applicant:
    if not isinstance(value, Mapping):
        raise MalformedDossier("applicant", "an object is required")
    birth: date | None = None
    raw_birth = _text(value, "birth_date", "applicant.birth_date", 10, required=False)
    if raw_birth:
        try:
            birth = check_date("applicant.birth_date", raw_birth)
        except InvalidField:
            raise MalformedDossier("applicant.birth_date", "a date YYYY-MM-DD") from None
    org_code = _text(value, "organization_code", "applicant.organization_code", 14, required=False)
    return Applicant(
        kind=ApplicantKind.ORGANIZATION if org_code else ApplicantKind.CITIZEN,
        full_name=_text(value, "full_name", "applicant.full_name", 100, required=True),
        identity_number=_text(
            value, "identity_number", "applicant.identity_number", 20, required=True
        ),
        birth_date=birth,
        organization_name=_text(
            value, "organization_name", "applicant.organization_name", 500, required=False
        ),
        organization_code=org_code,
        phone=_text(value, "phone", "applicant.phone", 20, required=False),
        email=_text(value, "email", "applicant.email", 254, required=False),
        address=_text(value, "address", "applicant.address", 500, required=False),
    )


def _papers(value: Any) -> tuple[Paper, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PAPERS:
        raise MalformedDossier("papers", f"a list of at most {MAX_PAPERS} papers")
    out = []
    for i, p in enumerate(value):
        where = f"papers[{i}]"
        if not isinstance(p, Mapping):
            raise MalformedDossier(where, "an object is required")
        sha = _text(p, "sha256", f"{where}.sha256", 64, required=False).lower()
        if sha and not all(c in "0123456789abcdef" for c in sha):
            raise MalformedDossier(f"{where}.sha256", "64 hex digits")
        out.append(
            Paper(
                paper_code=_text(p, "paper_code", f"{where}.paper_code", 40, required=False),
                name=_text(p, "name", f"{where}.name", 500, required=False),
                originals=_count(p, "originals", f"{where}.originals"),
                copies=_count(p, "copies", f"{where}.copies"),
                sha256=sha,
            )
        )
    return tuple(out)


def submission_from_portal(data: Any) -> Submission:
    """The Submission a portal dossier (its JSON object) asks for; MalformedDossier names the
    first field that is not of the form."""
    if not isinstance(data, Mapping):
        raise MalformedDossier("body", "a JSON object is required")
    return Submission(
        procedure_code=_text(data, "procedure_code", "procedure_code", 40, required=True),
        agency_code=_text(data, "agency_code", "agency_code", 35, required=True),
        applicant=_applicant(data.get("applicant")),
        channel=Channel.ONLINE,
        papers=_papers(data.get("papers")),
        portal_code=_text(data, "portal_code", "portal_code", 64, required=True),
    )
