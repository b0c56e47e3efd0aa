"""Reading dossiers: officials of the agency (the citizens' lookup is in citizen.py)."""

from __future__ import annotations

from lgsp.auth import Principal, require_role
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain.dossier import (
    Dossier,
    HistoryEntry,
)
from services.dossiers.domain.errors import NotFound
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

    def count(self) -> int:
        with self.uow() as uow:
            return DossierRepository(uow.session).count()
