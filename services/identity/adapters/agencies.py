"""The agencies table: the agency tree (mã định danh → parent)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t
from services.identity.domain.errors import NotFound
from services.identity.domain.model import Status

Row = Any  # a SQLAlchemy RowMapping


class AgencyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, code: str) -> Row | None:
        return (
            self.s.execute(sa.select(t.agencies).where(t.agencies.c.code == code))
            .mappings()
            .first()
        )

    def require(self, code: str) -> Row:
        row = self.get(code)
        if row is None:
            raise NotFound(f"agency {code} not found", kind="agency", name=code)
        return row

    def exists(self, code: str) -> bool:
        q = sa.select(t.agencies.c.code).where(t.agencies.c.code == code)
        return self.s.execute(q).first() is not None

    def status(self, code: str) -> int | None:
        q = sa.select(t.agencies.c.status).where(t.agencies.c.code == code)
        return self.s.execute(q).scalar()

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.agencies).values(**values))

    def update(self, code: str, **values: Any) -> None:
        self.s.execute(sa.update(t.agencies).where(t.agencies.c.code == code).values(**values))

    def ancestors(self, code: str) -> list[str]:
        """code, its parent, … up to the root (cycle-safe)."""
        chain: list[str] = []
        current: str | None = code
        while current and current not in chain and len(chain) < 64:
            chain.append(current)
            current = self.s.execute(
                sa.select(t.agencies.c.parent_code).where(t.agencies.c.code == current)
            ).scalar()
        return chain

    def subtree(self, code: str) -> list[str]:
        """code and every agency below it."""
        rows = self.s.execute(sa.select(t.agencies.c.code, t.agencies.c.parent_code)).all()
        kids: dict[str, list[str]] = {}
        for r in rows:
            if r.parent_code:
                kids.setdefault(r.parent_code, []).append(r.code)
        out, todo = [], [code]
        while todo:
            c = todo.pop()
            if c in out:
                continue
            out.append(c)
            todo.extend(kids.get(c, []))
        return out

    def active_children(self, code: str) -> int:
        return int(
            self.s.execute(
                sa.select(sa.func.count())
                .select_from(t.agencies)
                .where(t.agencies.c.parent_code == code, t.agencies.c.status == Status.ACTIVE)
            ).scalar_one()
        )

    def select(
        self, *, parent_code: str = "", level: int = 0, active_only: bool = False
    ) -> list[Row]:
        q = sa.select(t.agencies)
        if parent_code:
            q = q.where(t.agencies.c.parent_code == parent_code)
        if level:
            q = q.where(t.agencies.c.level == level)
        if active_only:
            q = q.where(t.agencies.c.status == Status.ACTIVE)
        return list(self.s.execute(q.order_by(t.agencies.c.code)).mappings().all())

    def codes(self) -> set[str]:
        return set(self.s.execute(sa.select(t.agencies.c.code)).scalars())

    def count(self) -> int:
        return int(self.s.execute(sa.select(sa.func.count()).select_from(t.agencies)).scalar_one())
