"""Agencies: create, update, disable (with a successor), read, list and the tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import proto
from services.identity.domain import directory as rules
from services.identity.domain import model
from services.identity.domain.access import Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, FailedPrecondition, Invalid
from services.identity.domain.model import Status
from services.identity.service_layer.common import (
    DirectoryUseCases,
    Row,
    next_page,
    now,
    page,
    require_agency_admin,
)


class Agencies(DirectoryUseCases):
    def create(self, actor: Actor, a: pb.Agency) -> pb.Agency:
        require_platform_admin(actor)
        code = model.check_agency_code(a.code, "agency.code")
        values = rules.agency_values(a, rules.AGENCY_FIELDS)
        with self.change() as uow:
            r = uow.repos
            if r.agencies.exists(code):
                raise AlreadyExists(f"agency {code} already exists", kind="agency", name=code)
            if values["parent_code"]:
                r.agencies.require(values["parent_code"])
            ts = now()
            r.agencies.add(
                code=code,
                status=Status.ACTIVE,
                successor_code="",
                created_at=ts,
                updated_at=ts,
                version=1,
                **values,
            )
            msg = proto.agency(r.agencies.require(code))
            event = ev.AgencyCreated(agency=msg, actor_id=actor.id)
            self.record(uow, actor, "agency.create", code, event)
            self.commit(uow)
        return msg

    def update(self, actor: Actor, a: pb.Agency, mask: Sequence[str]) -> pb.Agency:
        values = rules.agency_update(a, mask)
        with self.change() as uow:
            r = uow.repos
            row = r.agencies.require(a.code)
            require_agency_admin(r, actor, a.code)
            rules.check_etag(row, a.etag, f"agency {a.code}")
            if values.get("parent_code"):
                r.agencies.require(values["parent_code"])
                if a.code in r.agencies.ancestors(values["parent_code"]):
                    raise Invalid("agency.parent_code", "would make a cycle in the tree")
            changed = [k for k, v in values.items() if row[k] != v]
            if changed:
                r.agencies.update(a.code, updated_at=now(), version=row["version"] + 1, **values)
            msg = proto.agency(r.agencies.require(a.code))
            if changed:
                event = ev.AgencyUpdated(agency=msg, changed_fields=changed, actor_id=actor.id)
                self.record(uow, actor, "agency.update", a.code, event, fields=changed)
            self.commit(uow)
        return msg

    def disable(self, actor: Actor, code: str, etag: str, successor: str, reason: str) -> pb.Agency:
        require_platform_admin(actor)
        reason = rules.reason(reason)
        with self.change() as uow:
            r = uow.repos
            row = r.agencies.require(code)
            rules.check_etag(row, etag, f"agency {code}")
            if successor:
                r.agencies.require(successor)
            active_children = r.agencies.active_children(code)
            if active_children:
                raise FailedPrecondition(
                    f"agency {code} still has {active_children} active agencies below it",
                    type="ACTIVE_SUB_AGENCIES",
                    subject=code,
                )
            r.agencies.update(
                code,
                status=Status.DISABLED,
                successor_code=successor,
                updated_at=now(),
                version=row["version"] + 1,
            )
            msg = proto.agency(r.agencies.require(code))
            event = ev.AgencyDisabled(
                code=code, successor_code=successor, reason=reason, actor_id=actor.id
            )
            self.record(uow, actor, "agency.disable", code, event)
            self.commit(uow)
        return msg

    def get(self, code: str) -> pb.Agency:
        with self.storage.read() as r:
            return proto.agency(r.agencies.require(code))

    def row(self, code: str) -> Row:
        with self.storage.read() as r:
            return r.agencies.require(code)

    def tree(self, root: str, max_depth: int, include_disabled: bool) -> list[pb.AgencyNode]:
        if max_depth < 0:
            raise Invalid("max_depth", "must not be negative")
        with self.storage.read() as r:
            rows = r.agencies.select()
            if root:
                r.agencies.require(root)
        children: dict[str | None, list[Any]] = {}
        for row in rows:
            if include_disabled or row["status"] == Status.ACTIVE:
                children.setdefault(row["parent_code"] or None, []).append(row)

        def node(row: Any, depth: int) -> pb.AgencyNode:
            kids = [] if max_depth and depth >= max_depth else children.get(row["code"], [])
            return pb.AgencyNode(
                agency=proto.agency(row), children=[node(k, depth + 1) for k in kids]
            )

        start = [row for row in rows if row["code"] == root] if root else children.get(None, [])
        return [node(row, 0) for row in start]

    def list(self, req: pb.ListAgenciesRequest) -> pb.ListAgenciesResponse:
        offset, size = page(req.page_size, req.page_token, 100, 1000)
        with self.storage.read() as r:
            rows = r.agencies.select(
                parent_code=req.parent_code,
                level=int(req.level),
                active_only=not req.include_disabled,
            )
        if req.query:
            needle = rules.fold(req.query)
            rows = [
                row
                for row in rows
                if needle in rules.fold(f"{row['name']} {row['short_name']} {row['code']}".lower())
            ]
        return pb.ListAgenciesResponse(
            agencies=[proto.agency(row) for row in rows[offset : offset + size]],
            next_page_token=next_page(offset, size, offset + size < len(rows)),
            total_size=len(rows),
        )
