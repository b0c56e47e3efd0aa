"""Client roles and who holds them (accounts directly, or as members of a group)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t
from services.identity.domain.model import expand_roles

Row = Any  # a SQLAlchemy RowMapping
USER, GROUP = "user", "group"

_R, _G, _C = t.client_roles, t.client_role_grants, t.client_role_composites
# An account's client roles, held directly or through its groups (for resource_access).
_HELD_BY_USER = (
    sa.select(_R.c.id, _R.c.client_id, _R.c.name)
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
        self.s.execute(
            sa.delete(_C).where(sa.or_(_C.c.parent_id == role_id, _C.c.child_id == role_id))
        )
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

    def by_id(self, realm: str, role_id: str) -> Row | None:
        q = sa.select(_R).where(_R.c.realm == realm, _R.c.id == role_id)
        return self.s.execute(q).mappings().first()

    def composites(self, realm: str) -> dict[str, list[str]]:
        """parent role id → its child role ids, in one realm."""
        q = (
            sa.select(_C.c.parent_id, _C.c.child_id)
            .join(_R, _R.c.id == _C.c.parent_id)
            .where(_R.c.realm == realm)
        )
        out: dict[str, list[str]] = {}
        for parent, child in self.s.execute(q).all():
            out.setdefault(parent, []).append(child)
        return out

    def children(self, role_id: str) -> list[Row]:
        q = sa.select(_R).join(_C, _C.c.child_id == _R.c.id).where(_C.c.parent_id == role_id)
        return list(self.s.execute(q.order_by(_R.c.client_id, _R.c.name)).mappings().all())

    def add_composite(self, parent_id: str, child_id: str) -> None:
        if child_id not in self.composites_of(parent_id):
            self.s.execute(sa.insert(_C).values(parent_id=parent_id, child_id=child_id))

    def remove_composite(self, parent_id: str, child_id: str) -> None:
        self.s.execute(sa.delete(_C).where(_C.c.parent_id == parent_id, _C.c.child_id == child_id))

    def composites_of(self, parent_id: str) -> list[str]:
        q = sa.select(_C.c.child_id).where(_C.c.parent_id == parent_id)
        return list(self.s.execute(q).scalars().all())

    def resource_access(self, user_id: str) -> dict[str, list[str]]:
        """client id → the account's roles there (direct, through its groups, and what
        composite client roles among those contain)."""
        held = {
            rid: (cid, name)
            for rid, cid, name in self.s.execute(_HELD_BY_USER, {"uid": user_id}).all()
        }
        if held:
            graph = self._graph(set(held))
            more = expand_roles(set(held), graph) - set(held)
            if more:
                q = sa.select(_R.c.id, _R.c.client_id, _R.c.name).where(_R.c.id.in_(more))
                held |= {rid: (cid, name) for rid, cid, name in self.s.execute(q).all()}
        out: dict[str, set[str]] = {}
        for client_id, name in held.values():
            out.setdefault(client_id, set()).add(name)
        return {k: sorted(v) for k, v in out.items()}

    def _graph(self, start: set[str]) -> dict[str, list[str]]:
        """The composite edges reachable from `start` (one query per level; usually one:
        no composites)."""
        graph: dict[str, list[str]] = {}
        todo = set(start)
        for _ in range(32):
            if not todo:
                break
            q = sa.select(_C.c.parent_id, _C.c.child_id).where(_C.c.parent_id.in_(todo))
            rows = self.s.execute(q).all()
            for parent, child in rows:
                graph.setdefault(parent, []).append(child)
            todo = {c for _, c in rows} - set(graph)
        return graph
