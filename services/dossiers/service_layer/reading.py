"""Reading dossiers: officials of the agency, and the citizens' lookup."""

from __future__ import annotations

from lgsp.auth import Principal, require_role
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain.dossier import (
    Dossier,
    HistoryEntry,
)
from services.dossiers.domain.errors import (
    InvalidField,
    NotFound,
)
from services.dossiers.domain.receipt import parse_receipt_code
from services.dossiers.service_layer.base import (
    OFFICIALS,
    AppBase,
)


class ReadingUseCases(AppBase):
    def get(self, *, dossier_id: str = "", receipt: str = "", principal: Principal) -> Dossier:
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            d = repo.get(dossier_id) if dossier_id else repo.by_receipt_code(receipt.strip())
        if d is None:
            raise NotFound("no such dossier")
        require_role(OFFICIALS, d.agency_code, tree=self.agencies, principal=principal)
        return d

    def history(self, dossier_id: str, principal: Principal) -> list[HistoryEntry]:
        d = self.get(dossier_id=dossier_id, principal=principal)
        with self.uow() as uow:
            return DossierRepository(uow.session).history(d.id)

    def lookup(self, receipt: str, verification: str) -> tuple[Dossier, str]:
        """The dossier and its agency's name, for the public lookup: NOT_FOUND alike for an
        unknown code and for a wrong verification (the last 4 digits of the applicant's
        identity number or phone)."""
        receipt = receipt.strip()
        parse_receipt_code(receipt)
        verification = verification.strip()
        if len(verification) != 4 or not verification.isdigit():
            raise InvalidField("verification", "the last 4 digits of the identity number or phone")
        with self.uow() as uow:
            d = DossierRepository(uow.session).by_receipt_code(receipt)
        phone = "".join(c for c in (d.applicant.phone if d else "") if c.isdigit())
        if d is None or verification not in (d.applicant.identity_number[-4:], phone[-4:]):
            raise NotFound("no dossier with this receipt code and verification")
        agency = self.agencies.get(d.agency_code)
        return d, agency.name if agency else d.agency_code

    def count(self) -> int:
        with self.uow() as uow:
            return DossierRepository(uow.session).count()
