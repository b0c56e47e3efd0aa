"""The app_passwords table: officials' passwords for mail clients (hashes only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

Row = Any  # a SQLAlchemy RowMapping

_a = t.app_passwords.c


class AppPasswordRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.app_passwords).values(**values))

    def live(self, user_id: str) -> list[Row]:
        """The user's live app passwords, newest first."""
        q = (
            sa.select(t.app_passwords)
            .where(_a.user_id == user_id, _a.revoked_at.is_(None))
            .order_by(_a.created_at.desc(), _a.id)
        )
        return list(self.s.execute(q).mappings().all())

    def for_sign_in(self, user_id: str) -> list[Row]:
        """Live ones in the order a sign-in tries them: the one used last first (a mail client
        logs in again and again with the same one), so the usual case costs one argon2 verify."""
        q = (
            sa.select(_a.id, _a.secret_hash)
            .where(_a.user_id == user_id, _a.revoked_at.is_(None))
            .order_by(_a.last_used_at.desc().nulls_last(), _a.created_at.desc())
        )
        return list(self.s.execute(q).mappings().all())

    def count_live(self, user_id: str) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(t.app_passwords)
            .where(_a.user_id == user_id, _a.revoked_at.is_(None))
        )
        return int(self.s.execute(q).scalar_one())

    def used(self, app_password_id: str, at: float) -> bool:
        """A sign-in with it went through, if it is still live (a revoke that won meanwhile
        refuses the sign-in)."""
        result: Any = self.s.execute(
            sa.update(t.app_passwords)
            .where(_a.id == app_password_id, _a.revoked_at.is_(None))
            .values(last_used_at=at)
        )
        return bool(result.rowcount)

    def revoke(
        self, user_id: str, app_password_id: str | None, at: float, reason: str
    ) -> list[Row]:
        """Revoke one live app password of the user (or all of them, id None): the revoked
        rows (none when there was no such live one)."""
        where = [_a.user_id == user_id, _a.revoked_at.is_(None)]
        if app_password_id is not None:
            where.append(_a.id == app_password_id)
        rows = list(
            self.s.execute(sa.select(_a.id, _a.name).where(*where).order_by(_a.created_at))
            .mappings()
            .all()
        )
        if rows:
            self.s.execute(
                sa.update(t.app_passwords)
                .where(*where, _a.id.in_([r["id"] for r in rows]))
                .values(revoked_at=at, revoked_reason=reason[:64])
            )
        return rows
