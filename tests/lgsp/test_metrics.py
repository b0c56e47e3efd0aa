"""Prometheus metrics of a process: gRPC calls by method and code with latency histograms,
bus records published and consumed, lag, outbox backlog and pool use, scraped with a real
HTTP client and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.bus import open_bus, run_consumer
from lgsp.db import create_engine, migrate
from lgsp.grpc import build_server
from lgsp.grpc.diagnostics import MAX_ECHO_MESSAGE_BYTES
from lgsp.metrics import MetricsServer, RuntimeCollector
from lgsp.outbox import OutboxRelay, pending_count
from tests.fixtures import free_port
from tests.lgsp.storage.support import MIGRATIONS, TOPIC, write_events

ECHO = "/lgsp.api.diagnostics.v1.DiagnosticsService/Echo"


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as (name, sorted labels) -> value."""
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_port() -> int:
    return free_port()


async def test_grpc_calls_are_counted_by_method_and_code_with_latency(metrics_port: int) -> None:
    served = MetricsServer("127.0.0.1", metrics_port)
    server = build_server("metrics-test")
    await server.start()
    try:
        before = await scrape(metrics_port)
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
            for _ in range(3):
                await stub.Echo(diagnostics_pb2.EchoRequest(message="xin chào"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                big = "x" * (MAX_ECHO_MESSAGE_BYTES + 1)
                await stub.Echo(diagnostics_pb2.EchoRequest(message=big))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        after = await scrape(metrics_port)
    finally:
        await server.stop(0)
        served.close()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    handled = "lgsp_grpc_server_handled_total"
    assert delta(handled, grpc_method=ECHO, grpc_code="OK") == 3
    assert delta(handled, grpc_method=ECHO, grpc_code="INVALID_ARGUMENT") == 1
    seconds = "lgsp_grpc_server_handling_seconds"
    assert delta(f"{seconds}_count", grpc_method=ECHO) == 4
    assert delta(f"{seconds}_bucket", grpc_method=ECHO, le="+Inf") == 4
    assert 0 < delta(f"{seconds}_sum", grpc_method=ECHO) < 10


async def test_bus_outbox_and_pool_figures(tmp_path: Path, metrics_port: int) -> None:
    db = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(db, MIGRATIONS)
    engine = create_engine(db)
    bus = open_bus(f"sqlite:///{tmp_path / 'bus.db'}")
    group = "metrics-consumer"
    collector = RuntimeCollector(
        lag=bus.lag_sync,  # type: ignore[attr-defined]
        groups=lambda: [group],
        backlog=lambda: pending_count(engine),
        pool=engine.pool,
    )
    served = MetricsServer("127.0.0.1", metrics_port, collector)
    try:
        write_events(engine, 5)
        first = await scrape(metrics_port)
        assert value(first, "lgsp_outbox_backlog_events") == 5
        assert ("lgsp_db_pool_checked_out_connections", ()) in first

        relay = OutboxRelay(engine, bus)
        assert await relay.relay_once() == 5
        # Three handled and committed: two still behind.
        consumer = bus.consumer(group, [TOPIC])
        stop = asyncio.Event()
        seen: list[bytes] = []

        async def handle(msg: object) -> None:
            seen.append(b"")
            if len(seen) == 3:
                stop.set()

        await asyncio.wait_for(run_consumer(consumer, handle, stop, max_records=1), 30)
        after = await scrape(metrics_port)
    finally:
        served.close()
        await bus.close()
        engine.dispose()
    assert value(after, "lgsp_outbox_backlog_events") == 0
    published = value(after, "lgsp_bus_published_records_total", topic=TOPIC)
    assert published - value(first, "lgsp_bus_published_records_total", topic=TOPIC) == 5
    consumed = "lgsp_bus_consumed_records_total"
    assert value(after, consumed, group=group, topic=TOPIC) == 3
    assert value(after, "lgsp_bus_lag_records", group=group, topic=TOPIC) == 2


def test_a_taken_port_is_refused_and_leaves_nothing_registered(metrics_port: int) -> None:
    served = MetricsServer("127.0.0.1", metrics_port)
    collector = RuntimeCollector(backlog=lambda: 1)
    try:
        with pytest.raises(OSError):
            MetricsServer("127.0.0.1", metrics_port, collector)
        from prometheus_client import REGISTRY

        assert REGISTRY.get_sample_value("lgsp_outbox_backlog_events") is None
    finally:
        served.close()
