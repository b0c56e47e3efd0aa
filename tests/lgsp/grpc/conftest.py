"""Fixtures: span capture and servers built with the platform bootstrap on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc.aio
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lgsp.grpc import LgspServer, build_server
from lgsp.grpc.client import channel
from lgsp.telemetry import setup_telemetry
from tests.lgsp.grpc._support import TestServicer, add_test_service


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test (SimpleSpanProcessor: exported as each span ends)."""
    exporter = InMemorySpanExporter()
    setup_telemetry("lgsp-test", exporter=exporter)
    yield exporter
    exporter.shutdown()  # later spans are no longer kept


ServerFactory = Callable[..., Awaitable[tuple[LgspServer, TestServicer]]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start a test server (build_server keyword arguments pass through); stopped after."""
    started: list[LgspServer] = []

    async def make(
        servicer: TestServicer | None = None, **kw: Any
    ) -> tuple[LgspServer, TestServicer]:
        servicer = servicer or TestServicer()
        server = build_server("test", servicers=[(add_test_service, servicer)], **kw)
        await server.start()
        started.append(server)
        return server, servicer

    yield make
    for server in started:
        await server.stop(0)


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., grpc.aio.Channel]]:
    """Platform client channels to a server, closed after the test."""
    opened: list[grpc.aio.Channel] = []

    def open_channel(server: LgspServer, **kw: Any) -> grpc.aio.Channel:
        ch = channel(server.address, service_name="test-client", **kw)
        opened.append(ch)
        return ch

    yield open_channel
    for ch in opened:
        await ch.close()
