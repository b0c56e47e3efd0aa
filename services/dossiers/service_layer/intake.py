"""Taking a dossier in, from any of the three channels, by one path (`_take_in`): the same
checks (procedure in the catalogue and handled by the agency, applicant, checklist), the
receipt code, the first events. The desk and the post come through `submit` (a clerk);
online dossiers through `take_in_online` (the national portal's push or the catch-up pull,
no official involved), idempotent by the portal's code."""

from __future__ import annotations

import sqlalchemy as sa

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
    Submission,
    check_channel,
    check_submission,
    submit_dossier,
)
from services.dossiers.domain.errors import AlreadyExists, InvalidField
from services.dossiers.domain.fields import check_token
from services.dossiers.domain.procedure import Procedure
from services.dossiers.domain.receipt import check_agency_code, receipt_code
from services.dossiers.service_layer.base import DESK, AppBase

# The actor of what the national portal files: empty, as the contract has it for the system.
PORTAL_ACTOR = ""


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
        postal_tracking_number: str = "",
        postmark_date: str = "",
    ) -> Dossier:
        """A dossier a clerk takes in, at the desk or from the post: SUBMITTED with its
        receipt code. A retry with the same request_id gets the first dossier back."""
        # The code's form first: a malformed one is the caller's input error, whoever calls.
        agency = check_agency_code(agency_code)
        require_role(DESK, agency, tree=self.agencies, principal=principal)
        if channel is Channel.ONLINE:
            raise InvalidField("channel", "online dossiers arrive from the national portal")
        # The column holds 64; an id a client makes up is visible ASCII.
        request_id = check_token("request_id", request_id, 64)
        submission = Submission(
            procedure_code=procedure_code,
            agency_code=agency,
            applicant=applicant,
            channel=channel,
            papers=tuple(papers),
            request_id=request_id,
            postal_tracking_number=postal_tracking_number,
            postmark_date=postmark_date,
        )
        try:
            return self._take_in(submission, actor=principal.subject)[0]
        except sa.exc.IntegrityError:
            # Two calls with one request_id raced past the lookup (PostgreSQL): the unique
            # column let one in; the other answers with it, as a retry would.
            with self.uow() as uow:
                earlier = self._earlier(uow, submission)
            if earlier is None:
                raise
            return earlier

    def take_in_online(self, submission: Submission) -> tuple[Dossier, bool]:
        """A dossier filed on the national portal (its push or the catch-up pull): the same
        rules as the desk, channel ONLINE, no official. Idempotent by the portal's code: a
        replayed or concurrent duplicate gets the first dossier back, True when it was new."""
        if submission.channel is not Channel.ONLINE:
            raise InvalidField("channel", "only online dossiers come from the portal")
        try:
            return self._take_in(submission, actor=PORTAL_ACTOR)
        except sa.exc.IntegrityError:
            # Two pushes of one dossier raced past the lookup (PostgreSQL; SQLite serialises
            # writers): the unique portal_code let one in, the other gets that one.
            earlier = self.by_portal_code(submission.portal_code.strip())
            if earlier is None:
                raise
            return earlier, False

    def by_portal_code(self, portal_code: str) -> Dossier | None:
        with self.uow() as uow:
            return DossierRepository(uow.session).by_portal_code(portal_code)

    def _take_in(self, s: Submission, *, actor: str) -> tuple[Dossier, bool]:
        """The one intake path of every channel; (dossier, True) when it was new, the first
        dossier and False for a repeat (same request_id, or same portal code). The applicant
        is verified at the national databases after the desk's checks and before a receipt
        number is taken, outside any transaction (a national call may take seconds): a
        refusal, or a national system that cannot answer, stores nothing."""
        with self.uow() as uow:
            earlier = self._checked(uow, s)
        if isinstance(earlier, Dossier):
            return earlier, False
        self.verifier.verify(s.applicant)
        now = self.clock()
        today = local_date(now)
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            procedure = self._checked(uow, s)  # again: a retry may have won meanwhile
            if isinstance(procedure, Dossier):
                return procedure, False
            agency = s.agency_code.strip()
            code = receipt_code(agency, today, repo.next_sequence(agency, today))
            dossier = submit_dossier(
                procedure, s, receipt_code=code, actor=actor, now=now, received=today
            )
            entries = list(dossier.new_history)
            repo.add(dossier)
            self._record_figures(uow, None, dossier)
            uow.emit(
                events_pb2.DossierSubmitted(dossier=dossier_to_proto(dossier), actor_id=actor),
                subject=dossier.receipt_code,
            )
            self._emit_changes(uow, dossier, entries)
            uow.commit()
        self.after_commit()
        return dossier, True

    @staticmethod
    def _earlier(uow: UnitOfWork, s: Submission) -> Dossier | None:
        """The dossier a previous call with the same request_id (or portal code) made. A
        request_id names one submission: reused for another agency, procedure or applicant it
        is ALREADY_EXISTS, never the other dossier (whose applicant the caller may not see)."""
        repo = DossierRepository(uow.session)
        if s.request_id:
            earlier = repo.by_request_id(s.request_id)
            if earlier is not None and (
                earlier.agency_code != s.agency_code.strip()
                or earlier.procedure_code != s.procedure_code.strip()
                or earlier.applicant.identity_number != s.applicant.identity_number.strip()
            ):
                raise AlreadyExists(f"request_id {s.request_id} was used for another dossier")
            if earlier is not None:
                return earlier
        if s.portal_code.strip():
            return repo.by_portal_code(s.portal_code.strip())
        return None

    def _checked(self, uow: UnitOfWork, s: Submission) -> Dossier | Procedure:
        """The dossier an earlier call made (same request_id or portal code), else the
        procedure once the desk's checks and the channel's pass (InvalidField otherwise)."""
        earlier = self._earlier(uow, s)
        if earlier is not None:
            return earlier
        procedure = ProcedureRepository(uow.session).get(s.procedure_code.strip())
        check_submission(
            procedure, s.procedure_code, s.agency_code, s.applicant, s.channel, list(s.papers)
        )
        check_channel(s, local_date(self.clock()))
        assert procedure is not None  # check_submission refuses a missing one
        return procedure
