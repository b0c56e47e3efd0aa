"""The signing_keys table: RSA keys (PEM) by kid, newest first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def newest_first(self) -> list[Any]:
        q = sa.select(t.signing_keys).order_by(t.signing_keys.c.created_at.desc())
        return list(self.s.execute(q).mappings().all())

    def any(self) -> bool:
        return self.s.execute(sa.select(t.signing_keys.c.kid)).first() is not None

    def add(self, kid: str, private_pem: str, now: float) -> None:
        self.s.execute(
            sa.insert(t.signing_keys).values(kid=kid, private_pem=private_pem, created_at=now)
        )

    def retire_current(self, now: float) -> None:
        self.s.execute(
            sa.update(t.signing_keys)
            .where(t.signing_keys.c.retired_at.is_(None))
            .values(retired_at=now)
        )
