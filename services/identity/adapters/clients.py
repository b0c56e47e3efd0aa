"""The clients table: client systems and browser (public) clients."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t
from services.identity.domain.errors import NotFound

Row = Any  # a SQLAlchemy RowMapping

_BY_CLIENT_ID = sa.select(t.clients).where(
    t.clients.c.realm == sa.bindparam("realm"), t.clients.c.client_id == sa.bindparam("cid")
)


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, realm: str, client_id: str) -> Row | None:
        return self.s.execute(_BY_CLIENT_ID, {"realm": realm, "cid": client_id}).mappings().first()

    def require(self, realm: str, client_id: str) -> Row:
        row = self.get(realm, client_id)
        if row is None:
            raise NotFound(f"client {client_id} not found", kind="client", name=client_id)
        return row

    def by_internal_id(self, realm: str, internal_id: str) -> Row:
        row = (
            self.s.execute(
                sa.select(t.clients).where(
                    t.clients.c.id == internal_id, t.clients.c.realm == realm
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"client {internal_id} not found")
        return row

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.clients).values(**values))

    def update(self, internal_id: str, **values: Any) -> None:
        self.s.execute(sa.update(t.clients).where(t.clients.c.id == internal_id).values(**values))

    def remove(self, internal_id: str) -> None:
        self.s.execute(sa.delete(t.clients).where(t.clients.c.id == internal_id))

    def backchannel_uris(self, realm: str, client_ids: set[str]) -> dict[str, str]:
        """client id → its back-channel logout URI, for those of `client_ids` that have one."""
        q = sa.select(t.clients.c.client_id, t.clients.c.backchannel_logout_uri).where(
            t.clients.c.realm == realm,
            t.clients.c.client_id.in_(sorted(client_ids)),
            t.clients.c.backchannel_logout_uri != "",
        )
        return {str(cid): str(uri) for cid, uri in self.s.execute(q).all()}

    def ids(self, realm: str) -> set[str]:
        q = sa.select(t.clients.c.client_id).where(t.clients.c.realm == realm)
        return set(self.s.execute(q).scalars())

    def select(
        self,
        realm: str,
        *,
        client_id: str = "",
        owner_agency_code: str = "",
        status: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Row]:
        q = sa.select(t.clients).where(t.clients.c.realm == realm)
        if client_id:
            q = q.where(t.clients.c.client_id == client_id)
        if owner_agency_code:
            q = q.where(t.clients.c.owner_agency_code == owner_agency_code)
        if status:
            q = q.where(t.clients.c.status == status)
        q = q.order_by(t.clients.c.client_id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return list(self.s.execute(q).mappings().all())
