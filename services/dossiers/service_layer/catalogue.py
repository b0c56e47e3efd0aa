"""The catalogue of procedures: read by anyone (the national portal publishes it too), changed
by admins; inactive procedures are listed for admins only."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from lgsp.textfold import fold
from services.dossiers.adapters.proto import procedure_to_proto
from services.dossiers.adapters.repository import ProcedureRepository
from services.dossiers.domain.errors import (
    AlreadyExists,
    InvalidField,
    NotFound,
    StaleEtag,
)
from services.dossiers.domain.procedure import (
    MAX_QUERY,
    OnlineLevel,
    Procedure,
    ProcedureField,
    ProcedureQuery,
    check_procedure,
)
from services.dossiers.domain.receipt import check_agency_code
from services.dossiers.service_layer.base import (
    _FIELD_ATTR,
    ADMIN,
    PROCEDURE_FIELDS,
    AppBase,
)
from services.dossiers.service_layer.paging import (
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


@dataclasses.dataclass(frozen=True)
class ProcedurePage:
    procedures: list[Procedure]
    next_page_token: str
    total_size: int


class CatalogueUseCases(AppBase):
    def get_procedure(self, code: str) -> Procedure:
        with self.uow() as uow:
            p = ProcedureRepository(uow.session).get(code.strip())
        if p is None:
            raise NotFound(f"procedure {code} is not in the catalogue")
        return p

    def list_procedures(
        self,
        principal: Principal,
        *,
        field_code: str = "",
        agency_code: str = "",
        min_online_level: int = 0,
        include_inactive: bool = False,
        query: str = "",
        size: int = 0,
        token: str = "",
    ) -> ProcedurePage:
        """One page of the procedures matching the filters, by code, and how many match."""
        if include_inactive:
            require_role(ADMIN, principal=principal)
        if min_online_level not in OnlineLevel._value2member_map_:
            raise InvalidField("min_online_service_level", "not an online service level")
        field_code = field_code.strip()
        if len(field_code) > 40:
            raise InvalidField("field_code", "at most 40 characters")
        query = query.strip()
        if len(query) > MAX_QUERY or _CONTROL.search(query):
            raise InvalidField("query", f"at most {MAX_QUERY} characters, no control characters")
        agency_code = check_agency_code(agency_code) if agency_code.strip() else ""
        limit = page_size(size)
        filters = fingerprint(field_code, agency_code, min_online_level, include_inactive, query)
        after = decode_token(token, filters)
        with self.uow() as uow:
            repo = ProcedureRepository(uow.session)
            agencies = None
            if agency_code:  # the agency and every agency beneath it that handles something
                agencies = frozenset(
                    c
                    for c in repo.agency_codes()
                    if c == agency_code or agency_code in self.agencies.ancestors(c)
                )
            q = ProcedureQuery(
                field_code=field_code,
                agency_codes=agencies,
                min_online_level=OnlineLevel(min_online_level),
                include_inactive=include_inactive,
                text=fold(query),
            )
            found = repo.search(q, after, limit + 1)
            total = repo.count_matching(q)
        more = len(found) > limit
        found = found[:limit]
        nxt = encode_token(found[-1].code, filters) if more else ""
        return ProcedurePage(found, nxt, total)

    def list_fields(self) -> list[ProcedureField]:
        """The fields (lĩnh vực) of active procedures, by name as a Vietnamese reader sorts it
        (accents aside), one per code."""
        with self.uow() as uow:
            fields = ProcedureRepository(uow.session).fields()
        by_code = {f.code: f for f in sorted(fields, key=lambda f: f.name)}
        return sorted(by_code.values(), key=lambda f: (fold(f.name), f.name, f.code))

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
