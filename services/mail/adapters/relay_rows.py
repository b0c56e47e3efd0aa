"""The relay's queries on the outgoing queue: claiming due rows for one worker, and ending
or postponing a claim. Mixed into MailStore (store.py) like outgoing.py.

Claims: a worker marks the rows it takes with its token and a lease in one short
transaction. On PostgreSQL the SELECT is FOR UPDATE SKIP LOCKED, so two workers in two
processes never take the same row; on SQLite the transaction is BEGIN IMMEDIATE (lgsp.db's
for_writing), which serialises claimers. Every later change names the token: a worker whose
lease ran out (it hung, or another took the row over) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import messages, outgoing


@dataclass(frozen=True)
class QueuedRow:
    id: str
    message_ref: str
    blob_sha256: str
    mail_from: str
    rcpt_to: str
    attempts: int
    create_time: datetime


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


class RelayRows:
    session: Session

    def claim_due(
        self, token: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[QueuedRow]:
        """Take up to `limit` rows due now that no live lease holds, for `token`."""
        free = sa.or_(outgoing.c.lease_until.is_(None), outgoing.c.lease_until < now)
        rows = list(
            self.session.execute(
                sa.select(outgoing)
                .where(outgoing.c.next_attempt_time <= now, free)
                .order_by(outgoing.c.next_attempt_time)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return []
        self.session.execute(
            sa.update(outgoing)
            .where(outgoing.c.id.in_([r.id for r in rows]))
            .values(claim_token=token, lease_until=lease_until)
        )
        return [
            QueuedRow(
                r.id,
                r.message_ref,
                r.blob_sha256,
                r.mail_from,
                r.rcpt_to,
                r.attempts,
                _utc(r.create_time),
            )
            for r in rows
        ]

    def end_claim(self, row_id: str, token: str) -> bool:
        """Delete a row this worker still holds (sent, or bounced); False if it lost it."""
        done = self.session.execute(
            sa.delete(outgoing).where(outgoing.c.id == row_id, outgoing.c.claim_token == token)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def postpone(
        self, row_id: str, token: str, next_time: datetime, error: str, *, attempted: bool = True
    ) -> bool:
        """A temporary failure: one attempt more (unless not `attempted`), tried again at
        `next_time`; the claim released."""
        done = self.session.execute(
            sa.update(outgoing)
            .where(outgoing.c.id == row_id, outgoing.c.claim_token == token)
            .values(
                attempts=outgoing.c.attempts + int(attempted),
                next_attempt_time=next_time,
                last_error=error[:1000],
                claim_token=None,
                lease_until=None,
            )
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def queue_waiting(self) -> list[tuple[str, int, str]]:
        """(recipient, attempts, last error) of every queued row, for operators and tests."""
        rows = self.session.execute(
            sa.select(outgoing.c.rcpt_to, outgoing.c.attempts, outgoing.c.last_error).order_by(
                outgoing.c.create_time
            )
        )
        return [(r[0], int(r[1]), r[2]) for r in rows]

    def set_authentication(self, message_ids: list[str], spf: str, dkim: str, summary: str) -> None:
        if message_ids:
            self.session.execute(
                sa.update(messages)
                .where(messages.c.id.in_(message_ids))
                .values(auth_spf=spf, auth_dkim=dkim, auth_summary=summary[:1000])
            )
