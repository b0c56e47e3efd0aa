"""Idempotent event consumers: processed-event ids, retries with backoff, dead letters.

`EventProcessor` is the per-record callable for `lgsp.bus.run_consumer`. For each record:

1. Decode the envelope and its payload. A malformed record (bad envelope, a type the schema
   registry does not know, a payload that does not parse) goes to `<topic>.dlq` with its
   reason; the consumer moves on.
2. Skip it if this consumer already processed the event id (the bus delivers at least once).
3. Run the handler and insert the processed id in ONE transaction: the handler gets the
   UnitOfWork, writes through `uow.session` and may `uow.emit()` follow-up events (outbox);
   the processor commits. Effect and dedupe record commit together or not at all.
4. A failing handler is retried with exponential backoff and jitter up to `max_attempts`
   (at once to the DLQ if it raises PermanentError); then the original record goes to
   `<topic>.dlq` with the error, and the consumer moves on.

Types with no handler are recorded as processed ("ignored") and skipped. Only failures that
are not the event's fault make the processor raise, so run_consumer stops without
committing and the record is delivered again later: the database being unreachable, or the
DLQ publish failing past its retry budget.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lgsp import events, telemetry
from lgsp.api.events.v1.envelope_pb2 import Envelope
from lgsp.bus.base import Bus, BusError
from lgsp.bus.base import Message as Record
from lgsp.db import UnitOfWork, fault_point, for_writing, processed_events_table, utcnow
from lgsp.outbox import backoff_delay

__all__ = [
    "DLQ_ATTEMPTS",
    "DLQ_CONSUMER",
    "DLQ_ERROR",
    "DLQ_HEADER_PREFIX",
    "DLQ_ORIGINAL_OFFSET",
    "DLQ_ORIGINAL_PARTITION",
    "DLQ_ORIGINAL_TOPIC",
    "DLQ_REASON",
    "EventProcessor",
    "Handler",
    "PermanentError",
    "ReceivedEvent",
    "dead_letter_headers",
    "ensure_topics",
    "is_processed",
    "record_processed",
]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("lgsp.inbox")

# Headers added to a dead-lettered record (next to its original headers).
DLQ_HEADER_PREFIX = "dlq_"  # every header the dead-lettering adds starts with it
DLQ_REASON = "dlq_reason"  # malformed: bad-envelope | unknown-type | bad-payload; handler-failed
DLQ_ERROR = "dlq_error"  # the exception, "Type: message"
DLQ_ATTEMPTS = "dlq_attempts"
DLQ_CONSUMER = "dlq_consumer"
DLQ_ORIGINAL_TOPIC = "dlq_original_topic"
DLQ_ORIGINAL_PARTITION = "dlq_original_partition"
DLQ_ORIGINAL_OFFSET = "dlq_original_offset"
_DLQ_TRACEBACK = "dlq_traceback"
_MAX_HEADER_TEXT = 4000


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the event goes to the DLQ at once."""


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """What a handler gets: the decoded payload and where it came from."""

    envelope: Envelope
    payload: Message
    record: Record

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def source(self) -> str:
        return self.envelope.source

    @property
    def subject(self) -> str:
        return self.envelope.subject

    @property
    def time(self) -> datetime:
        return self.envelope.time.ToDatetime(tzinfo=UTC)


# A handler is sync (run in a worker thread) or async (run on the loop); either way it must
# not commit: the processor commits its work together with the processed-event record.
Handler = Callable[[ReceivedEvent, UnitOfWork], Awaitable[None] | None]

_Outcome = Literal["handled", "duplicate"]


def is_processed(session: Session | sa.Connection, consumer: str, event_id: str) -> bool:
    t = processed_events_table
    q = sa.select(sa.literal(1)).where(t.c.consumer == consumer, t.c.event_id == event_id)
    return session.execute(q).first() is not None


def record_processed(
    session: Session | sa.Connection,
    consumer: str,
    event_id: str,
    event_type: str,
    outcome: str = "handled",
) -> None:
    """The dedupe record of one event for one consumer, in the caller's transaction."""
    session.execute(
        sa.insert(processed_events_table),
        [
            {
                "consumer": consumer,
                "event_id": event_id,
                "event_type": event_type,
                "outcome": outcome,
                "processed_at": utcnow(),
            }
        ],
    )


