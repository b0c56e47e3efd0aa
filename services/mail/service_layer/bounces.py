"""Bounces: a recipient that will never get a message. The sender hears of it twice, in the
same unit of work as whatever decided it (the delivery, or the relay's row): the event
MailBounced, and a delivery status notification (domain/dsn.py, RFC 3464) from
MAILER-DAEMON — into the sender's Inbox when the sender is local, else queued for the relay
with the null reverse-path. A message sent with the null reverse-path (itself a DSN) is
never bounced (RFC 5321 §4.5.5), so two servers can never bounce mail back and forth.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime

from lgsp.api.mail.v1 import events_pb2
from lgsp.db import UnitOfWork
from services.mail.adapters.proto import mail_delivered
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import split
from services.mail.domain.dsn import Failure, delivery_status_notification
from services.mail.domain.mailbox import INBOX
from services.mail.domain.message import Stored, parse_summary
from services.mail.service_layer.base import AppBase

log = logging.getLogger("services.mail.bounces")


class Bounces(AppBase):
    def bounce(
        self,
        uow: UnitOfWork,
        store: MailStore,
        raw: bytes,
        mail_from: str,
        failure: Failure,
        *,
        ref: str,
        arrival: datetime,
    ) -> None:
        """Record `failure` in `uow`: MailBounced, and the DSN to `mail_from` (none for <>)."""
        message_id = parse_summary(raw).message_id
        uow.emit(
            events_pb2.MailBounced(
                id=ref,
                message_id=message_id,
                mailbox_address=mail_from,
                recipient=failure.recipient,
                smtp_code=failure.smtp_code,
                reason=failure.reason[:1000],
            ),
            subject=mail_from or failure.recipient,
        )
        if not mail_from or mail_from == "<>":
            log.info("bounce of a bounce to %s dropped (null sender)", failure.recipient)
            return
        local = self.is_local(mail_from)
        domain = split(mail_from)[1] if local else self.rules.default_domain
        now = self.clock()
        dsn = delivery_status_notification(
            raw,
            failure,
            to=mail_from,
            reporting_mta=self.rules.hostname,
            domain=domain,
            arrival=arrival,
            now=now,
        )
        sha = hashlib.sha256(dsn).hexdigest()
        if not local:
            store.put_blob(sha, dsn)
            store.queue_outgoing("", sha, "", mail_from, now)
            return
        mb = store.mailbox(mail_from)
        if mb is None or mb.purged:
            log.info("DSN to %s dropped: no such mailbox", mail_from)
            return
        store.put_blob(sha, dsn)
        # No quota check: a full mailbox must still learn that its mail did not arrive.
        m = Stored(
            id=str(uuid.uuid4()),
            mailbox_address=mb.address,
            folder_id=INBOX,
            uid=store.take_uid(mb.address, INBOX),
            summary=parse_summary(dsn),
            internal_date=now,
            size=len(dsn),
            blob_sha256=sha,
        )
        store.add_message(m)
        store.add_used(mb.address, len(dsn))
        uow.emit(mail_delivered(m), subject=mb.address)
