"""The queue of mail for recipients outside the province (sent on by service_layer/relay.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import outgoing


@dataclass(frozen=True)
class QueuedDomain:
    """The queue's messages for one recipient domain."""

    domain: str
    count: int
    oldest: datetime
    max_attempts: int


class OutgoingRows:
    session: Session

    def queue_outgoing(
        self, message_ref: str, sha256: str, mail_from: str, rcpt: str, now: datetime
    ) -> None:
        self.session.execute(
            sa.insert(outgoing).values(
                id=str(uuid.uuid4()),
                message_ref=message_ref,
                blob_sha256=sha256,
                mail_from=mail_from,
                rcpt_to=rcpt,
                attempts=0,
                create_time=now,
                next_attempt_time=now,
            )
        )

    def outgoing_count(self) -> int:
        return int(
            self.session.execute(sa.select(sa.func.count()).select_from(outgoing)).scalar_one()
        )

    def outgoing_by_domain(self) -> list[QueuedDomain]:
        """The queue per recipient domain, most waiting first (`lgsp mail queue`)."""
        rows = self.session.execute(
            sa.select(
                outgoing.c.rcpt_to,
                sa.func.count(),
                sa.func.min(outgoing.c.create_time),
                sa.func.max(outgoing.c.attempts),
            ).group_by(outgoing.c.rcpt_to)
        )
        found: dict[str, QueuedDomain] = {}
        for rcpt, count, oldest, attempts in rows:
            domain = str(rcpt).rpartition("@")[2].lower()
            had = found.get(domain)
            if had is not None:
                count, oldest = had.count + count, min(had.oldest, oldest)
                attempts = max(had.max_attempts, attempts)
            found[domain] = QueuedDomain(domain, int(count), oldest, int(attempts or 0))
        return sorted(found.values(), key=lambda d: (-d.count, d.domain))
