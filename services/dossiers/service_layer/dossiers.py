"""The dossiers use cases. Each write is one unit of work: the rows and their events commit
together through the outbox (lgsp.db.UnitOfWork), or nothing does. Who may do what is checked
here, against the caller's roles in the dossier's agency (or a parent agency):

    desk clerk (clerk)      submit, accept, refuse, supplement, withdraw, return the result
    leader (leader)         hand to a specialist, complete (approve), stop
    specialist or leader    request more papers
    any of the three        read a dossier and its history
    admin                   create and change procedures
    anyone                  look up a dossier by receipt code (+ 4 digits): status only
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from lgsp.agencies import Agency
from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from lgsp.db import UnitOfWork
from lgsp.workdays import local_date
from services.dossiers.adapters.proto import dossier_to_proto, procedure_to_proto, status_changed
from services.dossiers.adapters.repository import DossierRepository, ProcedureRepository
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.dossier import (
    Applicant,
    Channel,
    Dossier,
    HistoryEntry,
    Paper,
    check_submission,
    submit_dossier,
)
from services.dossiers.domain.errors import (
    AlreadyExists,
    InvalidField,
    NotFound,
    StaleEtag,
)
from services.dossiers.domain.procedure import Procedure, check_procedure
from services.dossiers.domain.receipt import parse_receipt_code, receipt_code
from services.dossiers.domain.status import Status

SOURCE = "dossiers"
CLERK, SPECIALIST, LEADER, ADMIN = "clerk", "specialist", "leader", "admin"
OFFICIALS = (CLERK, SPECIALIST, LEADER)
PROCEDURE_FIELDS = {
    "name", "field", "agency_codes", "processing_days", "fee_vnd", "fee_description",
    "required_papers", "online_service_level", "result_description", "legal_basis", "active",
    "steps",
}  # fmt: skip
_FIELD_ATTR = {"online_service_level": "online_level"}


class AgencyDirectory(Protocol):
    """lgsp.agencies: identity's tree in production, a static one in tests; also the tree the
    role checks walk."""

    def get(self, code: str) -> Agency | None: ...

    def ancestors(self, code: str) -> Sequence[str]: ...


class DossiersApp:
    def __init__(
        self,
        engine: Engine,
        agencies: AgencyDirectory,
        rule: DueDateRule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.rule = rule
        self.clock = clock
        self.after_commit = after_commit

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, source=SOURCE)

    # --- catalogue -----------------------------------------------------------------------

    def get_procedure(self, code: str) -> Procedure:
        with self.uow() as uow:
            p = ProcedureRepository(uow.session).get(code.strip())
        if p is None:
            raise NotFound(f"procedure {code} is not in the catalogue")
        return p

    def list_procedures(self, *, include_inactive: bool = False) -> list[Procedure]:
        with self.uow() as uow:
            return ProcedureRepository(uow.session).list(include_inactive=include_inactive)

    def create_procedure(self, p: Procedure, principal: Principal) -> Procedure:
        require_role(ADMIN, principal=principal)
        p = dataclasses.replace(check_procedure(p), version=1, update_time=self.clock())
        with self.uow() as uow:
            repo = ProcedureRepository(uow.session)
            if repo.get(p.code) is not None:
                raise AlreadyExists(f"procedure {p.code} is already in the catalogue")
            repo.add(p)
            uow.emit(
                events_pb2.ProcedureCreated(
                    procedure=procedure_to_proto(p), actor_id=principal.subject
                ),
                subject=p.code,
            )
            uow.commit()
        self.after_commit()
        return p

    def update_procedure(
        self, changes: Procedure, fields: Sequence[str], etag: str, principal: Principal
    ) -> Procedure:
        """Change the `fields` of procedure `changes.code` (dossiers already submitted keep
        their terms: they copied them)."""
        require_role(ADMIN, principal=principal)
        if not fields:
            raise InvalidField("update_mask", "name the fields to change")
        unknown = sorted(set(fields) - PROCEDURE_FIELDS)
        if unknown:
            raise InvalidField("update_mask", f"cannot change {', '.join(unknown)}")
        with self.uow() as uow:
            repo = ProcedureRepository(uow.session)
            old = repo.get(changes.code)
            if old is None:
                raise NotFound(f"procedure {changes.code} is not in the catalogue")
            if etag and etag != old.etag:
                raise StaleEtag(f"procedure {old.code} changed since it was read")
            values = {
                _FIELD_ATTR.get(f, f): getattr(changes, _FIELD_ATTR.get(f, f)) for f in fields
            }
            new = check_procedure(
                dataclasses.replace(
                    old, **values, version=old.version + 1, update_time=self.clock()
                )
            )
            repo.update(new, old.version)
            uow.emit(
                events_pb2.ProcedureUpdated(
                    procedure=procedure_to_proto(new),
                    changed_fields=sorted(fields),
                    actor_id=principal.subject,
                ),
                subject=new.code,
            )
            uow.commit()
        self.after_commit()
        return new

    def seed(self, catalogue: Sequence[Procedure]) -> int:
        """Load `catalogue` into an empty catalogue (no events: nothing was decided by anyone);
        the number stored."""
        with self.uow() as uow:
            repo = ProcedureRepository(uow.session)
            if repo.count():
                return 0
            now = self.clock()
            for p in catalogue:
                repo.add(dataclasses.replace(check_procedure(p), update_time=now))
            uow.commit()
        return len(catalogue)

    # --- intake --------------------------------------------------------------------------

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

    # --- the steps -----------------------------------------------------------------------

    def accept(self, dossier_id: str, etag: str, principal: Principal) -> Dossier:
        return self._step(
            dossier_id,
            etag,
            principal,
            (CLERK,),
            lambda d, now, who: d.accept(rule=self.rule, now=now, actor=who),
        )

    def refuse(self, dossier_id: str, etag: str, reason: str, principal: Principal) -> Dossier:
        return self._step(
            dossier_id,
            etag,
            principal,
            (CLERK,),
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
            dossier_id, etag, principal, (CLERK,),
            lambda d, now, who: d.supplement(papers, rule=self.rule, now=now, actor=who),
        )  # fmt: skip

    def request_fee(
        self, dossier_id: str, etag: str, fee_vnd: int, description: str, principal: Principal
    ) -> Dossier:
        """→ FEE_REQUESTED (6): the desk or the specialist; the clock stops until paid."""
        return self._step(
            dossier_id, etag, principal, (CLERK, SPECIALIST),
            lambda d, now, who: d.request_fee(fee_vnd, description, now=now, actor=who),
        )  # fmt: skip

    def record_payment(
        self, dossier_id: str, etag: str, amount_vnd: int, reference: str, principal: Principal
    ) -> Dossier:
        """FEE_REQUESTED → IN_PROGRESS (4) at the desk; the clock resumes, the due date moves by
        the working days it waited. (The payment platform's callback comes with the portal.)"""
        return self._step(
            dossier_id, etag, principal, (CLERK,),
            lambda d, now, who: d.record_payment(
                amount_vnd, reference, rule=self.rule, now=now, actor=who),
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
            (CLERK,),
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
            dossier_id, etag, principal, (CLERK,),
            lambda d, now, who: d.return_result(received_by, now=now, actor=who),
        )  # fmt: skip

    # --- reading -------------------------------------------------------------------------

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

    # --- helpers -------------------------------------------------------------------------

    def _step(
        self,
        dossier_id: str,
        etag: str,
        principal: Principal,
        roles: tuple[str, ...],
        change: Callable[..., None],
        *,
        with_uow: bool = False,
    ) -> Dossier:
        if not dossier_id.strip():
            raise InvalidField("dossier_id", "required")
        now = self.clock()
        with self.uow() as uow:
            repo = DossierRepository(uow.session)
            d = repo.get(dossier_id.strip())
            if d is None:
                raise NotFound(f"no dossier {dossier_id}")
            require_role(roles, d.agency_code, tree=self.agencies, principal=principal)
            if etag and etag != d.etag:
                raise StaleEtag(f"dossier {d.receipt_code} changed since it was read")
            version = d.version
            args: list[Any] = [d, now, principal.subject] + ([uow] if with_uow else [])
            change(*args)
            entries = list(d.new_history)
            repo.save(d, version)
            self._emit_changes(uow, d, entries)
            if any(e.to_status is Status.PROCESSED for e in entries):
                assert d.accept_time is not None and d.finish_time is not None
                uow.emit(
                    events_pb2.DossierProcessed(
                        dossier=dossier_to_proto(d),
                        processing_days=self.rule.working_days_taken(
                            d.accept_time, d.finish_time, d.paused_days
                        ),
                        actor_id=principal.subject,
                    ),
                    subject=d.receipt_code,
                )
            uow.commit()
        self.after_commit()
        return d

    @staticmethod
    def _emit_changes(uow: UnitOfWork, d: Dossier, entries: list[HistoryEntry]) -> None:
        for entry in entries:
            uow.emit(status_changed(d, entry), subject=d.receipt_code)
