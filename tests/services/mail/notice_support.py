"""Publishing real event envelopes on the running mail service's bus, and reading what the
notices left in a mailbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message

from lgsp import events
from lgsp.api.events.v1.envelope_pb2 import Envelope
from services.mail.adapters.store import MailStore
from tests.services.mail.env import MailEnv


def envelope(payload: Message, source: str, subject: str) -> Envelope:
    return events.make_envelope(payload, source=source, subject=subject)


async def publish(env: MailEnv, env_: Envelope) -> None:
    """One record of `env_` on its area's topic, as the source's outbox relay writes it."""
    assert env.runtime.bus is not None
    headers = {k: v.encode() for k, v in events.envelope_headers(env_).items()}
    topic = events.topic_for_type(env_.type)
    await env.runtime.bus.publish(topic, env_.subject, events.encode(env_), headers)


def seen(env: MailEnv, group: str) -> int:
    """Events the consumer group has finished (handled, duplicate or ignored)."""
    processor = env.runtime.processors.get(group)
    if processor is None:
        return 0
    c = processor.counts
    return c["handled"] + c["duplicate"] + c["ignored"] + c["dead-lettered"]


async def settle(env: MailEnv, group: str, n: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while seen(env, group) < n:
        assert time.monotonic() < deadline, f"{group}: {seen(env, group)} of {n} events"
        await asyncio.sleep(0.05)
    counts = env.runtime.processors[group].counts
    assert counts["dead-lettered"] == 0 and counts["malformed"] == 0, dict(counts)


def inbox(env: MailEnv, address: str) -> list[dict[str, Any]]:
    """The messages in a mailbox's Inbox, oldest first, with their raw bytes."""
    with env.app.uow() as uow:
        store = MailStore(uow.session)
        found, _ = store.list_messages(
            address, "INBOX", unread_only=False, query="", offset=0, limit=1000
        )
        out = []
        for m in reversed(found):
            raw = store.blob(m.blob_sha256) or b""
            out.append(
                dict(
                    subject=m.summary.subject,
                    sender=m.summary.sender.address,
                    document=m.related_document_id,
                    receipt=m.related_receipt_code,
                    raw=raw,
                )
            )
        return out


def outgoing(env: MailEnv) -> list[tuple[str, str, bytes]]:
    """(mail from, rcpt to, raw) of the queue for the relay."""
    with env.runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select o.mail_from, o.rcpt_to, b.raw from outgoing o "
                "join message_blobs b on b.sha256 = o.blob_sha256 order by o.create_time"
            )
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]
