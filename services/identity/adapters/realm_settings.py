"""The realm_settings table: one row per realm whose settings an administrator changed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

_S = t.realm_settings


class RealmSettingsRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, realm: str) -> Any | None:
        return self.s.execute(sa.select(_S).where(_S.c.realm == realm)).mappings().first()

    def put(self, realm: str, settings: dict[str, Any], now: float) -> None:
        """Insert or replace (the caller read the row in this unit of work)."""
        row = self.get(realm)
        if row is None:
            self.s.execute(
                sa.insert(_S).values(realm=realm, settings=settings, version=1, updated_at=now)
            )
            return
        self.s.execute(
            sa.update(_S)
            .where(_S.c.realm == realm, _S.c.version == row["version"])
            .values(settings=settings, version=row["version"] + 1, updated_at=now)
        )
