"""Officials find dossiers: the list with its filters and the search by receipt code,
applicant name or number, in this service's own columns (docs/dossiers.md says why not through
the search service). An official sees the dossiers of the agencies where a clerk, specialist
or leader role is held, and of those below them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from lgsp.auth import Principal, require_role
from lgsp.textfold import fold
from lgsp.workdays import PROVINCE_TZ, local_date
from services.dossiers.adapters.dossier_search import DossierFilter, list_dossiers
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.figures import parse_date
from services.dossiers.domain.status import Status
from services.dossiers.service_layer.base import OFFICIALS, AppBase
from services.dossiers.service_layer.paging import (
    FIELD,
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)

MAX_QUERY = 100


@dataclass(frozen=True)
class ListRequest:
    """ListDossiersRequest's values, as given."""

    page_size: int = 0
    page_token: str = ""
    agency_code: str = ""
    procedure_code: str = ""
    statuses: tuple[int, ...] = ()
    handler_user_id: str = ""
    from_date: str = ""
    to_date: str = ""
    overdue_only: bool = False
    query: str = ""


@dataclass(frozen=True)
class DossierPage:
    dossiers: list[Dossier]
    next_page_token: str
    total_size: int


def parse_query(text: str) -> dict[str, str]:
    """What `query` searches: a PIN (12 digits) or enterprise/tax code (10 or 13) whole, a
    receipt code's beginning (anything else with a digit), or else words of the applicant's
    or organisation's name (case and accents ignored)."""
    q = text.strip()
    if not q:
        return {}
    if len(q) > MAX_QUERY:
        raise InvalidField("query", f"at most {MAX_QUERY} characters")
    if any(unicodedata.category(c)[0] == "C" for c in q):
        raise InvalidField("query", "control or invisible characters")
    digits = q.replace("-", "")
    if digits.isascii() and digits.isdigit() and len(digits) in (10, 12, 13):
        return {"number": digits}
    if any(c.isdigit() for c in q):
        if " " in q or not q.isascii():
            raise InvalidField("query", "a receipt code has no spaces or accents")
        return {"receipt_prefix": q.upper()}
    return {"name": " ".join(fold(q).split())}


def _after(token: str, f: DossierFilter) -> tuple[datetime, str] | None:
    """The (submit time, id) the page starts after, from a paging.py token."""
    key = decode_token(token, fingerprint(repr(f)))
    if not key:
        return None
    when, _, dossier_id = key.partition("|")
    try:
        return datetime.fromisoformat(when), dossier_id
    except ValueError:
        raise InvalidField(FIELD, "is not a token returned by this service") from None


class ListingUseCases(AppBase):
    def list_dossiers(self, r: ListRequest, principal: Principal) -> DossierPage:
        require_role(OFFICIALS, principal=principal)
        agency = r.agency_code.strip()
        if agency:
            require_role(OFFICIALS, agency, tree=self.agencies, principal=principal)
            codes: tuple[str, ...] = (agency,)
        else:
            codes = tuple(sorted(self._official_agencies(principal, OFFICIALS)))
        size = page_size(r.page_size)
        f = self._filter(r, codes)
        after = _after(r.page_token.strip(), f)
        with self.uow() as uow:
            found, total = list_dossiers(uow.session, f, after, size + 1)
        more = len(found) > size
        found = found[:size]
        last = found[-1] if found else None
        token = (
            encode_token(f"{last.submit_time.isoformat()}|{last.id}", fingerprint(repr(f)))
            if more and last
            else ""
        )
        return DossierPage(found, token, total)

    def _filter(self, r: ListRequest, codes: tuple[str, ...]) -> DossierFilter:
        for i, s in enumerate(r.statuses):
            if s not in Status._value2member_map_:
                raise InvalidField(f"statuses[{i}]", f"{s} is not a dossier status")
        today = local_date(self.clock())
        start = end = None  # submitted in [start, end), province days
        if r.from_date.strip():
            start = datetime.combine(parse_date("from_date", r.from_date), time(), PROVINCE_TZ)
        if r.to_date.strip():
            last = parse_date("to_date", r.to_date)
            end = datetime.combine(last + timedelta(days=1), time(), PROVINCE_TZ)
        if start is not None and end is not None and start >= end:
            raise InvalidField("from_date", "after to_date")
        return DossierFilter(
            agency_codes=codes,
            procedure_code=r.procedure_code.strip(),
            statuses=tuple(sorted(set(r.statuses))),
            handler_user_id=r.handler_user_id.strip(),
            submitted_from=start,
            submitted_before=end,
            overdue_on=today if r.overdue_only else None,
            **parse_query(r.query),
        )
