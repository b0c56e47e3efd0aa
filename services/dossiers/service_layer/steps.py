"""The steps of a dossier after intake, each one status change through `AppBase._step`."""

from __future__ import annotations

from datetime import datetime

from lgsp.auth import Principal
from lgsp.db import UnitOfWork
from services.dossiers.adapters.repository import ProcedureRepository
from services.dossiers.domain.dossier import (
    Dossier,
    Paper,
)
from services.dossiers.service_layer.base import (
    DESK,
    LEADER,
    SPECIALIST,
    AppBase,
)


class StepUseCases(AppBase):
    def accept(self, dossier_id: str, etag: str, principal: Principal) -> Dossier:
        return self._step(
            dossier_id,
            etag,
            principal,
            DESK,
            lambda d, now, who: d.accept(rule=self.rule, now=now, actor=who),
        )

    def refuse(self, dossier_id: str, etag: str, reason: str, principal: Principal) -> Dossier:
        return self._step(
            dossier_id,
            etag,
            principal,
            DESK,
            lambda d, now, who: d.refuse(reason, now=now, actor=who),
        )

    def start_processing(
        self, dossier_id: str, etag: str, handler_user_id: str, principal: Principal
    ) -> Dossier:
        return self._step(
            dossier_id, etag, principal, (LEADER,),
            lambda d, now, who: d.start_processing(handler_user_id, now=now, actor=who),
        )  # fmt: skip

    def request_supplement(
        self, dossier_id: str, etag: str, reason: str, paper_codes: list[str], principal: Principal
    ) -> Dossier:
        def step(d: Dossier, now: datetime, who: str, uow: UnitOfWork) -> None:
            procedure = ProcedureRepository(uow.session).get(d.procedure_code)
            d.request_supplement(reason, paper_codes, procedure=procedure, now=now, actor=who)

        return self._step(dossier_id, etag, principal, (SPECIALIST, LEADER), step, with_uow=True)

    def supplement(
        self, dossier_id: str, etag: str, papers: list[Paper], principal: Principal
    ) -> Dossier:
        return self._step(
            dossier_id, etag, principal, DESK,
            lambda d, now, who: d.supplement(papers, rule=self.rule, now=now, actor=who),
        )  # fmt: skip

    def stop(self, dossier_id: str, etag: str, reason: str, principal: Principal) -> Dossier:
        """→ STOPPED (8): a leader, for a legal reason given."""
        return self._step(
            dossier_id, etag, principal, (LEADER,),
            lambda d, now, who: d.stop(reason, now=now, actor=who),
        )  # fmt: skip

    def withdraw(self, dossier_id: str, etag: str, reason: str, principal: Principal) -> Dossier:
        return self._step(
            dossier_id,
            etag,
            principal,
            DESK,
            lambda d, now, who: d.withdraw(reason, now=now, actor=who),
        )

    def complete(
        self,
        dossier_id: str,
        etag: str,
        result_number: str,
        result_attachment_id: str,
        comment: str,
        principal: Principal,
    ) -> Dossier:
        return self._step(
            dossier_id, etag, principal, (LEADER,),
            lambda d, now, who: d.complete(
                result_number, result_attachment_id, comment, now=now, actor=who),
        )  # fmt: skip

    def return_result(
        self, dossier_id: str, etag: str, received_by: str, principal: Principal
    ) -> Dossier:
        return self._step(
            dossier_id, etag, principal, DESK,
            lambda d, now, who: d.return_result(received_by, now=now, actor=who),
        )  # fmt: skip
