"""Telemetry: one trace across gRPC, an event and its handler; OTEL_* set-up; JSON logs."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.grpc import build_server
from lgsp.grpc.client import channel
from lgsp.logs import BackgroundHandler, RecordMaker, flush_logs, setup_logging
from lgsp.telemetry import context_from_headers, setup_telemetry, trace_headers
from tests.lgsp.grpc._support import TestServicer, add_test_service, method

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_telemetry("lgsp-test", exporter=exporter)
    yield exporter
    exporter.shutdown()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = setup_logging("documents", json=True, stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


async def test_one_trace_covers_call_event_and_handler(
    spans: InMemorySpanExporter, log_stream: io.StringIO
) -> None:
    bus: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    server = build_server("documents", servicers=[(add_test_service, TestServicer(bus))])
    await server.start()
    tracer = trace.get_tracer("test")
    try:
        async with channel(server.address, service_name="gateway") as ch:
            with tracer.start_as_current_span("clerk issues document"):
                await method(ch, "Emit")(EchoRequest(message="123/QĐ-UBND"))
    finally:
        await server.stop(0)

    # The consumer runs later, outside any span: only the headers carry the trace.
    assert trace.get_current_span() is trace.INVALID_SPAN
    headers, value = await asyncio.wait_for(bus.get(), 5)
    with tracer.start_as_current_span(
        "documents.issued process",
        context=context_from_headers(headers),
        kind=trace.SpanKind.CONSUMER,
    ):
        logging.getLogger("search.indexer").info("indexed %s", value.decode())

    by_kind = {s.kind: s for s in spans.get_finished_spans()}
    root = next(s for s in spans.get_finished_spans() if s.name == "clerk issues document")
    chain = [
        root,
        by_kind[trace.SpanKind.CLIENT],
        by_kind[trace.SpanKind.SERVER],
        by_kind[trace.SpanKind.PRODUCER],
        by_kind[trace.SpanKind.CONSUMER],
    ]
    assert {s.context.trace_id for s in chain} == {root.context.trace_id}
    for parent, child in itertools.pairwise(chain):
        assert child.parent is not None and child.parent.span_id == parent.context.span_id, (
            child.name
        )
    assert root.parent is None

    # The handler's log line carries the same trace.
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    indexed = next(line for line in lines if line["logger"] == "search.indexer")
    assert indexed["trace_id"] == format(root.context.trace_id, "032x")
    assert indexed["span_id"] == format(by_kind[trace.SpanKind.CONSUMER].context.span_id, "016x")
    access = next(line for line in lines if line["logger"] == "lgsp.access")
    assert access["trace_id"] == indexed["trace_id"]
    assert access["grpc_code"] == "OK" and access["service"] == "documents"


def test_headers_round_trip_including_bytes(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("outbox write") as span:
        headers = trace_headers()
    assert set(headers) >= {"traceparent"}
    as_bytes = {k.title(): v.encode() for k, v in headers.items()}  # as a Kafka record has them
    restored = trace.get_current_span(context_from_headers(as_bytes)).get_span_context()
    assert restored.trace_id == span.get_span_context().trace_id
    assert restored.span_id == span.get_span_context().span_id and restored.is_remote


def test_setup_is_idempotent(spans: InMemorySpanExporter) -> None:
    first = setup_telemetry("another-name")
    assert setup_telemetry("yet-another") is first
    assert trace.get_tracer_provider() is first


def test_json_log_fields(log_stream: io.StringIO, spans: InMemorySpanExporter) -> None:
    log = logging.getLogger("documents.numbering")
    log.warning("number %s assigned", "12/QĐ-UBND", extra={"agency_code": "000.00.00.H27"})
    with trace.get_tracer("test").start_as_current_span("issue") as span:
        log.info("inside")
    outside, inside = (json.loads(x) for x in log_stream.getvalue().splitlines())
    assert outside["msg"] == "number 12/QĐ-UBND assigned"
    assert (outside["level"], outside["service"], outside["logger"]) == (
        "WARNING",
        "documents",
        "documents.numbering",
    )
    assert outside["agency_code"] == "000.00.00.H27" and "trace_id" not in outside
    assert outside["ts"].endswith("+00:00")
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")


def test_third_party_info_lines_are_dropped_ours_and_their_warnings_kept(
    log_stream: io.StringIO,
) -> None:
    """An idle platform wrote a line per HTTP request of its poller (httpx) and alembic's
    plugin set-up at each start: operators get libraries' warnings only."""
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:8203/… 200 OK")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate")
    logging.getLogger("httpx").warning("connection pool full")
    logging.getLogger("services.documents").info("document 12/QĐ-UBND issued")
    flush_logs()
    messages = [json.loads(line)["msg"] for line in log_stream.getvalue().splitlines()]
    assert messages == ["connection pool full", "document 12/QĐ-UBND issued"]


