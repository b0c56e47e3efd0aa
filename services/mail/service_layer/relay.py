"""The relay: mail queued for recipients outside the province (the `outgoing` table, one
row per recipient) goes to the smarthost. Each pass claims the due rows (adapters/
relay_rows.py), DKIM-signs each message for its sender's domain, hands them to the
smarthost, then settles every row in its own unit of work:

    250                         sent: the row is deleted
    4xx, no answer, no link     tried again after [mail] retry_schedule_s (60 s, 5 min, …);
                                queued longer than bounce_after_s (5 days) → bounced
    5xx                         bounced: MailBounced + a DSN to the sender (bounces.py),
                                with the row's deletion, once

At-least-once: a worker that dies between the smarthost's 250 and the settling commit
leaves its rows claimed; when the lease runs out ([mail] relay_lease_s) another worker (or
the restarted one) sends them again — at most once more per lease. A row is never sent by
two workers at once: the claim is exclusive and every settle names its claim.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from lgsp.db import fault_point
from services.mail.adapters.relay_rows import QueuedRow
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import split
from services.mail.domain.dsn import Failure
from services.mail.domain.message import parse_summary
from services.mail.domain.outbound import Envelope, Next, Outcome, RetryPolicy
from services.mail.service_layer.mail import MailApp

log = logging.getLogger("services.mail.relay")
BARE_LF = re.compile(rb"(?<!\r)\n")


class Transport(Protocol):
    def send(self, envelopes: Sequence[Envelope], deadline: float) -> list[Outcome]:
        """One Outcome per envelope; none is begun after `deadline` (time.monotonic())."""
        ...


class Signer(Protocol):
    def sign(self, raw: bytes, domain: str) -> bytes: ...


@dataclass(frozen=True)
class RelayPolicy(RetryPolicy):
    lease_s: float = 300
    interval_s: float = 5.0
    batch: int = 50


class Relay:
    def __init__(
        self,
        app: MailApp,
        transport: Transport,
        signer: Signer | None,
        policy: RelayPolicy,
        *,
        worker: str = "",
    ) -> None:
        self.app = app
        self.transport = transport
        self.signer = signer
        self.policy = policy
        self.worker = worker or uuid.uuid4().hex[:12]

    def run_once(self) -> int:
        """One pass (blocking: run it in a thread); how many rows it took (0: none due)."""
        token = f"{self.worker}:{uuid.uuid4().hex[:12]}"
        now = self.app.clock()
        with self.app.uow() as uow:
            store = MailStore(uow.session)
            rows = store.claim_due(
                token, now, now + timedelta(seconds=self.policy.lease_s), self.policy.batch
            )
            blobs = {r.blob_sha256: store.blob(r.blob_sha256) for r in rows}
            uow.commit()
        if not rows:
            return 0
        signed: dict[str, bytes] = {}
        envelopes = []
        for r in rows:
            raw = blobs.get(r.blob_sha256) or b""
            if r.blob_sha256 not in signed:
                signed[r.blob_sha256] = self._signed(raw, r.mail_from)
            envelopes.append(Envelope(r.mail_from, r.rcpt_to, signed[r.blob_sha256]))
        # Stop starting messages well before the lease ends, so that no other worker can
        # take a row over while this one is still sending it.
        outcomes = self.transport.send(envelopes, time.monotonic() + 0.8 * self.policy.lease_s)
        fault_point("mail.relay.after_send")  # a crash here: sent, not yet settled
        for row, outcome in zip(rows, outcomes, strict=True):
            self._settle(row, token, outcome, blobs.get(row.blob_sha256) or b"")
        return len(rows)

    def _signed(self, raw: bytes, mail_from: str) -> bytes:
        """With CRLF line ends (RFC 5322 §2.3; mail clients may submit bare LF), DKIM-signed
        for the From header's domain when it is ours (else the envelope sender's); a
        message of no local domain goes unsigned."""
        raw = BARE_LF.sub(b"\r\n", raw)
        if self.signer is None or not raw:
            return raw
        sender = parse_summary(raw).sender.address or mail_from
        domain = split(sender)[1] if "@" in sender else ""
        if not domain or not self.app.is_local(sender):
            return raw
        try:
            return self.signer.sign(raw, domain)
        except Exception:  # an unsignable message still goes, unsigned, with a warning
            log.warning("DKIM signing for %s failed; sent unsigned", domain, exc_info=True)
            return raw

    def _settle(self, row: QueuedRow, token: str, outcome: Outcome, raw: bytes) -> None:
        now = self.app.clock()
        step = self.policy.decide(outcome, (now - row.create_time).total_seconds())
        with self.app.uow() as uow:
            store = MailStore(uow.session)
            if step in (Next.RETRY, Next.AGAIN):
                again = step is Next.RETRY
                wait = self.policy.wait_s(row.attempts) if again else 0.0
                error = f"{outcome.code} {outcome.text}" if outcome.code > 0 else outcome.text
                if not store.postpone(
                    row.id, token, now + timedelta(seconds=wait), error, attempted=again
                ):
                    return  # the claim was lost (lease over): its new holder decides
            else:
                if not store.end_claim(row.id, token):
                    log.warning("relay lost its claim on %s; left to its new holder", row.id)
                    return
                if step is not Next.SENT:
                    reason = outcome.text or "no answer"
                    if step is Next.GIVE_UP:
                        days = self.policy.bounce_after_s / 86400
                        reason = f"gave up after {days:g} days: {reason}"
                    failure = Failure(row.rcpt_to, outcome.code, reason, outcome.remote)
                    self.app.bounce(
                        uow,
                        store,
                        raw,
                        row.mail_from,
                        failure,
                        ref=row.message_ref,
                        arrival=row.create_time,
                    )
                store.drop_blob_if_unused(row.blob_sha256)
            uow.commit()
        self.app.after_commit()
        log.info(
            "relay %s %s → %s (attempt %d): %s %s",
            step.value,
            row.mail_from or "<>",
            row.rcpt_to,
            row.attempts + 1,
            outcome.code,
            outcome.text[:200],
        )
