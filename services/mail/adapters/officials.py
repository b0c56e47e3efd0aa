"""Identity's officials as the mail service follows them (the `mail_users` rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import mail_users


class OfficialRows:
    session: Session

    def put_user(
        self,
        user_id: str,
        username: str,
        display_name: str,
        agency_code: str,
        active: bool,
        roles: list[list[str]],
        now: datetime,
    ) -> None:
        values = dict(
            username=username,
            display_name=display_name,
            agency_code=agency_code,
            active=active,
            roles=roles,
            update_time=now,
        )
        done = self.session.execute(
            sa.update(mail_users).where(mail_users.c.user_id == user_id).values(**values)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            self.session.execute(sa.insert(mail_users).values(user_id=user_id, **values))

    def set_user_active(self, user_id: str, active: bool, now: datetime) -> None:
        self.session.execute(
            sa.update(mail_users)
            .where(mail_users.c.user_id == user_id)
            .values(active=active, update_time=now)
        )

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self.session.execute(sa.select(mail_users).where(mail_users.c.user_id == user_id))
        found = row.first()
        return found._asdict() if found else None

    def user_by_username(self, username: str) -> dict[str, Any] | None:
        row = self.session.execute(sa.select(mail_users).where(mail_users.c.username == username))
        found = row.first()
        return found._asdict() if found else None
