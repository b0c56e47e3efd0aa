"""The notices' rows: agency mailboxes' clerks, directive tasks and incoming documents
followed from events, notices held for a daily digest and the digests sent per day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import (
    digest_items,
    digests_sent,
    mail_users,
    mailboxes,
    notice_documents,
    notice_tasks,
)
from services.mail.domain.mailbox import Kind

CLERK = "ROLE_CLERK"


class NoticeRows:
    session: Session

    # --- clerks (văn thư) -----------------------------------------------------------------

    def clerks_of(self, agency_code: str) -> list[str]:
        """Active officials holding the clerk role in `agency_code` (roles matched as text,
        then exactly)."""
        rows = self.session.execute(
            sa.select(mail_users.c.user_id, mail_users.c.roles).where(
                mail_users.c.active.is_(True),
                sa.cast(mail_users.c.roles, sa.String).contains(agency_code, autoescape=True),
            )
        )
        return sorted(r[0] for r in rows if [CLERK, agency_code] in (r[1] or []))

    def set_user_roles(self, user_id: str, roles: list[list[str]], now: datetime) -> None:
        self.session.execute(
            sa.update(mail_users)
            .where(mail_users.c.user_id == user_id)
            .values(roles=roles, update_time=now)
        )

    def agency_mailboxes(self, agency_codes: set[str] | None = None) -> list[tuple[str, str]]:
        """(address, agency code) of the live AGENCY mailboxes (of these agencies)."""
        q = sa.select(mailboxes.c.address, mailboxes.c.agency_code).where(
            mailboxes.c.kind == int(Kind.AGENCY), mailboxes.c.purged.is_(False)
        )
        if agency_codes is not None:
            q = q.where(mailboxes.c.agency_code.in_(sorted(agency_codes)))
        return [(r[0], r[1]) for r in self.session.execute(q)]

    def clerk_mailboxes(self, user_id: str) -> list[str]:
        """Addresses of the mailboxes that list `user_id` among their clerks."""
        rows = self.session.execute(
            sa.select(mailboxes.c.address, mailboxes.c.clerk_user_ids).where(
                sa.cast(mailboxes.c.clerk_user_ids, sa.String).contains(user_id, autoescape=True)
            )
        )
        return [r[0] for r in rows if user_id in (r[1] or [])]

    def set_clerks(self, address: str, user_ids: list[str]) -> None:
        """Without a new version: a role change must not make an administrator's etag stale."""
        self.session.execute(
            sa.update(mailboxes)
            .where(mailboxes.c.address == address)
            .values(clerk_user_ids=sorted(set(user_ids)))
        )

    def clerk_ids(self, address: str) -> list[str]:
        found = self.session.execute(
            sa.select(mailboxes.c.clerk_user_ids).where(mailboxes.c.address == address)
        ).scalar_one_or_none()
        return list(found or [])

    # --- directive tasks ------------------------------------------------------------------

    def put_task(self, task: dict[str, Any]) -> None:
        """A task as DirectiveTaskAssigned tells it (a redelivered or repeated one updates)."""
        keys = ("document_id", "description", "assignee_agency_code", "assignee_user_id")
        values = {k: task[k] for k in (*keys, "due_date", "open")}
        done = self.session.execute(
            sa.update(notice_tasks).where(notice_tasks.c.task_id == task["task_id"]).values(values)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            self.session.execute(
                sa.insert(notice_tasks).values(
                    task_id=task["task_id"], nearing_sent=False, overdue_sent=False, **values
                )
            )

    def set_task_open(self, task_id: str, is_open: bool) -> None:
        self.session.execute(
            sa.update(notice_tasks).where(notice_tasks.c.task_id == task_id).values(open=is_open)
        )

    def due_tasks(self, until: str) -> list[dict[str, Any]]:
        """Open tasks with a deadline on or before `until` (ISO dates compare as text) and a
        notice still to send."""
        rows = self.session.execute(
            sa.select(notice_tasks)
            .where(
                notice_tasks.c.open.is_(True),
                notice_tasks.c.due_date != "",
                notice_tasks.c.due_date <= until,
                notice_tasks.c.overdue_sent.is_(False),
            )
            .order_by(notice_tasks.c.due_date, notice_tasks.c.task_id)
        )
        return [r._asdict() for r in rows]

    def mark_task(self, task_id: str, *, nearing: bool, overdue: bool) -> None:
        self.session.execute(
            sa.update(notice_tasks)
            .where(notice_tasks.c.task_id == task_id)
            .values(nearing_sent=nearing, overdue_sent=overdue)
        )

    def task(self, task_id: str) -> dict[str, Any] | None:
        row = self.session.execute(
            sa.select(notice_tasks).where(notice_tasks.c.task_id == task_id)
        ).first()
        return row._asdict() if row else None

    # --- documents ------------------------------------------------------------------------

    def put_document(self, doc: dict[str, Any]) -> None:
        self.session.execute(
            sa.delete(notice_documents).where(notice_documents.c.document_id == doc["document_id"])
        )
        self.session.execute(sa.insert(notice_documents).values(**doc))

    def document(self, document_id: str) -> dict[str, Any] | None:
        row = self.session.execute(
            sa.select(notice_documents).where(notice_documents.c.document_id == document_id)
        ).first()
        return row._asdict() if row else None

    # --- the daily digest -----------------------------------------------------------------

    def hold(
        self, address: str, subject: str, body: str, related: tuple[str, str], now: datetime
    ) -> None:
        self.session.execute(
            sa.insert(digest_items).values(
                mailbox_address=address,
                subject=subject,
                body=body,
                related_document_id=related[0],
                related_receipt_code=related[1],
                create_time=now,
            )
        )

    def held_addresses(self) -> list[str]:
        rows = self.session.execute(sa.select(digest_items.c.mailbox_address).distinct())
        return sorted(r[0] for r in rows)

    def held(self, address: str) -> list[dict[str, Any]]:
        rows = self.session.execute(
            sa.select(digest_items)
            .where(digest_items.c.mailbox_address == address)
            .order_by(digest_items.c.id)
        )
        return [r._asdict() for r in rows]

    def drop_held(self, ids: list[int]) -> None:
        self.session.execute(sa.delete(digest_items).where(digest_items.c.id.in_(ids)))

    def digest_sent(self, address: str, day: str) -> bool:
        row = self.session.execute(
            sa.select(digests_sent.c.notice_count).where(
                digests_sent.c.mailbox_address == address, digests_sent.c.day == day
            )
        ).first()
        return row is not None

    def mark_digest(self, address: str, day: str, items: int) -> None:
        self.session.execute(
            sa.insert(digests_sent).values(mailbox_address=address, day=day, notice_count=items)
        )
