"""The catalogue of procedures: read by anyone signed in, changed by admins."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from services.dossiers.adapters.proto import procedure_to_proto
from services.dossiers.adapters.repository import ProcedureRepository
from services.dossiers.domain.errors import (
    AlreadyExists,
    InvalidField,
    NotFound,
    StaleEtag,
)
from services.dossiers.domain.procedure import Procedure, check_procedure
from services.dossiers.service_layer.base import (
    _FIELD_ATTR,
    ADMIN,
    PROCEDURE_FIELDS,
    AppBase,
)


class CatalogueUseCases(AppBase):
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
