"""Keycloak's group tree and group realm roles: subgroups (created under a parent, in its
agency), a group's path and children, a group found by its path, and the realm roles granted
to a group, which every member holds in the group's agency (in tokens' realm_access and
agency_roles)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from services.identity.domain import directory as rules
from services.identity.domain import model
from services.identity.domain.access import Actor, require_platform_admin
from services.identity.domain.errors import AlreadyExists, Invalid, NotFound
from services.identity.service_layer.common import (
    DirectoryUseCases,
    Row,
    now,
    require_agency_admin,
)

MAX_DEPTH = 8


class GroupTree(DirectoryUseCases):
    def create_child(self, actor: Actor, parent_id: str, name: str, description: str) -> str:
        name = model.check_name(name, "name")
        desc = rules.group_description(description)
        with self.change() as uow:
            r = uow.repos
            parent = r.groups.require(parent_id)
            require_agency_admin(r, actor, parent["agency_code"])
            if r.groups.path(parent).count("/") >= MAX_DEPTH:
                raise Invalid("parent", f"groups nest at most {MAX_DEPTH} deep")
            if r.groups.named(parent["realm"], parent["agency_code"], name):
                raise AlreadyExists(f"group {name} already exists", kind="group", name=name)
            gid, ts = str(uuid.uuid4()), now()
            r.groups.add(
                id=gid,
                realm=parent["realm"],
                name=name,
                agency_code=parent["agency_code"],
                description=desc,
                parent_id=parent_id,
                created_at=ts,
                updated_at=ts,
                version=1,
            )
            self.record(uow, actor, "group.create", gid, None, name=name, parent=parent_id)
            self.commit(uow)
        return gid

    def move(self, actor: Actor, realm: str, group_id: str, parent_id: str | None) -> None:
        """Keycloak's POST of an existing group to `groups/{parent}/children` (or to
        `groups`: back to the top). Within its agency (a group's roles are held in its
        agency), never under itself or its own subgroups, at most MAX_DEPTH deep."""
        with self.change() as uow:
            r = uow.repos
            row = r.groups.require(group_id)
            if row["realm"] != realm:
                raise NotFound(f"group {group_id} not found", kind="group", name=group_id)
            require_agency_admin(r, actor, row["agency_code"])
            depth = 0
            if parent_id is not None:
                parent = r.groups.require(parent_id)
                if parent["realm"] != realm:
                    raise NotFound(f"group {parent_id} not found", kind="group", name=parent_id)
                if parent["agency_code"] != row["agency_code"]:
                    raise Invalid("parent", "a group moves only within its agency")
                if group_id in r.groups.ancestry(parent):
                    raise Invalid("id", "a group cannot move under itself or its own subgroups")
                depth = r.groups.path(parent).count("/")
            if depth + r.groups.height(group_id, MAX_DEPTH + 1) > MAX_DEPTH:
                raise Invalid("parent", f"groups nest at most {MAX_DEPTH} deep")
            if row["parent_id"] == parent_id:
                return
            r.groups.update(
                group_id, parent_id=parent_id, updated_at=now(), version=row["version"] + 1
            )
            self.record(
                uow,
                actor,
                "group.move",
                group_id,
                None,
                parent=parent_id or "",
                was=row["parent_id"] or "",
            )
            self.commit(uow)

    def view(self, group_id: str) -> tuple[Row, str, list[Row]]:
        """(group, its path, its children)."""
        with self.storage.read() as r:
            row = r.groups.require(group_id)
            return row, r.groups.path(row), r.groups.children(group_id)

    def children(self, group_id: str) -> list[tuple[Row, str]]:
        with self.storage.read() as r:
            parent = r.groups.require(group_id)
            base = r.groups.path(parent)
            return [(c, f"{base}/{c['name']}") for c in r.groups.children(group_id)]

    def by_path(self, realm: str, path: str) -> str:
        if len(path) > 2000:
            raise Invalid("path", "too long")
        with self.storage.read() as r:
            return str(r.groups.by_path(realm, path)["id"])

    # --- realm roles of a group -----------------------------------------------------------

    def realm_roles(self, group_id: str) -> list[str]:
        with self.storage.read() as r:
            r.groups.require(group_id)
            return r.groups.realm_roles(group_id)

    def change_realm_roles(
        self, actor: Actor, group_id: str, names: Sequence[str], grant: bool
    ) -> None:
        """Only platform admins: a group's roles reach every member at once."""
        require_platform_admin(actor)
        with self.change() as uow:
            r = uow.repos
            row = r.groups.require(group_id)
            for name in names:
                if name not in model.ROLE_NUMBERS and not r.realm_roles.exists(row["realm"], name):
                    raise NotFound(f"role {name[:64]} not found")
                if grant:
                    r.groups.grant_role(group_id, name)
                else:
                    r.groups.revoke_role(group_id, name)
            action = "group.grant_roles" if grant else "group.revoke_roles"
            self.record(uow, actor, action, group_id, None, roles=list(names))
            self.commit(uow)


def group_path_rep(row: Any, path: str, children: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "path": path,
        "parentId": row["parent_id"],
        "subGroupCount": children,
        "subGroups": [],
        "attributes": {"agency_code": [row["agency_code"]]} if row["agency_code"] else {},
    }
