"""What every group of dossiers use cases shares: the engine, the agency tree the role
checks walk, the due-date rule, the clock, and `_step`, the one path every status change
takes (load, check role and etag, change, save, emit, commit). Who may do what:

    desk (clerk or          submit, accept, refuse, supplement, withdraw, return the result,
      one_stop_officer)     take a fee at the desk
    leader (leader)         hand to a specialist, complete (approve), stop
    specialist or leader    request more papers
    any of them             read a dossier and its history
    admin                   create and change procedures
    anyone                  look up a dossier by receipt code (+ 4 digits): status only
    any of the three        list and search dossiers of their agencies (and those below)
    any of the three, or    the figures of their agencies; `admin` and `auditor` (identity's
      admin or auditor        Kiểm tra, giám sát) those of the whole province

Every write that changes a dossier calls `_record_figures(uow, before, after)` in its unit of
work (`_step` and intake do), so the figures' summary moves with the dossier or not at all.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from lgsp.agencies import Agency
from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from lgsp.db import UnitOfWork
from services.dossiers.adapters.figures import add_figures
from services.dossiers.adapters.proto import dossier_to_proto, status_changed
from services.dossiers.adapters.repository import DossierRepository
from services.dossiers.domain.deadlines import DueDateRule
from services.dossiers.domain.dossier import (
    Dossier,
    HistoryEntry,
)
from services.dossiers.domain.errors import (
    InvalidField,
    NotFound,
    StaleEtag,
)
from services.dossiers.domain.figures import change, contributions
from services.dossiers.domain.status import Status
from services.dossiers.service_layer.verification import ApplicantVerifier, NoVerification

SOURCE = "dossiers"
CLERK, SPECIALIST, LEADER, ADMIN = "clerk", "specialist", "leader", "admin"
# Identity's "Cán bộ một cửa": the official at the one-stop desk, what a commune's and the
# public administration service centre's desks are staffed with; the desk's steps are theirs
# as much as the clerk's (văn thư).
ONE_STOP = "one_stop_officer"
DESK = (CLERK, ONE_STOP)
OFFICIALS = (*DESK, SPECIALIST, LEADER)
# Read the figures of every agency of the province (identity's role names).
PROVINCE_WIDE = (ADMIN, "auditor")
PROCEDURE_FIELDS = {
    "name", "field", "agency_codes", "processing_days", "fee_vnd", "fee_description",
    "required_papers", "online_service_level", "result_description", "legal_basis", "active",
    "steps", "source_url",
}  # fmt: skip
_FIELD_ATTR = {"online_service_level": "online_level"}


class AgencyDirectory(Protocol):
    """lgsp.agencies: identity's tree in production, a static one in tests; also the tree the
    role checks walk."""

    def get(self, code: str) -> Agency | None: ...

    def ancestors(self, code: str) -> Sequence[str]: ...

    def descendants(self, code: str) -> Sequence[str]: ...


class AppBase:
    def __init__(
        self,
        engine: Engine,
        agencies: AgencyDirectory,
        rule: DueDateRule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_commit: Callable[[], None] = lambda: None,
        verifier: ApplicantVerifier | None = None,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.rule = rule
        self.clock = clock
        self.after_commit = after_commit
        # The national check of applicants at intake; bootstrap always passes one (the
        # gateway's, or NoVerification when [dossiers] verify_applicants is off).
        self.verifier: ApplicantVerifier = verifier or NoVerification()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, source=SOURCE)

    def _step(
        self,
        dossier_id: str,
        etag: str,
        principal: Principal,
        roles: tuple[str, ...],
        change: Callable[..., None],
        *,
        with_uow: bool = False,
        dry_run: bool = False,
        emit: Callable[[UnitOfWork, Dossier, str], None] | None = None,
    ) -> Dossier:
        """Load, check role and etag, `change`, save, emit, commit. `dry_run`: every check
        and the change, then roll back and hand back the dossier as it was (a step that needs
        a remote call first checks it can be taken). `emit` replaces the status events for a
        change that keeps the status (an apology)."""
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
            if dry_run:
                trial = copy.deepcopy(d)
                change(*[trial, now, principal.subject] + ([uow] if with_uow else []))
                return d
            before = dataclasses.replace(d, new_history=[])
            args: list[Any] = [d, now, principal.subject] + ([uow] if with_uow else [])
            change(*args)
            entries = list(d.new_history)
            repo.save(d, version)
            self._record_figures(uow, before, d)
            if emit is not None:
                emit(uow, d, principal.subject)
            else:
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

    def _record_figures(self, uow: UnitOfWork, before: Dossier | None, after: Dossier) -> None:
        """The figures' summary moved by what the change did to the dossier's contributions
        (domain/figures.py); in `uow`, so it commits with the dossier or not at all. Every
        path that adds or saves a dossier calls it: `before` None for a new one."""
        add_figures(
            uow.session,
            change(contributions(before, self.rule), contributions(after, self.rule)),
        )

    def _official_agencies(self, principal: Principal, roles: Sequence[str]) -> set[str]:
        """The agencies where `principal` holds one of `roles`, with those below them."""
        out: set[str] = set()
        for code, held in principal.grants.items():
            if held & set(roles):
                out.add(code)
                out.update(self.agencies.descendants(code))
        return out

    @staticmethod
    def _emit_changes(uow: UnitOfWork, d: Dossier, entries: list[HistoryEntry]) -> None:
        for entry in entries:
            uow.emit(status_changed(d, entry), subject=d.receipt_code)
