"""Taking a dossier in: the desk's checks, the receipt code, the first events."""

from __future__ import annotations

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from lgsp.db import UnitOfWork
from lgsp.workdays import local_date
from services.dossiers.adapters.proto import dossier_to_proto
from services.dossiers.adapters.repository import DossierRepository, ProcedureRepository
from services.dossiers.domain.dossier import (
    Applicant,
    Channel,
    Dossier,
    Paper,
    check_submission,
    submit_dossier,
)
from services.dossiers.domain.procedure import Procedure
from services.dossiers.domain.receipt import receipt_code
from services.dossiers.service_layer.base import (
    CLERK,
    AppBase,
)


class IntakeUseCases(AppBase):
    def submit(
        self,
        *,
        procedure_code: str,
        agency_code: str,
        applicant: Applicant,
        channel: Channel,
        papers: list[Paper],
        request_id: str,
        principal: Principal,
    ) -> Dossier:
        """A dossier taken in at the desk: SUBMITTED with its receipt code, DossierSubmitted
        and DossierStatusChanged in the same commit. A retry with the same request_id gets the
        first dossier back. The applicant is verified at the national databases after the
        desk's checks and before a receipt number is taken, outside any transaction (a
        national call may take seconds)."""
        agency = agency_code.strip()
        require_role(CLERK, agency or None, tree=self.agencies, principal=principal)
        args = (procedure_code, agency, applicant, channel, papers, request_id)
        with self.uow() as uow:
            earlier = self._checked(uow, *args)
        if isinstance(earlier, Dossier):
            return earlier
        self.verifier.verify(applicant)
        now = self.clock()
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            procedure = self._checked(uow, *args)  # again: a retry may have won meanwhile
            if isinstance(procedure, Dossier):
                return procedure
            code = receipt_code(
                agency, local_date(now), repo.next_sequence(agency, local_date(now))
            )
            dossier = submit_dossier(
                procedure,
                procedure_code=procedure_code,
                agency_code=agency,
                applicant=applicant,
                channel=channel,
                papers=papers,
                receipt_code=code,
                actor=principal.subject,
                now=now,
                request_id=request_id,
            )
            entries = list(dossier.new_history)
            repo.add(dossier)
            uow.emit(
                events_pb2.DossierSubmitted(
                    dossier=dossier_to_proto(dossier), actor_id=principal.subject
                ),
                subject=dossier.receipt_code,
            )
            self._emit_changes(uow, dossier, entries)
            uow.commit()
        self.after_commit()
        return dossier

    @staticmethod
    def _checked(
        uow: UnitOfWork,
        procedure_code: str,
        agency: str,
        applicant: Applicant,
        channel: Channel,
        papers: list[Paper],
        request_id: str,
    ) -> Dossier | Procedure:
        """The dossier an earlier call with this request_id made, else the procedure once the
        desk's checks pass (InvalidField otherwise)."""
        if request_id:
            earlier = DossierRepository(uow.session).by_request_id(request_id)
            if earlier is not None:
                return earlier
        procedure = ProcedureRepository(uow.session).get(procedure_code.strip())
        check_submission(procedure, procedure_code, agency, applicant, channel, papers)
        assert procedure is not None  # check_submission refuses a missing one
        return procedure
