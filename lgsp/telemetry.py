"""OpenTelemetry set-up and W3C trace-context propagation for gRPC metadata and event headers.

The propagation helpers are the one way to move a trace across a process boundary:
`trace_headers()` captures the current context as W3C headers (stored with an outbox row or
put on a bus record), `context_from_headers()` restores it on the consumer side.

`setup_telemetry()` is called once per process by its entry point. It follows the standard
OTEL_* variables so operators configure tracing without code changes:

- OTEL_SDK_DISABLED=true: no spans are recorded (tracers are no-ops);
- OTEL_TRACES_EXPORTER: `otlp` (default), `console` or `none`;
- OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: `http/protobuf` (default) or `grpc`;
- OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT: read by the exporters;
- OTEL_TRACES_SAMPLER / _ARG: read by the SDK (default parentbased_always_on);
- OTEL_SERVICE_NAME overrides the service name given by the code;
  OTEL_RESOURCE_ATTRIBUTES adds resource attributes;
- OTEL_PROPAGATORS: default here is W3C `tracecontext,baggage`;
- OTEL_BSP_*: batch span processor tuning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections.abc import Iterator, Mapping
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "context_from_headers",
    "current_trace_ids",
    "flush_telemetry",
    "setup_telemetry",
    "shutdown_telemetry",
    "tag_business_keys",
    "trace_headers",
    "tracer",
]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_provider: TracerProvider | None = None


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _otlp_exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    if protocol not in {"http/protobuf", "http/json"}:
        log.warning("unsupported OTLP protocol %r, using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def _default_exporters() -> list[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    exporters: list[SpanExporter] = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name == "none":
            return []
        if name == "otlp":
            exporters.append(_otlp_exporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            log.warning("unsupported OTEL_TRACES_EXPORTER %r ignored", name)
    return exporters


def _processor(exporter: SpanExporter, kind: Literal["batch", "simple"]) -> SpanProcessor:
    return SimpleSpanProcessor(exporter) if kind == "simple" else BatchSpanProcessor(exporter)


def setup_telemetry(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    processor: Literal["batch", "simple"] | None = None,
) -> TracerProvider:
    """Install the process-wide tracer provider and W3C propagators; idempotent.

    Without `exporter`, spans go to the exporters named by OTEL_TRACES_EXPORTER (OTLP by
    default) through a BatchSpanProcessor. With `exporter` (tests, benchmarks), spans go to
    it through a SimpleSpanProcessor unless `processor="batch"`.

    A second call returns the provider of the first (a process has one service name); if it
    brings an exporter, that exporter is added to the existing provider, so test fixtures
    can capture spans whatever ran before them.
    """
    global _provider
    with _lock:
        if _provider is None:
            attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
            provider = TracerProvider(resource=Resource.create(attributes))
            if exporter is None and not _env_true("OTEL_SDK_DISABLED"):
                for default in _default_exporters():
                    provider.add_span_processor(_processor(default, processor or "batch"))
            if "OTEL_PROPAGATORS" not in os.environ:
                propagate.set_global_textmap(
                    CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
                )
            trace.set_tracer_provider(provider)
            _provider = provider
        if exporter is not None:
            _provider.add_span_processor(_processor(exporter, processor or "simple"))
        return _provider


def flush_telemetry(timeout_millis: int = 5000) -> None:
    """Export the spans still queued (before a process ends or a test asserts)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def shutdown_telemetry() -> None:
    """Flush and close the exporters (graceful shutdown); spans after this are dropped."""
    with _lock:
        if _provider is not None:
            _provider.force_flush()
            _provider.shutdown()


@contextlib.contextmanager
def unsampled() -> Iterator[None]:
    """Record no span for the work inside: a poll that may find nothing (an operator does not
    want a trace per idle round). Under a non-sampled parent, the platform's parent-based
    sampler drops every child span; work found this way starts a trace of its own
    (`new_trace`)."""
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=random.getrandbits(128) or 1,
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
        )
    )
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        otel_context.detach(token)


def new_trace() -> otel_context.Context:
    """A context with no parent span: what `start_as_current_span(context=…)` roots a trace at."""
    return otel_context.Context()


# Span attributes naming the business object a span works on; the console indexes their
# values (console/store.py KEY_ATTRIBUTES), so an operator finds a trace by what a user quotes.
DOCUMENT_ID = "lgsp.document.id"
DOCUMENT_NUMBER = "lgsp.document.number"  # số, ký hiệu as written: "12/QĐ-UBND"
DOCUMENT_NOTATION = "lgsp.document.notation"  # ký hiệu alone: "QĐ-UBND"
DOSSIER_ID = "lgsp.dossier.id"
DOSSIER_RECEIPT_CODE = "lgsp.dossier.receipt_code"  # mã hồ sơ on the receipt
AGENCY_CODE = "lgsp.agency.code"  # mã định danh of the agency acting or concerned


def tag_business_keys(
    *,
    document_id: str = "",
    document_number: str = "",
    document_notation: str = "",
    dossier_id: str = "",
    receipt_code: str = "",
    agency_code: str = "",
) -> None:
    """Put the given (non-empty) business keys on the current span; nothing outside a span."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for key, value in (
        (DOCUMENT_ID, document_id),
        (DOCUMENT_NUMBER, document_number),
        (DOCUMENT_NOTATION, document_notation),
        (DOSSIER_ID, dossier_id),
        (DOSSIER_RECEIPT_CODE, receipt_code),
        (AGENCY_CODE, agency_code),
    ):
        if value:
            span.set_attribute(key, value)


def tracer(name: str) -> trace.Tracer:
    """A tracer named after the instrumenting module (works before set-up, via a proxy)."""
    return trace.get_tracer(name)


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as lowercase hex, or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def trace_headers() -> dict[str, str]:
    """W3C trace context of the current span ({"traceparent": …, "tracestate": …})."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str | bytes]) -> otel_context.Context:
    """The OpenTelemetry context carried by headers (bytes values are decoded as UTF-8)."""
    carrier = {
        k.lower(): v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        for k, v in headers.items()
    }
    return propagate.extract(carrier)