def _is_infrastructure_error(e: BaseException) -> bool:
    """The database being unreachable is not the event's fault: do not dead-letter for it."""
    if isinstance(e, sa.exc.TimeoutError):  # connection pool exhausted
        return True
    return isinstance(e, sa.exc.DBAPIError) and (
        e.connection_invalidated or isinstance(e, sa.exc.InterfaceError)
    )


class EventProcessor:
    """Handles records for one consumer (`consumer_name` keys its processed-event ids)."""

    def __init__(
        self,
        engine: Engine,
        handlers: Mapping[str | type[Message], Handler],
        bus: Bus,
        *,
        consumer_name: str,
        source: str | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 10.0,
        dlq_publish_attempts: int = 5,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.engine = engine
        self.bus = bus
        self.consumer_name = consumer_name
        self.source = source or consumer_name
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.dlq_publish_attempts = dlq_publish_attempts
        # Outcomes so far (handled, duplicate, ignored, dead-lettered, malformed), for metrics.
        self.counts: Counter[str] = Counter()
        self.handlers: dict[str, Handler] = {
            k if isinstance(k, str) else events.type_name(k): h for k, h in handlers.items()
        }

    async def __call__(self, record: Record) -> None:
        try:
            envelope = events.decode(record.value)
            payload = events.payload_of(envelope)
        except events.MalformedEvent as e:
            log.warning(
                "malformed record %s[%d]@%d: %s", record.topic, record.partition, record.offset, e
            )
            await self._dead_letter(record, reason=e.reason, error=e, attempts=0)
            self.counts["malformed"] += 1
            return
        event = ReceivedEvent(envelope, payload, record)
        # Prefer the record's headers (the relay's publish span); fall back to the envelope.
        carrier: Mapping[str, str | bytes] = (
            record.headers if "traceparent" in record.headers else envelope.trace_context
        )
        with _tracer.start_as_current_span(
            f"{envelope.type} process",
            context=telemetry.context_from_headers(carrier),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "lgsp",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": self.consumer_name,
                "messaging.message.id": envelope.id,
                "lgsp.event.type": envelope.type,
            },
        ) as span:
            await self._process(event, span)

    async def _process(self, event: ReceivedEvent, span: trace.Span) -> None:
        handler = self.handlers.get(event.type)
        if handler is None:
            await asyncio.to_thread(self._record_ignored, event)
            span.set_attribute("lgsp.event.outcome", "ignored")
            self.counts["ignored"] += 1
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._handle_once(handler, event)
                span.set_attribute("lgsp.event.outcome", outcome)
                self.counts[outcome] += 1
                return
            except Exception as e:
                span.record_exception(e)
                exhausted = attempt >= self.max_attempts
                if exhausted and _is_infrastructure_error(e):
                    # Not the event's fault: stop without committing, it is delivered again.
                    span.set_status(Status(StatusCode.ERROR, "database unavailable"))
                    raise
                if exhausted or isinstance(e, PermanentError):
                    span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {e}"))
                    span.set_attribute("lgsp.event.outcome", "dead-lettered")
                    log.error(
                        "%s %s failed %d time(s), dead-lettering: %r",
                        event.type,
                        event.id,
                        attempt,
                        e,
                    )
                    await self._dead_letter(
                        event.record, reason="handler-failed", error=e, attempts=attempt
                    )
                    self.counts["dead-lettered"] += 1
                    return
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_max)
                log.warning(
                    "%s %s failed (attempt %d/%d), retrying in %.2fs: %r",
                    event.type,
                    event.id,
                    attempt,
                    self.max_attempts,
                    delay,
                    e,
                )
                await asyncio.sleep(delay)

    async def _handle_once(self, handler: Handler, event: ReceivedEvent) -> _Outcome:
        if _is_async(handler):
            return await self._handle_async(handler, event)
        return await asyncio.to_thread(self._handle_sync, handler, event)

    def _handle_sync(self, handler: Handler, event: ReceivedEvent) -> _Outcome:
        try:
            with UnitOfWork(self.engine, source=self.source) as uow:
                if is_processed(uow.session, self.consumer_name, event.id):
                    return "duplicate"
                fault_point("inbox.before_handler")
                handler(event, uow)
                return self._finish(uow, event)
        except sa.exc.IntegrityError as e:
            return self._duplicate_or_raise(event, e)

    async def _handle_async(self, handler: Handler, event: ReceivedEvent) -> _Outcome:
        # Check in a short transaction of its own: the handler may await for a while and must
        # not hold a (SQLite) write lock meanwhile. A concurrent duplicate is still caught by
        # the primary key of processed_events at commit.
        if await asyncio.to_thread(self._already_processed, event.id):
            return "duplicate"
        uow = UnitOfWork(self.engine, source=self.source)
        await asyncio.to_thread(uow.__enter__)
        try:
            fault_point("inbox.before_handler")
            result = handler(event, uow)
            if inspect.isawaitable(result):
                await result
            return await asyncio.to_thread(self._finish, uow, event)
        except sa.exc.IntegrityError as e:
            return await asyncio.to_thread(self._duplicate_or_raise, event, e)
        finally:
            await asyncio.to_thread(uow.__exit__, None, None, None)

    def _finish(self, uow: UnitOfWork, event: ReceivedEvent) -> _Outcome:
        record_processed(uow.session, self.consumer_name, event.id, event.type)
        fault_point("inbox.after_handler")
        uow.commit()
        fault_point("inbox.after_commit")
        return "handled"

    def _already_processed(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return is_processed(conn, self.consumer_name, event_id)

    def _duplicate_or_raise(self, event: ReceivedEvent, error: sa.exc.IntegrityError) -> _Outcome:
        # Another member processed it meanwhile, or the handler broke a constraint itself.
        if self._already_processed(event.id):
            return "duplicate"
        raise error

    def _record_ignored(self, event: ReceivedEvent) -> None:
        with for_writing(self.engine).begin() as conn:
            if not is_processed(conn, self.consumer_name, event.id):
                record_processed(conn, self.consumer_name, event.id, event.type, "ignored")

    async def _dead_letter(
        self, record: Record, *, reason: str, error: BaseException, attempts: int
    ) -> None:
        headers = dead_letter_headers(
            record, consumer=self.consumer_name, reason=reason, error=error, attempts=attempts
        )
        topic = events.dlq_topic(record.topic)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.bus.publish(topic, record.key, record.value, headers)
                fault_point("inbox.after_dlq")
                return
            except Exception as e:
                if attempt >= self.dlq_publish_attempts:
                    # Not committing the offset is the only safe answer: redelivered later.
                    raise BusError(f"dead-letter publish to {topic} failed: {e}") from e
                await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_max))


