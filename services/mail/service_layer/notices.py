"""Notices: the platform's own mail to officials and citizens, from the system mailbox.

`notify` stores one notice inside the caller's unit of work: the event processor's (so the
notice and the processed-event id commit together, and a redelivered event finds the id and
sends nothing), a delivery's (vanthu.py) or a periodic job's (reminders.py, whose marks commit
with the notices). The sender is a SYSTEM mailbox, `[mail] notice_address` (default
thongbao@<default_domain>), made on first need. Where a notice goes:

    a local mailbox that receives          its Inbox; held for the digest if its owner chose it
    a local mailbox disabled / full / none skipped, logged (nobody reads it)
    an address outside the province       the `outgoing` queue (the relay sends it on)

Every notice carries `Auto-Submitted: auto-generated` (RFC 3834 §5) so that vacation
responders and other automatic replies leave it alone.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime

from lgsp.db import UnitOfWork
from lgsp.workdays import PROVINCE_TZ, WorkingCalendar
from services.mail.adapters.proto import mail_delivered, mailbox_created
from services.mail.adapters.store import MailStore
from services.mail.domain import notice_templates as texts
from services.mail.domain.mailbox import INBOX, Kind, Mailbox, standard_folders
from services.mail.domain.message import Address, Outgoing, Stored, compose, parse_summary
from services.mail.domain.notice_templates import Notice
from services.mail.service_layer.base import AppBase

log = logging.getLogger("services.mail.notices")
AUTO = b"Auto-Submitted: auto-generated\r\n"
Related = tuple[str, str]  # (related_document_id, related_receipt_code)


class Notices(AppBase):
    _calendar: WorkingCalendar | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        if self._calendar is None:
            self._calendar = WorkingCalendar()
        return self._calendar

    @calendar.setter
    def calendar(self, value: WorkingCalendar) -> None:
        self._calendar = value

    @property
    def notice_sender(self) -> str:
        return self.rules.notice_address or f"thongbao@{self.rules.default_domain}"

    def system_mailbox(self, uow: UnitOfWork) -> Mailbox:
        """The notices' sender, made on first need (an administrator may rename it later)."""
        store = MailStore(uow.session)
        mb = store.mailbox(self.notice_sender)
        if mb is not None:
            return mb
        mb = Mailbox(
            address=self.notice_sender,
            display_name=self.rules.notice_sender_name,
            kind=Kind.SYSTEM,
            agency_code=self._province_code(),
            quota_bytes=0,  # keeps no copies: nothing counts against it
            create_time=self.clock(),
        )
        store.add_mailbox(mb)
        for folder in standard_folders(mb.address):
            store.add_folder(folder)
        uow.emit(mailbox_created(mb, ""), subject=mb.address)
        log.info("created the notices' sender mailbox %s", mb.address)
        return mb

    def _province_code(self) -> str:
        """The root agency whose mail domain is the default one (the province)."""
        for code in self.agencies.codes():
            agency = self.agencies.get(code)
            if agency and not agency.parent_code:
                if agency.mail_domain.lower() == self.rules.default_domain:
                    return code
        return ""

    # --- sending one notice ----------------------------------------------------------------

    def notify(
        self,
        uow: UnitOfWork,
        recipient: Address,
        notice: Notice,
        *,
        related: Related = ("", ""),
        kind: str = "notice",
        digest: bool = True,
    ) -> str:
        """Store one notice for `recipient` in `uow`: "delivered", "held" (digest),
        "queued" (outside the province) or "skipped"."""
        store = MailStore(uow.session)
        address = recipient.address.lower()  # as the service stores and sends every address
        now = self.clock()
        if not self.is_local(address):
            raw = self._compose(uow, recipient, notice, now)
            sha = hashlib.sha256(raw).hexdigest()
            store.put_blob(sha, raw)
            store.queue_outgoing("", sha, self.notice_sender, address, now)
            log.info("notice %s for %s queued for the relay", kind, address)
            return "queued"
        mb = store.mailbox(address)
        if mb is None or not mb.receives():
            log.info("notice %s for %s skipped: no mailbox that receives", kind, address)
            return "skipped"
        if digest and mb.daily_digest:
            store.hold(address, notice.subject, notice.body, related, now)
            log.info("notice %s for %s held for the daily digest", kind, address)
            return "held"
        raw = self._compose(uow, recipient, notice, now)
        sha = hashlib.sha256(raw).hexdigest()
        if not mb.has_room_for(len(raw)):
            log.warning("notice %s for %s skipped: the mailbox is full", kind, address)
            return "skipped"
        store.put_blob(sha, raw)
        m = Stored(
            id=str(uuid.uuid4()),
            mailbox_address=address,
            folder_id=INBOX,
            uid=store.take_uid(address, INBOX),
            summary=parse_summary(raw),
            internal_date=now,
            size=len(raw),
            blob_sha256=sha,
            related_document_id=related[0],
            related_receipt_code=related[1],
        )
        store.add_message(m)
        store.add_used(address, len(raw))
        uow.emit(mail_delivered(m), subject=address)
        log.info("notice %s delivered to %s", kind, address)
        return "delivered"

    def _compose(self, uow: UnitOfWork, to: Address, notice: Notice, now: datetime) -> bytes:
        sender = self.system_mailbox(uow)
        raw, _, _ = compose(
            Outgoing(
                Address(sender.address, texts.one_line(sender.display_name)),
                [Address(to.address, texts.one_line(to.display_name))],
                subject=notice.subject,
                text_body=notice.body,
            ),
            domain=sender.address.rpartition("@")[2],
            max_bytes=self.rules.max_message_bytes,
            now=now,
        )
        return AUTO + raw

    def notify_user(
        self, uow: UnitOfWork, user_id: str, notice: Notice, related: Related, kind: str
    ) -> str:
        """A notice to an official's personal mailbox (none yet → skipped)."""
        mb = MailStore(uow.session).mailbox_of(user_id)
        if mb is None:
            log.debug("notice %s for user %s skipped: no personal mailbox", kind, user_id)
            return "skipped"
        return self.notify(
            uow, Address(mb.address, mb.display_name), notice, related=related, kind=kind
        )

    # --- the daily digest ------------------------------------------------------------------

    def send_digests(self) -> int:
        """At or after `[mail] digest_hour` (province time), one message per mailbox with
        notices held, once per province day (the mark commits with the message, so a
        restart never sends a second one). The number of digests sent."""
        local = self.clock().astimezone(PROVINCE_TZ)
        if local.hour < self.rules.digest_hour:
            return 0
        today = local.date()
        with self.uow() as uow:
            waiting = MailStore(uow.session).held_addresses()
        sent = 0
        for address in waiting:
            with self.uow() as uow:
                store = MailStore(uow.session)
                items = store.held(address)
                if not items or store.digest_sent(address, today.isoformat()):
                    continue
                mb = store.mailbox(address)
                pairs = [(i["subject"], i["body"]) for i in items]
                notice = texts.digest(on=today, items=pairs, sender=self.rules.notice_sender_name)
                if mb is not None:
                    to = Address(mb.address, mb.display_name)
                    self.notify(uow, to, notice, kind="digest", digest=False)
                store.drop_held([i["id"] for i in items])
                store.mark_digest(address, today.isoformat(), len(items))
                uow.commit()
            sent += 1
            self.after_commit()
        if sent:
            log.info("sent %d daily digests for %s", sent, today.isoformat())
        return sent
