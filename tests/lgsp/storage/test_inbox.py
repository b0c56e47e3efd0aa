"""The idempotent consumer: dedupe, retries, dead letters, malformed records, tracing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Engine

from lgsp import events, inbox, outbox
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest, EchoResponse
from lgsp.api.events.v1.envelope_pb2 import Envelope
from lgsp.bus import Bus, Message, open_bus
from lgsp.db import UnitOfWork, create_engine, migrate, outbox_table, processed_events_table
from lgsp.inbox import EventProcessor, PermanentError, ReceivedEvent
from lgsp.outbox import OutboxRelay
from tests.lgsp.storage.support import (
    DLQ,
    GROUP,
    MIGRATIONS,
    TOPIC,
    bus_url,
    consume_until,
    drain_relay,
    effect_counts,
    effect_handler,
    effects,
    processed,
    read_topic,
    write_events,
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[Engine]:
    migrate(db_url, MIGRATIONS)
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    b = open_bus(bus_url(tmp_path))
    yield b
    await b.close()


def record(value: bytes, offset: int = 0, headers: dict[str, bytes] | None = None) -> Message:
    return Message(TOPIC, 0, offset, b"k", value, headers or {})


def envelope(msg: EchoRequest | None = None, **fields: object) -> Envelope:
    env = events.make_envelope(msg or EchoRequest(message="m"), source="t", subject="s")
    for k, v in fields.items():
        setattr(env, k, v)
    return env


async def test_duplicate_delivery_has_one_effect(engine: Engine, bus: Bus) -> None:
    seen: list[str] = []

    def handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
        assert isinstance(event.payload, EchoRequest)
        seen.append(event.payload.message)
        effect_handler(event, uow)

    p = EventProcessor(engine, {EchoRequest: handler}, bus, consumer_name=GROUP)
    env = envelope(EchoRequest(message="once"))
    await p(record(events.encode(env), 0))
    await p(record(events.encode(env), 1))  # redelivered / published twice
    assert seen == ["once"]
    assert effect_counts(engine) == {env.id: 1}
    # The processed id is per consumer: another consumer handles the same event once too.
    q = EventProcessor(engine, {EchoRequest: handler}, bus, consumer_name="other")
    await q(record(events.encode(env), 0))
    assert effect_counts(engine) == {env.id: 2}


async def test_failed_attempts_roll_back_and_retry(engine: Engine, bus: Bus) -> None:
    calls = 0

    async def flaky(event: ReceivedEvent, uow: UnitOfWork) -> None:
        nonlocal calls
        calls += 1
        effect_handler(event, uow)  # written, then rolled back when the attempt fails
        if calls < 3:
            raise ConnectionError("search index busy")

    p = EventProcessor(
        engine,
        {EchoRequest: flaky},
        bus,
        consumer_name=GROUP,
        max_attempts=5,
        backoff_base=0.01,
        backoff_max=0.02,
    )
    env = envelope()
    await p(record(events.encode(env)))
    assert calls == 3
    assert effect_counts(engine) == {env.id: 1}
    assert await read_topic(bus, DLQ, idle=0.2) == []


async def test_poison_event_is_dead_lettered_and_consumer_moves_on(
    engine: Engine, bus: Bus
) -> None:
    ids = write_events(engine, 3)
    poison_id = ids[1]
    attempts: list[str] = []

    def handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
        if event.id == poison_id:
            attempts.append(event.id)
            raise ValueError("cannot file this document")
        effect_handler(event, uow)

    await drain_relay(OutboxRelay(engine, bus))
    dlq: list[Message] = []

    def done() -> bool:
        return processed(engine) == 2

    await consume_until(engine, bus, done, handlers={EchoRequest: handler}, max_attempts=3)
    assert attempts == [poison_id] * 3
    assert effect_counts(engine) == {ids[0]: 1, ids[2]: 1}
    dlq = await read_topic(bus, DLQ)
    assert len(dlq) == 1
    d = dlq[0]
    assert events.decode(d.value).id == poison_id
    assert d.headers[inbox.DLQ_REASON] == b"handler-failed"
    assert d.headers[inbox.DLQ_ERROR] == b"ValueError: cannot file this document"
    assert d.headers[inbox.DLQ_ATTEMPTS] == b"3"
    assert d.headers[inbox.DLQ_CONSUMER] == GROUP.encode()
    assert d.headers[inbox.DLQ_ORIGINAL_TOPIC] == TOPIC.encode()
    topic = await read_topic(bus, TOPIC)
    originals = {m.headers[events.HEADER_EVENT_ID].decode(): m for m in topic}
    assert d.headers[inbox.DLQ_ORIGINAL_OFFSET] == str(originals[poison_id].offset).encode()
    assert d.headers[inbox.DLQ_ORIGINAL_PARTITION] == str(originals[poison_id].partition).encode()
    assert d.headers[events.HEADER_EVENT_ID] == poison_id.encode()  # original headers kept
    assert d.key == originals[poison_id].key


async def test_permanent_error_skips_retries(engine: Engine, bus: Bus) -> None:
    calls = 0

    def handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("document type not accepted")

    p = EventProcessor(engine, {EchoRequest: handler}, bus, consumer_name=GROUP, max_attempts=5)
    await p(record(events.encode(envelope())))
    assert calls == 1
    [d] = await read_topic(bus, DLQ)
    assert d.headers[inbox.DLQ_ATTEMPTS] == b"1"


async def test_malformed_records_go_to_dlq_with_reason(engine: Engine, bus: Bus) -> None:
    good = envelope(EchoRequest(message="good"))
    unknown = envelope(type="lgsp.api.nowhere.v1.Missing")
    bad_payload = envelope(payload=b"\xff\xff\xff\xff")
    no_id = envelope(id="")
    bad = [
        b"\x00not an envelope\xff",
        events.encode(unknown),
        events.encode(bad_payload),
        events.encode(no_id),
    ]
    for i, value in enumerate(bad):
        await bus.publish(TOPIC, f"k{i}", value, {"marker": str(i).encode()})
    await bus.publish(TOPIC, "k0", events.encode(good))
    await consume_until(engine, bus, lambda: processed(engine) == 1)
    assert effect_counts(engine) == {good.id: 1}
    dlq = sorted(await read_topic(bus, DLQ), key=lambda m: m.headers["marker"])
    assert [m.headers[inbox.DLQ_REASON] for m in dlq] == [
        b"bad-envelope",
        b"unknown-type",
        b"bad-payload",
        b"bad-envelope",
    ]
    assert [m.value for m in dlq] == bad
    assert b"lgsp.api.nowhere.v1.Missing" in dlq[1].headers[inbox.DLQ_ERROR]
    assert all(m.headers[inbox.DLQ_ATTEMPTS] == b"0" for m in dlq)


async def test_type_without_handler_is_recorded_and_skipped(engine: Engine, bus: Bus) -> None:
    p = EventProcessor(engine, {EchoRequest: effect_handler}, bus, consumer_name=GROUP)
    env = events.make_envelope(EchoResponse(message="x"), source="t", subject="s")
    await p(record(events.encode(env)))
    await p(record(events.encode(env), 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(processed_events_table)).all()
    assert [(r.event_id, r.outcome) for r in rows] == [(env.id, "ignored")]
    assert effect_counts(engine) == {}
    assert await read_topic(bus, DLQ, idle=0.2) == []


async def test_async_handler_emits_follow_up_in_same_transaction(engine: Engine, bus: Bus) -> None:
    async def handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
        effect_handler(event, uow)
        uow.emit(EchoResponse(message="ack"), subject=event.subject, topic="lgsp.acks.v1")
        if event.payload.message == "fail":  # type: ignore[attr-defined]
            raise PermanentError("no")

    p = EventProcessor(engine, {EchoRequest: handler}, bus, consumer_name=GROUP)
    ok, fail = envelope(EchoRequest(message="ok")), envelope(EchoRequest(message="fail"))
    await p(record(events.encode(ok)))
    await p(record(events.encode(fail), 1))
    with engine.connect() as conn:
        topics = conn.execute(sa.select(outbox_table.c.topic)).scalars().all()
        effect_ids = conn.execute(sa.select(effects.c.event_id)).scalars().all()
    # The failed one left neither its effect nor its follow-up event.
    assert topics == ["lgsp.acks.v1"]
    assert effect_ids == [ok.id]


async def test_trace_follows_event_from_request_through_relay_to_handler(
    engine: Engine, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(outbox, "_tracer", provider.get_tracer("lgsp.outbox"))
    monkeypatch.setattr(inbox, "_tracer", provider.get_tracer("lgsp.inbox"))

    with tracer.start_as_current_span("IssueDocument"):
        [event_id] = write_events(engine, 1, first=uuid.uuid4().int % 1000)
    await drain_relay(OutboxRelay(engine, bus))
    await consume_until(engine, bus, lambda: processed(engine) == 1)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    request = spans["IssueDocument"]
    publish = spans[f"{TOPIC} publish"]
    process = spans["lgsp.api.diagnostics.v1.EchoRequest process"]
    assert publish.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert request.context.trace_id == publish.context.trace_id == process.context.trace_id
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.message.id"] == event_id


async def test_database_outage_is_not_dead_lettered(engine: Engine, bus: Bus) -> None:
    def handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
        raise sa.exc.OperationalError(
            "SELECT 1", {}, ConnectionError("server closed"), connection_invalidated=True
        )

    p = EventProcessor(
        engine,
        {EchoRequest: handler},
        bus,
        consumer_name=GROUP,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.01,
    )
    # Raising makes run_consumer stop without committing: the record comes back later.
    with pytest.raises(sa.exc.OperationalError):
        await p(record(events.encode(envelope())))
    assert await read_topic(bus, DLQ, idle=0.2) == []
    assert processed(engine) == 0
