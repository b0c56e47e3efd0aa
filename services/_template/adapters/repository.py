"""Notices in the database, inside a unit of work's session."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services._template.adapters.tables import notices
from services._template.domain.model import Notice


class NoticeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, notice: Notice) -> None:
        self.session.execute(sa.insert(notices).values(**dataclasses.asdict(notice)))

    def get(self, notice_id: str) -> Notice | None:
        row = self.session.execute(sa.select(notices).where(notices.c.id == notice_id)).first()
        if row is None:
            return None
        values = row._asdict()
        # SQLite hands back naive datetimes; every time stored here is UTC.
        values["posted_time"] = values["posted_time"].replace(tzinfo=UTC)
        return Notice(**values)

    def count(self) -> int:
        return int(
            self.session.execute(sa.select(sa.func.count()).select_from(notices)).scalar_one()
        )
