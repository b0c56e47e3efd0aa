"""Client roles and who holds them (accounts directly, or as members of a group)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

Row = Any  # a SQLAlchemy RowMapping
USER, GROUP = "user", "group"

_R, _G = t.client_roles, t.client_role_grants
# An account's client roles, held directly or through its groups (for resource_access).
_HELD_BY_USER = (
    sa.select(_R.c.client_id, _R.c.name)
    .join(_G, _G.c.role_id == _R.c.id)
    .where(
        sa.or_(
            sa.and_(_G.c.holder_kind == USER, _G.c.holder_id == sa.bindparam("uid")),
            sa.and_(
                _G.c.holder_kind == GROUP,
                _G.c.holder_id.in_(
                    sa.select(t.group_members.c.group_id).where(
                        t.group_members.c.user_id == sa.bindparam("uid")
                    )
                ),
            ),
        )
    )
)


class ClientRoleRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, realm: str, client_id: str, name: str, description: str) -> str:
        rid = str(uuid.uuid4())
        self.s.execute(
            sa.insert(_R).values(
                id=rid, realm=realm, client_id=client_id, name=name, description=description
            )
        )
        return rid

    def of_client(self, realm: str, client_id: str) -> list[Row]:
        q = sa.select(_R).where(_R.c.realm == realm, _R.c.client_id == client_id)
        return list(self.s.execute(q.order_by(_R.c.name)).mappings().all())

    def get(self, realm: str, client_id: str, name: str) -> Row | None:
        q = sa.select(_R).where(_R.c.realm == realm, _R.c.client_id == client_id, _R.c.name == name)
        return self.s.execute(q).mappings().first()

    def remove(self, role_id: str) -> None:
        self.s.execute(sa.delete(_G).where(_G.c.role_id == role_id))
        self.s.execute(sa.delete(_R).where(_R.c.id == role_id))

    def remove_client(self, realm: str, client_id: str) -> None:
        for row in self.of_client(realm, client_id):
            self.remove(row["id"])

    def grant(self, role_id: str, kind: str, holder: str) -> None:
        exists = self.s.execute(
            sa.select(_G.c.role_id).where(
                _G.c.role_id == role_id, _G.c.holder_kind == kind, _G.c.holder_id == holder
            )
        ).first()
        if exists is None:
            self.s.execute(
                sa.insert(_G).values(
                    role_id=role_id, holder_kind=kind, holder_id=holder, granted_at=time.time()
                )
            )

    def revoke(self, role_id: str, kind: str, holder: str) -> None:
        self.s.execute(
            sa.delete(_G).where(
                _G.c.role_id == role_id, _G.c.holder_kind == kind, _G.c.holder_id == holder
            )
        )

    def held(self, kind: str, holder: str, realm: str, client_id: str) -> list[Row]:
        """The roles of one client a holder has directly."""
        q = (
            sa.select(_R)
            .join(_G, _G.c.role_id == _R.c.id)
            .where(
                _G.c.holder_kind == kind,
                _G.c.holder_id == holder,
                _R.c.realm == realm,
                _R.c.client_id == client_id,
            )
            .order_by(_R.c.name)
        )
        return list(self.s.execute(q).mappings().all())

    def holders(self, role_id: str) -> list[str]:
        """Accounts holding the role directly."""
        q = sa.select(_G.c.holder_id).where(_G.c.role_id == role_id, _G.c.holder_kind == USER)
        return list(self.s.execute(q).scalars().all())

    def resource_access(self, user_id: str) -> dict[str, list[str]]:
        """client id → the account's roles there (direct and through its groups)."""
        out: dict[str, set[str]] = {}
        for client_id, name in self.s.execute(_HELD_BY_USER, {"uid": user_id}).all():
            out.setdefault(client_id, set()).add(name)
        return {k: sorted(v) for k, v in out.items()}