def dead_letter_headers(
    record: Record, *, consumer: str, reason: str, error: BaseException, attempts: int = 1
) -> dict[str, bytes]:
    """The record's headers with why and where from: what `<topic>.dlq` holds, for every
    consumer that dead-letters (a replay sends a letter back to its dlq_original_topic)."""
    headers = dict(record.headers)
    tb = "".join(traceback.format_exception(error))
    headers.update(
        {
            DLQ_REASON: reason.encode(),
            DLQ_ERROR: f"{type(error).__name__}: {error}"[:_MAX_HEADER_TEXT].encode(),
            _DLQ_TRACEBACK: tb[-_MAX_HEADER_TEXT:].encode(),
            DLQ_ATTEMPTS: str(attempts).encode(),
            DLQ_CONSUMER: consumer.encode(),
            DLQ_ORIGINAL_TOPIC: record.topic.encode(),
            DLQ_ORIGINAL_PARTITION: str(record.partition).encode(),
            DLQ_ORIGINAL_OFFSET: str(record.offset).encode(),
        }
    )
    return headers


async def ensure_topics(bus: Bus, topics: Iterable[str], *, with_dlq: bool = True) -> None:
    """Create a service's topics (and their dead-letter topics) at start-up; idempotent."""
    for topic in topics:
        await bus.ensure_topic(topic)
        if with_dlq:
            await bus.ensure_topic(events.dlq_topic(topic))


async def publish_barrier(bus: Bus, topic: str, barrier_id: str, *, source: str) -> int:
    """Write a ReplayBarrier to every partition of `topic`; the number of partitions. A reader
    that has seen it on that many partitions has read all the topic held before this call —
    on any broker, where end offsets may be wrong and a joining group reads nothing."""
    from lgsp.api.events.v1.barrier_pb2 import ReplayBarrier

    envelope = events.make_envelope(ReplayBarrier(id=barrier_id), source=source, subject=barrier_id)
    headers = {k: v.encode() for k, v in events.envelope_headers(envelope).items()}
    return await bus.publish_to_each_partition(topic, events.encode(envelope), headers)


def _is_async(handler: object) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 — callable objects with async __call__
    )
