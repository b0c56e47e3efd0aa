"""One request through the whole platform: a gRPC call writes a row and its event in one
transaction (outbox), the relay publishes it on the bus, another service's consumer handles
it exactly once, and one trace covers all of it. Runs on both bus backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc, events_pb2
from lgsp.app import ServiceRuntime
from lgsp.bus import Bus, open_bus
from lgsp.config import ServiceSettings, load_settings
from lgsp.grpc.client import channel
from lgsp.plugins import Plugin, Subscription, Wiring
from lgsp.telemetry import setup_telemetry
from tests.integration.sample_service import DraftingServicer, record_effect
from tests.lgsp.storage.support import MIGRATIONS, effects

DOCUMENTS_TOPIC = "lgsp.documents.v1"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_telemetry("lgsp-test", exporter=exporter)
    yield exporter
    exporter.shutdown()


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
async def shared_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "embedded":
        bus = open_bus(f"sqlite:///{tmp_path}/bus.db")
    else:
        bootstrap = request.getfixturevalue("tansu")
        bus = open_bus(
            f"kafka://{bootstrap}",
            client_id=f"flow-{uuid.uuid4().hex[:6]}",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
    yield bus
    await bus.close()


async def test_call_event_handler_in_one_trace(
    tmp_path: Path, shared_bus: Bus, spans: InMemorySpanExporter
) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    topic = DOCUMENTS_TOPIC
    producer = ServiceRuntime(
        Plugin(
            "documents",
            "drafting sample",
            ServiceSettings,
            wire=lambda rt: Wiring(
                servicers=[
                    (documents_pb2_grpc.add_DocumentServiceServicer_to_server, DraftingServicer(rt))
                ]
            ),
            migrations=MIGRATIONS,
        ),
        settings,
        port=0,
        bus=shared_bus,
    )
    consumer = ServiceRuntime(
        Plugin(
            "search",
            "recording sample",
            ServiceSettings,
            wire=lambda rt: Wiring(
                subscriptions=[
                    Subscription(
                        f"search-indexer-{uuid.uuid4().hex[:6]}",
                        [topic],
                        {events_pb2.DocumentDrafted: record_effect},
                    )
                ]
            ),
            migrations=MIGRATIONS,
        ),
        settings,
        port=0,
        bus=shared_bus,
    )
    await producer.start()
    await consumer.start()
    try:
        async with channel(producer.server.address, service_name="district-desk") as ch:
            stub = documents_pb2_grpc.DocumentServiceStub(ch)
            reply = await stub.CreateDraft(
                documents_pb2.CreateDraftRequest(
                    document=documents_pb2.Document(subject="Về cải cách hành chính năm 2026")
                ),
                timeout=10,
            )
        doc_id = reply.document.id

        def handled() -> list[sa.Row[Any]]:
            with consumer.engine.connect() as conn:
                return list(conn.execute(sa.select(effects.c.subject)))

        rows: list[sa.Row[Any]] = []
        for _ in range(300):  # up to 30 s: a Kafka group join takes a few seconds
            rows = await asyncio.to_thread(handled)
            if rows:
                break
            await asyncio.sleep(0.1)
        assert [r.subject for r in rows] == [doc_id]
    finally:
        await consumer.stop(0)
        await producer.stop(0)

    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    by_kind = {kind: [s for s in finished if s.kind == kind] for kind in SpanKind}
    server = next(s for s in by_kind[SpanKind.SERVER] if "CreateDraft" in s.name)
    client = next(s for s in by_kind[SpanKind.CLIENT] if "CreateDraft" in s.name)
    producer_span = next(s for s in by_kind[SpanKind.PRODUCER] if topic in s.name)
    consumer_span = next(
        s for s in by_kind[SpanKind.CONSUMER] if s.attributes.get("lgsp.event.type")
    )
    trace_id = client.context.trace_id
    trace_ids = {s.context.trace_id for s in (server, producer_span, consumer_span)}
    assert trace_ids == {trace_id}
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    # client → server → the relay's publish (parent stored with the outbox row) → consumer
    assert producer_span.parent is not None
    assert producer_span.parent.span_id == server.context.span_id
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id
    assert consumer_span.attributes["messaging.message.id"]
