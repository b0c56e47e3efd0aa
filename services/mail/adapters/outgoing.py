"""The queue of mail for recipients outside the province (sent on by service_layer/relay.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.mail.adapters.tables import outgoing


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
