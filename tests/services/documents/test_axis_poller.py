"""The axis poller: one call a round for every mailbox of the province, and nothing written
(no log line, no span) for a round that finds nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lgsp.connectors.document_axis import DocumentAxisClient
from tests.national.mockproc import API_KEY, MockProcess

from .test_documents_national_axis import _settings, axis_exchange, outside_package
from .workflow_support import UBND, eventually, running_env

POLL = "POST /api/v1/mailboxes/packages"


@pytest.fixture
def axis_mock(tmp_path: Path) -> Iterator[MockProcess]:
    (tmp_path / "axis").mkdir()
    mock = MockProcess("document_axis", tmp_path / "axis").start()
    try:
        yield mock
    finally:
        mock.stop()


def calls(mock: MockProcess) -> dict[str, int]:
    return dict(httpx.get(f"{mock.url}/_stats", timeout=2).json()["calls"])


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_idle_rounds_make_one_call_each_and_write_nothing(
    tmp_path: Path, axis_mock: MockProcess
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lgsp.telemetry import setup_telemetry

    exporter = InMemorySpanExporter()
    setup_telemetry("documents", exporter=exporter)
    handler = Records()
    loggers = [logging.getLogger(n) for n in ("services.documents", "lgsp.connectors", "lgsp")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        # A poll interval of an hour: the service's own loop makes its first round and waits.
        async with running_env(tmp_path / "documents", _settings(axis_mock, 3600)) as env:
            exchange = axis_exchange(env)
            await eventually(lambda: _polled(axis_mock))
            agencies = len(exchange.transport.agencies.codes())
            assert agencies > 1
            axis_mock.reset()
            exporter.clear()
            handler.records.clear()

            for _ in range(3):
                assert await exchange.poll_round() == 0
            # One call a round for all the province's mailboxes, not one per agency.
            assert calls(axis_mock) == {POLL: 3}
            assert _axis_spans(exporter, axis_mock) == []
            assert [r.getMessage() for r in handler.records if r.levelno >= logging.DEBUG] == []

            # A round that finds a package does the work, says so once, and traces it.
            async with DocumentAxisClient(axis_mock.url, API_KEY) as outside:
                await outside.send_package(outside_package())
            exporter.clear()
            assert await exchange.poll_round() == 1
            said = [r.getMessage() for r in handler.records if r.levelno >= logging.INFO]
            assert len(said) == 1 and "imported from the national document axis" in said[0]
            assert [s.name for s in _axis_spans(exporter, axis_mock) if s.parent is None] == [
                "national axis package import"
            ]
            assert await exchange.poll_once(UBND) == 0  # acked: not there any more
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


async def _polled(mock: MockProcess) -> bool:
    return calls(mock).get(POLL, 0) > 0


def _axis_spans(exporter: Any, mock: MockProcess) -> list[Any]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name.startswith(("document_axis.", "national axis"))
        or mock.url in str((s.attributes or {}).get("url.full", ""))
    ]
