"""The groups table and group membership."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t
from services.identity.adapters.accounts import like
from services.identity.domain.errors import NotFound

Row = Any  # a SQLAlchemy RowMapping


class GroupRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def require(self, group_id: str) -> Row:
        row = (
            self.s.execute(sa.select(t.groups).where(t.groups.c.id == group_id)).mappings().first()
        )
        if row is None:
            raise NotFound(f"group {group_id} not found", kind="group", name=group_id)
        return row

    def named(self, realm: str, agency_code: str, name: str) -> bool:
        q = sa.select(t.groups.c.id).where(
            t.groups.c.realm == realm,
            t.groups.c.agency_code == agency_code,
            t.groups.c.name == name,
        )
        return self.s.execute(q).first() is not None

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.groups).values(**values))

    def update(self, group_id: str, **values: Any) -> None:
        self.s.execute(sa.update(t.groups).where(t.groups.c.id == group_id).values(**values))

    def remove(self, group_id: str) -> None:
        self.s.execute(sa.delete(t.group_members).where(t.group_members.c.group_id == group_id))
        self.s.execute(
            sa.delete(t.group_realm_roles).where(t.group_realm_roles.c.group_id == group_id)
        )
        self.s.execute(sa.delete(t.groups).where(t.groups.c.id == group_id))

    def members(self, group_id: str) -> list[str]:
        q = sa.select(t.group_members.c.user_id).where(t.group_members.c.group_id == group_id)
        return list(self.s.execute(q).scalars().all())

    def add_member(self, group_id: str, user_id: str) -> None:
        self.s.execute(sa.insert(t.group_members).values(group_id=group_id, user_id=user_id))

    def remove_members(self, group_id: str, user_ids: list[str]) -> None:
        self.s.execute(
            sa.delete(t.group_members).where(
                t.group_members.c.group_id == group_id, t.group_members.c.user_id.in_(user_ids)
            )
        )

    def children(self, group_id: str) -> list[Row]:
        q = sa.select(t.groups).where(t.groups.c.parent_id == group_id).order_by(t.groups.c.name)
        return list(self.s.execute(q).mappings().all())

    def ancestry(self, row: Row) -> list[str]:
        """The ids of a group and of its parents up to the top (at most 32 levels)."""
        ids, parent = [row["id"]], row["parent_id"]
        for _ in range(32):
            if not parent:
                break
            ids.append(parent)
            parent = self.require(parent)["parent_id"]
        return ids

    def height(self, group_id: str, limit: int) -> int:
        """How many levels a group's subtree spans (1: no subgroups), counted up to limit."""
        level, ids = 0, [group_id]
        while ids and level < limit:
            level += 1
            q = sa.select(t.groups.c.id).where(t.groups.c.parent_id.in_(ids))
            ids = list(self.s.execute(q).scalars())
        return level

    def path(self, row: Row) -> str:
        """ "/parent/child" (Keycloak's group path), walking up at most 32 levels."""
        names, parent = [row["name"]], row["parent_id"]
        for _ in range(32):
            if not parent:
                break
            up = self.require(parent)
            names.append(up["name"])
            parent = up["parent_id"]
        return "/" + "/".join(reversed(names))

    def by_path(self, realm: str, path: str) -> Row:
        row: Row | None = None
        for name in [p for p in path.split("/") if p]:
            q = sa.select(t.groups).where(
                t.groups.c.realm == realm,
                t.groups.c.name == name,
                t.groups.c.parent_id == row["id"]
                if row is not None
                else t.groups.c.parent_id.is_(None),
            )
            row = self.s.execute(q).mappings().first()
            if row is None:
                break
        if row is None:
            raise NotFound(f"group {path[:200]} not found", kind="group", name=path[:200])
        return row

    def realm_roles(self, group_id: str) -> list[str]:
        q = sa.select(t.group_realm_roles.c.role).where(t.group_realm_roles.c.group_id == group_id)
        return sorted(self.s.execute(q).scalars().all())

    def grant_role(self, group_id: str, role: str) -> None:
        if role not in self.realm_roles(group_id):
            self.s.execute(sa.insert(t.group_realm_roles).values(group_id=group_id, role=role))

    def revoke_role(self, group_id: str, role: str) -> None:
        self.s.execute(
            sa.delete(t.group_realm_roles).where(
                t.group_realm_roles.c.group_id == group_id, t.group_realm_roles.c.role == role
            )
        )

    def leave_all(self, user_id: str) -> None:
        self.s.execute(sa.delete(t.group_members).where(t.group_members.c.user_id == user_id))

    def ids_of(self, user_id: str) -> list[str]:
        q = sa.select(t.group_members.c.group_id).where(t.group_members.c.user_id == user_id)
        return list(self.s.execute(q).scalars().all())

    def of(self, user_id: str) -> list[Row]:
        q = (
            sa.select(t.groups)
            .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
            .where(t.group_members.c.user_id == user_id)
            .order_by(t.groups.c.name)
        )
        return list(self.s.execute(q).mappings().all())

    def member_accounts(self, group_id: str, first: int, size: int) -> list[Row]:
        q = (
            sa.select(t.users)
            .join(t.group_members, t.group_members.c.user_id == t.users.c.id)
            .where(t.group_members.c.group_id == group_id)
            .order_by(t.users.c.username)
            .offset(first)
            .limit(size)
        )
        return list(self.s.execute(q).mappings().all())

    def select(
        self,
        realm: str,
        *,
        agency_code: str = "",
        member_id: str = "",
        search: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> list[Row]:
        q = sa.select(t.groups).where(t.groups.c.realm == realm)
        if agency_code:
            q = q.where(t.groups.c.agency_code == agency_code)
        if member_id:
            q = q.where(
                t.groups.c.id.in_(
                    sa.select(t.group_members.c.group_id).where(
                        t.group_members.c.user_id == member_id
                    )
                )
            )
        if search:
            q = q.where(t.groups.c.name.like(like(search), escape="\\"))
        return list(
            self.s.execute(q.order_by(t.groups.c.name).offset(offset).limit(limit)).mappings().all()
        )
