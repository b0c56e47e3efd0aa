"""The whole catalogue out to a file and back in (`lgsp dossiers procedures export|import`):
the admins' way to edit many procedures at once. An import checks every entry before it
changes anything, then creates, updates or leaves each procedure in one unit of work, with the
same ProcedureCreated/ProcedureUpdated events as the gRPC calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lgsp.api.dossiers.v1 import events_pb2
from lgsp.auth import Principal, require_role
from services.dossiers.adapters.proto import procedure_to_proto
from services.dossiers.adapters.repository import (
    ProcedureRepository,
    procedure_from_json,
    procedure_to_json,
)
from services.dossiers.domain.errors import InvalidField
from services.dossiers.domain.procedure import Procedure, check_procedure, same_terms
from services.dossiers.service_layer.base import _FIELD_ATTR, ADMIN, PROCEDURE_FIELDS, AppBase

MAX_ENTRIES = 20_000


@dataclasses.dataclass(frozen=True)
class ImportReport:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


def parse_catalogue(document: Any) -> list[Procedure]:
    """The procedures of a catalogue document ({"procedures": [...]}, catalogue.json's shape),
    each checked; InvalidField naming the first bad entry, e.g. procedures[3].processing_days."""
    if not isinstance(document, Mapping) or not isinstance(document.get("procedures"), list):
        raise InvalidField("procedures", 'a JSON object with a "procedures" list')
    entries = document["procedures"]
    if len(entries) > MAX_ENTRIES:
        raise InvalidField("procedures", f"at most {MAX_ENTRIES} entries")
    out: list[Procedure] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"procedures[{i}]"
        try:
            p = procedure_from_json(entry)
        except KeyError as e:
            raise InvalidField(f"{where}.{e.args[0]}", "required") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise InvalidField(where, f"malformed entry ({e})") from None
        try:
            check_procedure(p)
        except InvalidField as e:
            raise InvalidField(where + e.field.removeprefix("procedure"), e.reason) from None
        except (TypeError, AttributeError) as e:  # a number where text belongs, …
            raise InvalidField(where, f"malformed entry ({e})") from None
        if p.code in seen:
            raise InvalidField(f"{where}.code", f"{p.code} is also procedures[{seen[p.code]}]")
        seen[p.code] = i
        out.append(p)
    return out


def _changed_fields(old: Procedure, new: Procedure) -> list[str]:
    attr = {f: _FIELD_ATTR.get(f, f) for f in PROCEDURE_FIELDS}
    return sorted(f for f, a in attr.items() if getattr(old, a) != getattr(new, a))


class CatalogueTransferUseCases(AppBase):
    def export_catalogue(self) -> dict[str, Any]:
        """Every procedure, inactive ones too, in catalogue.json's shape."""
        with self.uow() as uow:
            procedures = ProcedureRepository(uow.session).list_all(include_inactive=True)
        return {"procedures": [procedure_to_json(p) for p in procedures]}

    def import_catalogue(
        self, procedures: Sequence[Procedure], principal: Principal
    ) -> ImportReport:
        """Create the procedures not in the catalogue and update those that differ, all or
        nothing (`procedures` come checked from parse_catalogue)."""
        require_role(ADMIN, principal=principal)
        report = ImportReport([], [], [])
        now = self.clock()
        with self.uow() as uow:
            repo = ProcedureRepository(uow.session)
            for p in procedures:
                old = repo.get(p.code)
                if old is None:
                    new = dataclasses.replace(p, version=1, update_time=now)
                    repo.add(new)
                    event: Any = events_pb2.ProcedureCreated(
                        procedure=procedure_to_proto(new), actor_id=principal.subject
                    )
                    report.created.append(p.code)
                elif same_terms(old, p):
                    report.unchanged.append(p.code)
                    continue
                else:
                    new = dataclasses.replace(p, version=old.version + 1, update_time=now)
                    repo.update(new, old.version)
                    event = events_pb2.ProcedureUpdated(
                        procedure=procedure_to_proto(new),
                        changed_fields=_changed_fields(old, new),
                        actor_id=principal.subject,
                    )
                    report.updated.append(p.code)
                uow.emit(event, subject=p.code)
            uow.commit()
        self.after_commit()
        return report