def test_record_maker_makes_the_records_the_logger_would(
    log_stream: io.StringIO, spans: InMemorySpanExporter
) -> None:
    log = logging.getLogger("lgsp.test.frequent")
    maker = RecordMaker(log, "%s took %.1fms", __file__)
    extra = {"grpc_method": "/a.v1.S/M", "caller": "alice"}
    with trace.get_tracer("test").start_as_current_span("call") as span:
        made = maker.make(logging.WARNING, ("/a.v1.S/M", 1.25), extra)
        log.handle(made)
        log.warning("%s took %.1fms", "/a.v1.S/M", 1.25, extra=extra)
    made_line, logged_line = (json.loads(x) for x in log_stream.getvalue().splitlines())
    assert made_line.pop("ts")[:16] == logged_line.pop("ts")[:16]
    assert made_line == logged_line
    assert made_line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    logged = log.makeRecord(log.name, logging.WARNING, __file__, 0, "%s took %.1fms", (), None)
    for key in ("levelname", "pathname", "filename", "module", "process", "thread", "threadName"):
        assert getattr(made, key) == getattr(logged, key), key
    assert abs(made.created - logged.created) < 5 and 0 <= made.msecs < 1000
    assert made.relativeCreated == pytest.approx(logged.relativeCreated, abs=5000)
    # Each record is its own: a later one does not change an earlier one.
    later = maker.make(logging.INFO, ("/b", 2.0), {"caller": "bob"})
    assert made.getMessage() == "/a.v1.S/M took 1.2ms" and later.getMessage() == "/b took 2.0ms"
    assert (made.caller, later.caller, later.levelname) == ("alice", "bob", "INFO")


def test_log_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    for env, expect_json in (("", True), ("text", False), ("json", True)):
        monkeypatch.setenv("LGSP_LOG_FORMAT", env)
        stream = io.StringIO()  # not a TTY: JSON unless told otherwise
        handler = setup_logging("mail", stream=stream)
        try:
            logging.getLogger("mail.smtp").error("relay refused")
        finally:
            root.removeHandler(handler)
        line = stream.getvalue().strip()
        assert line.startswith("{") is expect_json, (env, line)
        assert "relay refused" in line


_PROBE = """
import json
from opentelemetry import trace
from lgsp.telemetry import setup_telemetry
p = setup_telemetry("documents")
exporters = [type(sp.span_exporter).__module__ + "." + type(sp.span_exporter).__name__
             for sp in p._active_span_processor._span_processors]
with trace.get_tracer("probe").start_as_current_span("s") as span:
    sampled = span.get_span_context().trace_flags.sampled
print(json.dumps({"service": p.resource.attributes.get("service.name"),
                  "exporters": exporters, "sampled": sampled}), flush=True)
import os; os._exit(0)  # skip the exit-time export to the unreachable endpoint
"""


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({}, {"service": "documents", "exporters": ["http"], "sampled": True}),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SERVICE_NAME": "docs-blue"},
            {"service": "docs-blue", "exporters": ["grpc"], "sampled": True},
        ),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_TRACES_SAMPLER": "always_off"},
            {"service": "documents", "exporters": [], "sampled": False},
        ),
        (
            {"OTEL_SDK_DISABLED": "true"},
            {"service": "documents", "exporters": [], "sampled": False},
        ),
    ],
)
def test_setup_follows_otel_environment(env: dict[str, str], expect: dict[str, object]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # An endpoint nobody listens on: nothing is exported before the probe exits.
    clean["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    clean["OTEL_BSP_SCHEDULE_DELAY"] = "60000"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["service"] == expect["service"]
    assert got["sampled"] == expect["sampled"]
    kinds = ["grpc" if ".proto.grpc." in e else "http" for e in got["exporters"]]
    assert kinds == expect["exporters"], got["exporters"]


def test_background_log_writer_keeps_the_trace_of_the_logging_code(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    path = tmp_path / "service.log"
    with path.open("w", encoding="utf-8") as out:
        handler = setup_logging("documents", json=True, stream=out)  # an OS file: background
        try:
            assert isinstance(handler, BackgroundHandler)
            handler.interval = 3600  # from now on only flushes write
            with trace.get_tracer("test").start_as_current_span("issue") as span:
                logging.getLogger("documents.numbering").info("number %s", ["12/QĐ-UBND"])
            flush_logs()  # formatted outside the span, on the writer
            (line,) = (json.loads(x) for x in path.read_text(encoding="utf-8").splitlines())
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
    assert line["msg"] == "number ['12/QĐ-UBND']"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "_lgsp_span_context" not in line


def test_a_service_run_on_its_own_follows_its_telemetry_settings() -> None:
    from lgsp.app import apply_telemetry_settings
    from lgsp.config import load_settings

    off = load_settings(env={"LGSP_TELEMETRY_ENABLED": "false"})
    environ: dict[str, str] = {}
    apply_telemetry_settings("identity", off, environ)
    assert environ["OTEL_SDK_DISABLED"] == "true"
    assert environ["OTEL_SERVICE_NAME"] == "identity"

    on = load_settings(env={"LGSP_TELEMETRY_SAMPLING_RATIO": "0.25"})
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}  # the operator's wins
    apply_telemetry_settings("identity", on, environ)
    assert environ["OTEL_SDK_DISABLED"] == "false"
    assert environ["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert environ["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert not any(key.startswith("LGSP_") for key in environ)
