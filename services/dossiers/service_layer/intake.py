"""Taking a dossier in: the desk's checks, the receipt code, the first events."""

from __future__ import annotations

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
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
        first dossier back."""
        agency = agency_code.strip()
        require_role(CLERK, agency or None, tree=self.agencies, principal=principal)
        now = self.clock()
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            if request_id:
                earlier = repo.by_request_id(request_id)
                if earlier is not None:
                    return earlier
            procedure = ProcedureRepository(uow.session).get(procedure_code.strip())
            check_submission(procedure, procedure_code, agency, applicant, channel, papers)
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
            self._record_figures(uow, None, dossier)
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
