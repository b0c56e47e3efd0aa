"""Groups: create, rename, delete, membership, reading and listing them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters.unit_of_work import IdentityUnitOfWork
from services.identity.domain import directory as rules
from services.identity.domain import model
from services.identity.domain.access import REALM, Actor
from services.identity.domain.errors import AlreadyExists, FailedPrecondition, Invalid
from services.identity.service_layer.common import (
    DirectoryUseCases,
    Row,
    group_message,
    next_page,
    now,
    page,
    require_agency_admin,
)


class Groups(DirectoryUseCases):
    def create(
        self, actor: Actor, g: pb.Group, request_id: str = "", realm: str = REALM
    ) -> pb.Group:
        name = model.check_name(g.name, "group.name")
        desc = rules.group_description(g.description)
        if g.agency_code:
            model.check_agency_code(g.agency_code, "group.agency_code")
        elif realm == REALM and not actor.is_platform_admin:
            raise Invalid("group.agency_code", "is required")
        with self.change() as uow:
            r = uow.repos
            if request_id:
                done = r.requests.result_of(request_id)
                if done:
                    return group_message(r, r.groups.require(done))
            if g.agency_code:
                r.agencies.require(g.agency_code)
            require_agency_admin(r, actor, g.agency_code)
            if r.groups.named(realm, g.agency_code, name):
                raise AlreadyExists(f"group {name} already exists", kind="group", name=name)
            gid, ts = str(uuid.uuid4()), now()
            r.groups.add(
                id=gid,
                realm=realm,
                name=name,
                agency_code=g.agency_code,
                description=desc,
                created_at=ts,
                updated_at=ts,
                version=1,
            )
            if request_id:
                r.requests.record(request_id, "group", gid)
            self.record(uow, actor, "group.create", gid, None, name=name)
            if g.member_ids:
                self._add_members(uow, actor, gid, list(g.member_ids))
            msg = group_message(r, r.groups.require(gid))
            self.commit(uow)
        return msg

    def update(self, actor: Actor, g: pb.Group, mask: Sequence[str]) -> pb.Group:
        values = rules.group_values(g, mask)
        with self.change() as uow:
            r = uow.repos
            row = r.groups.require(g.id)
            require_agency_admin(r, actor, row["agency_code"])
            rules.check_etag(row, g.etag, f"group {row['name']}")
            r.groups.update(g.id, updated_at=now(), version=row["version"] + 1, **values)
            self.record(uow, actor, "group.update", g.id, None, fields=list(values))
            msg = group_message(r, r.groups.require(g.id))
            self.commit(uow)
        return msg

    def delete(self, actor: Actor, group_id: str, etag: str = "") -> None:
        with self.change() as uow:
            r = uow.repos
            row = r.groups.require(group_id)
            require_agency_admin(r, actor, row["agency_code"])
            rules.check_etag(row, etag, f"group {row['name']}")
            if r.groups.children(group_id):
                raise FailedPrecondition(f"group {row['name']} has subgroups: delete them first")
            members = r.groups.members(group_id)
            r.groups.remove(group_id)
            event = ev.GroupMembershipChanged(
                group_id=group_id,
                agency_code=row["agency_code"],
                removed_user_ids=members,
                actor_id=actor.id,
            )
            self.record(uow, actor, "group.delete", group_id, event if members else None)
            self.commit(uow)

    def _add_members(
        self, uow: IdentityUnitOfWork, actor: Actor, group_id: str, ids: list[str]
    ) -> None:
        r = uow.repos
        row = r.groups.require(group_id)
        have = set(r.groups.members(group_id))
        added = []
        for uid in dict.fromkeys(ids):
            r.accounts.require(uid)
            if uid not in have:
                r.groups.add_member(group_id, uid)
                added.append(uid)
        if added:
            event = ev.GroupMembershipChanged(
                group_id=group_id,
                agency_code=row["agency_code"],
                added_user_ids=added,
                actor_id=actor.id,
            )
            self.record(uow, actor, "group.add_members", group_id, event, users=added)

    def change_members(
        self, actor: Actor, group_id: str, add: list[str], remove: list[str]
    ) -> pb.Group:
        with self.change() as uow:
            r = uow.repos
            row = r.groups.require(group_id)
            require_agency_admin(r, actor, row["agency_code"])
            if add:
                self._add_members(uow, actor, group_id, add)
            if remove:
                have = set(r.groups.members(group_id))
                gone = [u for u in dict.fromkeys(remove) if u in have]
                if gone:
                    r.groups.remove_members(group_id, gone)
                    event = ev.GroupMembershipChanged(
                        group_id=group_id,
                        agency_code=row["agency_code"],
                        removed_user_ids=gone,
                        actor_id=actor.id,
                    )
                    self.record(uow, actor, "group.remove_members", group_id, event, users=gone)
            msg = group_message(r, r.groups.require(group_id))
            self.commit(uow)
        return msg

    # --- reading --------------------------------------------------------------------------

    def get(self, group_id: str) -> pb.Group:
        with self.storage.read() as r:
            return group_message(r, r.groups.require(group_id))

    def row(self, group_id: str) -> Row:
        with self.storage.read() as r:
            return r.groups.require(group_id)

    def search(self, realm: str, search: str, first: int, size: int) -> list[Row]:
        with self.storage.read() as r:
            return r.groups.select(realm, search=search, offset=first, limit=size)

    def members(self, group_id: str, first: int, size: int) -> list[Row]:
        """The member accounts of a group, by username."""
        with self.storage.read() as r:
            r.groups.require(group_id)
            return r.groups.member_accounts(group_id, first, size)

    def of_user(self, user_id: str, realm: str) -> list[Row]:
        with self.storage.read() as r:
            r.accounts.require(user_id, realm)
            return r.groups.of(user_id)

    def list(self, req: pb.ListGroupsRequest, realm: str = REALM) -> pb.ListGroupsResponse:
        offset, size = page(req.page_size, req.page_token, 50, 500)
        with self.storage.read() as r:
            rows = r.groups.select(
                realm,
                agency_code=req.agency_code,
                member_id=req.member_id,
                offset=offset,
                limit=size + 1,
            )
            msgs = [group_message(r, row) for row in rows[:size]]
        return pb.ListGroupsResponse(
            groups=msgs, next_page_token=next_page(offset, size, len(rows) > size)
        )
