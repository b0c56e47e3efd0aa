"""The notices use cases. Each write is one unit of work: the row and its event commit
together through the outbox (lgsp.db.UnitOfWork), or neither does."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from lgsp.db import UnitOfWork
from services._template.adapters.proto import notice_posted
from services._template.adapters.repository import NoticeRepository
from services._template.domain.model import Notice, post_notice

SOURCE = "template"  # the events' source: this service's name


class Notices:
    """Post and count notices. `after_commit` is told when events wait in the outbox (the
    runtime's relay then publishes at once instead of at its next poll)."""

    def __init__(self, engine: Engine, *, after_commit: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.after_commit = after_commit

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, source=SOURCE)

    def post(self, agency_code: str, title: str, *, author_id: str) -> Notice:
        """Store a new notice and emit NoticePosted (lgsp.template.v1); InvalidField if the
        rules refuse it, and then nothing is stored."""
        notice = post_notice(agency_code, title, author_id=author_id)
        with self.uow() as uow:
            NoticeRepository(uow.session).add(notice)
            uow.emit(notice_posted(notice), subject=notice.id)
            uow.commit()
        self.after_commit()
        return notice

    def count(self) -> int:
        with self.uow() as uow:
            return NoticeRepository(uow.session).count()
