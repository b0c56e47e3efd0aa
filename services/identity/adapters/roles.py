"""Role grants (role × agency per account) and the realm roles made through the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

Row = Any  # a SQLAlchemy RowMapping

_ROLES_OF = sa.union_all(
    sa.select(t.role_grants.c.role, t.role_grants.c.agency_code).where(
        t.role_grants.c.user_id == sa.bindparam("user_id")
    ),
    # A group's realm roles, held by each member in the group's agency.
    sa.select(t.group_realm_roles.c.role, t.groups.c.agency_code)
    .join(t.groups, t.groups.c.id == t.group_realm_roles.c.group_id)
    .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
    .where(t.group_members.c.user_id == sa.bindparam("user_id")),
)


class GrantRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def of(self, user_id: str) -> list[Row]:
        return list(
            self.s.execute(
                sa.select(t.role_grants)
                .where(t.role_grants.c.user_id == user_id)
                .order_by(t.role_grants.c.agency_code, t.role_grants.c.role)
            )
            .mappings()
            .all()
        )

    def roles_of(self, user_id: str) -> list[Any]:
        """(role, agency_code) rows, for the claims of a token."""
        return list(self.s.execute(_ROLES_OF, {"user_id": user_id}).all())

    def admin_grants(self, user_id: str, agencies: Sequence[str]) -> list[tuple[str, bool]]:
        """The user's agency_admin grants in these agencies: (agency code, include_sub)."""
        rows = self.s.execute(
            sa.select(t.role_grants.c.agency_code, t.role_grants.c.include_sub).where(
                t.role_grants.c.user_id == user_id,
                t.role_grants.c.role == "agency_admin",
                t.role_grants.c.agency_code.in_(agencies),
            )
        ).all()
        return [(r.agency_code, bool(r.include_sub)) for r in rows]

    @staticmethod
    def _key(user_id: str, role: str, agency_code: str | None) -> Any:
        cond = (t.role_grants.c.user_id == user_id) & (t.role_grants.c.role == role)
        if agency_code is not None:
            cond = cond & (t.role_grants.c.agency_code == agency_code)
        return cond

    def get(self, user_id: str, role: str, agency_code: str) -> Row | None:
        q = sa.select(t.role_grants).where(self._key(user_id, role, agency_code))
        return self.s.execute(q).mappings().first()

    def agencies_of(self, user_id: str, role: str, agency_code: str | None) -> list[str]:
        """Where the user holds the role: in agency_code, or (None) anywhere."""
        q = sa.select(t.role_grants.c.agency_code).where(self._key(user_id, role, agency_code))
        return list(self.s.execute(q).scalars().all())

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.role_grants).values(**values))

    def remove(self, user_id: str, role: str, agency_code: str | None) -> None:
        self.s.execute(sa.delete(t.role_grants).where(self._key(user_id, role, agency_code)))

    def rename_role(self, old: str, new: str) -> None:
        self.s.execute(sa.update(t.role_grants).where(t.role_grants.c.role == old).values(role=new))

    def remove_role(self, role: str) -> None:
        self.s.execute(sa.delete(t.role_grants).where(t.role_grants.c.role == role))


class RealmRoleRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def exists(self, realm: str, name: str) -> bool:
        q = sa.select(t.realm_roles.c.id).where(
            t.realm_roles.c.realm == realm, t.realm_roles.c.name == name
        )
        return self.s.execute(q).first() is not None

    def of(self, realm: str) -> list[Row]:
        q = sa.select(t.realm_roles).where(t.realm_roles.c.realm == realm)
        return list(self.s.execute(q).mappings().all())

    def add(self, realm: str, name: str, description: str) -> str:
        rid = str(uuid.uuid4())
        self.s.execute(
            sa.insert(t.realm_roles).values(id=rid, realm=realm, name=name, description=description)
        )
        return rid

    def composites(self, realm: str) -> dict[str, list[str]]:
        """parent → its child roles, for one realm."""
        c = t.role_composites.c
        out: dict[str, list[str]] = {}
        q = sa.select(c.parent, c.child).where(c.realm == realm).order_by(c.parent, c.child)
        for parent, child in self.s.execute(q).all():
            out.setdefault(parent, []).append(child)
        return out

    def add_composite(self, realm: str, parent: str, child: str) -> None:
        if child not in self.composites(realm).get(parent, []):
            self.s.execute(
                sa.insert(t.role_composites).values(realm=realm, parent=parent, child=child)
            )

    def remove_composite(self, realm: str, parent: str, child: str) -> None:
        c = t.role_composites.c
        self.s.execute(
            sa.delete(t.role_composites).where(
                c.realm == realm, c.parent == parent, c.child == child
            )
        )

    def forget_composites(self, realm: str, role: str) -> None:
        c = t.role_composites.c
        self.s.execute(
            sa.delete(t.role_composites).where(
                c.realm == realm, sa.or_(c.parent == role, c.child == role)
            )
        )

    def update(self, realm: str, role: str, **values: Any) -> None:
        self.s.execute(
            sa.update(t.realm_roles)
            .where(t.realm_roles.c.realm == realm, t.realm_roles.c.name == role)
            .values(**values)
        )

    def remove(self, realm: str, name: str) -> None:
        self.s.execute(
            sa.delete(t.realm_roles).where(
                t.realm_roles.c.realm == realm, t.realm_roles.c.name == name
            )
        )
