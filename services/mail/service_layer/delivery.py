"""Delivery: a message's raw bytes into the store for every local recipient, a copy in the
sender's Sent folder, a place in the outgoing queue for every recipient outside. One unit of
work per message: when `deliver` returns, the message is durably stored (the SMTP server
answers 250 only then) with its MailDelivered / MailSent / MailBounced events in the outbox.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lgsp.auth import Principal
from services.mail.adapters.proto import mail_delivered, mail_sent
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import normalize_address
from services.mail.domain.authresults import Authentication
from services.mail.domain.dsn import Failure
from services.mail.domain.errors import (
    Conflict,
    InvalidField,
    NotFound,
    QuotaExceeded,
    TooLarge,
)
from services.mail.domain.mailbox import INBOX, SENT, Mailbox
from services.mail.domain.message import (
    Address,
    Outgoing,
    Stored,
    Summary,
    compose,
    parse_summary,
)
from services.mail.domain.smime import Signer
from services.mail.service_layer.bounces import Bounces

FULL = "mailbox full"
NO_MAILBOX = "no such mailbox"


@dataclass
class Delivered:
    """What one delivery did."""

    sent_copy: Stored | None = None
    delivered: list[str] = field(default_factory=list)  # local mailboxes it landed in
    queued: list[str] = field(default_factory=list)  # outside recipients, for the relay
    bounced: list[tuple[str, int, str]] = field(default_factory=list)  # rcpt, code, reason


class Delivery(Bounces):
    def check_recipient(self, address: str) -> Mailbox | None:
        """RCPT TO: the local mailbox that will take a message (None for an address outside
        the province); NotFound (550), Conflict (disabled, 550) or QuotaExceeded (452)."""
        address = normalize_address(address, "recipient")
        if not self.is_local(address):
            return None
        with self.reading() as store:
            mb = store.mailbox(address)
        if mb is None or mb.purged:
            raise NotFound(f"no mailbox {address}")
        if not mb.receives():
            raise Conflict(f"mailbox {address} is disabled")
        if not mb.has_room_for(1):
            raise QuotaExceeded(f"mailbox {address} is full")
        return mb

    def sender_addresses(self, user_id: str) -> set[str]:
        """The addresses `user_id` may send as: the mailboxes they may open."""
        with self.reading() as store:
            own = store.mailbox_of(user_id)
            found = {own.address} if own is not None and own.receives() else set()
            found |= {m.address for m in store.delegated_to(user_id) if m.receives()}
        return found

    def deliver(
        self,
        raw: bytes,
        mail_from: str,
        recipients: Sequence[str],
        *,
        actor_id: str = "",
        sent_from: Mailbox | None = None,
        bcc: Sequence[Address] = (),
        request_id: str | None = None,
        related: tuple[str, str] = ("", ""),
        strict: bool = False,
        partial: bool = False,
        authentication: Authentication | None = None,
        summary: Summary | None = None,
    ) -> Delivered:
        """Store `raw` for each recipient (local ones in their Inbox, outside ones queued),
        and a copy in `sent_from`'s Sent folder; all or nothing. A local recipient that
        cannot take it (full, disabled or purged since RCPT) bounces (MailBounced and a DSN
        to the sender, service_layer/bounces.py); with `strict` it refuses the whole message
        instead (QuotaExceeded / Conflict: SMTP then answers 552/550), with `partial` only
        when no recipient at all can take it. `authentication` (inbound mail's SPF/DKIM) is
        recorded on the recipients' copies. `summary`: parse_summary of `raw`, when the
        caller has it."""
        if len(raw) > self.rules.max_message_bytes:
            raise TooLarge(
                f"the message is {len(raw)} bytes; at most {self.rules.max_message_bytes}"
            )
        summary = summary or parse_summary(raw)  # the SMTP server has parsed it already
        sha = hashlib.sha256(raw).hexdigest()
        now = self.clock()
        out = Delivered()
        bounced: list[tuple[str, str]] = []
        rcpts = list(dict.fromkeys(r.lower() for r in recipients))
        with self._one_writer, self.uow() as uow:
            store = MailStore(uow.session)
            store.put_blob(sha, raw)
            if sent_from is not None:
                copy = self._store(store, sent_from.address, SENT, summary, raw, sha, now, True)
                copy.bcc, copy.request_id = tuple(bcc), request_id
                copy.related_document_id, copy.related_receipt_code = related
                store.add_message(copy)
                store.add_used(sent_from.address, len(raw))
                uow.emit(mail_sent(copy, rcpts, actor_id), subject=copy.mailbox_address)
                out.sent_copy = copy
            ref = out.sent_copy.id if out.sent_copy else ""
            for rcpt in rcpts:
                if not self.is_local(rcpt):
                    store.queue_outgoing(ref, sha, mail_from, rcpt, now)
                    out.queued.append(rcpt)
                    continue
                mb = store.mailbox(rcpt)
                reason = self._refusal(mb, len(raw))
                if reason and strict:
                    error = QuotaExceeded if reason == FULL else Conflict
                    raise error(f"{rcpt}: {reason}")
                if reason:
                    # Checked at RCPT already; this is a change in between (a quota filled,
                    # an account disabled or purged): the sender gets a DSN.
                    bounced.append((rcpt, reason))
                    continue
                m = self._store(store, rcpt, INBOX, summary, raw, sha, now, False)
                m.related_document_id, m.related_receipt_code = related
                m.authentication = authentication
                store.add_message(m)
                store.add_used(rcpt, len(raw))
                uow.emit(mail_delivered(m), subject=rcpt)
                self.on_local_delivery(uow, mb, summary)  # type: ignore[arg-type]
                out.delivered.append(rcpt)
            if partial and bounced and not (out.delivered or out.queued):
                error = QuotaExceeded if bounced[0][1] == FULL else Conflict
                raise error(f"{bounced[0][0]}: {bounced[0][1]}")  # nothing was accepted
            for rcpt, reason in bounced:
                status = {FULL: "5.2.2", NO_MAILBOX: "5.1.1"}.get(reason, "5.2.1")
                failure = Failure(rcpt, 550, f"{status} {reason}")
                self.bounce(uow, store, raw, mail_from, failure, ref=ref, arrival=now)
                out.bounced.append((rcpt, 550, reason))
            uow.commit()
        self.after_commit()
        self.changes.notify([*out.delivered, *([sent_from.address] if sent_from else [])])
        return out

    @staticmethod
    def _refusal(mb: Mailbox | None, size: int) -> str:
        if mb is None or mb.purged:
            return NO_MAILBOX
        if not mb.receives():
            return "mailbox disabled"
        if not mb.has_room_for(size):
            return FULL
        return ""

    @staticmethod
    def _store(
        store: MailStore,
        address: str,
        folder_id: str,
        summary: Summary,
        raw: bytes,
        sha: str,
        now: datetime,
        seen: bool,
    ) -> Stored:
        return Stored(
            id=str(uuid.uuid4()),
            mailbox_address=address,
            folder_id=folder_id,
            uid=store.take_uid(address, folder_id),
            summary=summary,
            internal_date=now,
            size=len(raw),
            blob_sha256=sha,
            seen=seen,
        )

    # --- the API's SendMessage -------------------------------------------------------------

    def send_message(
        self,
        principal: Principal,
        mailbox_address: str,
        out: Outgoing,
        *,
        request_id: str = "",
        related: tuple[str, str] = ("", ""),
        sign: bool = False,
    ) -> Stored:
        """Compose and deliver a message from the caller's mailbox; a retry with the same
        request_id returns the first send's copy and sends nothing. With `sign`, S/MIME
        signed with the caller's own certificate (docs/mail.md, "S/MIME")."""
        if request_id:
            try:
                uuid.UUID(request_id)
            except ValueError:
                raise InvalidField("request_id", "a UUID") from None
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = self._open(store, principal, mailbox_address)
            if request_id:
                earlier = store.by_request(mb.address, request_id)
                if earlier is not None:
                    return earlier
            signer = self._signer(store, principal) if sign else None
        if not mb.receives():
            raise Conflict(f"mailbox {mb.address} is disabled")
        n = len(out.to) + len(out.cc) + len(out.bcc)
        if n > self.rules.max_recipients:
            raise InvalidField("to", f"at most {self.rules.max_recipients} recipients ({n} given)")
        sender = Address(mb.address, mb.display_name)
        raw, _, rcpts = compose(
            Outgoing(
                sender,
                out.to,
                out.cc,
                out.bcc,
                out.subject,
                out.text_body,
                out.html_body,
                out.attachments,
                out.in_reply_to,
                # Sending for an agency mailbox, signed: the official is the Sender, the
                # address their certificate names (RFC 8550 §3 matches From or Sender).
                sender_agent=(
                    Address(signer.email, signer.full_name)
                    if signer is not None and signer.email != mb.address
                    else None
                ),
            ),
            domain=mb.address.rpartition("@")[2],
            max_bytes=self.rules.max_message_bytes,
            now=self.clock(),
            sign=self._sign_with(signer),
        )
        if not mb.has_room_for(len(raw)):
            raise QuotaExceeded(f"mailbox {mb.address} is full")
        for rcpt in rcpts:
            try:
                self.check_recipient(rcpt)  # an unknown local address: nothing is sent
            except (NotFound, Conflict) as e:
                raise InvalidField("to", e.message) from None
        done = self.deliver(
            raw,
            mb.address,
            rcpts,
            actor_id=principal.subject,
            sent_from=mb,
            bcc=[a for a in out.bcc],
            request_id=request_id or None,
            related=related,
        )
        assert done.sent_copy is not None
        return done.sent_copy

    def _signer(self, store: MailStore, principal: Principal) -> Signer:
        """The calling official as their certificate names them."""
        own = store.mailbox_of(principal.subject)
        if own is None or not own.receives():
            raise InvalidField(
                "sign", "only an official with an active mailbox of their own signs mail"
            )
        user = store.user(principal.subject) or {}
        agency_code = str(user.get("agency_code") or own.agency_code)
        agency = self.agencies.get(agency_code)
        return Signer(
            user_id=principal.subject,
            full_name=str(user.get("display_name") or own.display_name),
            agency_code=agency_code,
            agency_name=agency.name if agency is not None else agency_code,
            email=own.address,
        )

    def _sign_with(self, signer: Signer | None) -> Callable[[bytes], bytes] | None:
        if signer is None:
            return None
        smime = self.smime
        if smime is None:
            raise Conflict("S/MIME signing is not configured on this server")
        return lambda data: smime.sign(data, signer)
