"""lgsp.grpc.spans: server spans equal to the SDK's, through the provider's own pipeline."""

from __future__ import annotations

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

from lgsp.grpc.spans import ServerSpans

ATTRS = {"rpc.system": "grpc", "rpc.service": "a.v1.S", "rpc.method": "M"}


def _provider(**kw: object) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}), **kw)  # type: ignore[arg-type]
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _remote_parent(sampled: bool = True) -> otel_context.Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), otel_context.Context())


def test_span_matches_what_the_sdk_records() -> None:
    provider, exporter = _provider()
    parent = _remote_parent()
    ours = ServerSpans("a.v1.S/M", ATTRS, provider).start(parent)
    sdk = provider.get_tracer("lgsp.grpc").start_span(
        "a.v1.S/M", context=parent, kind=SpanKind.SERVER, attributes=ATTRS
    )
    for span in (ours, sdk):
        assert span.is_recording()
        span.set_attribute("enduser.id", "alice")
        span.set_attribute("rpc.grpc.status_code", 13)
        span.set_status(StatusCode.ERROR, "INTERNAL")
        span.set_status(StatusCode.OK)  # ERROR stays until OK is set, then OK is final
        span.set_status(StatusCode.ERROR, "ignored")
        span.record_exception(ValueError("boom"))
        span.update_name("a.v1.S/M2")
        span.end()
        span.end()  # a second end is ignored
        span.set_attribute("late", 1)
        assert not span.is_recording()
    got, want = exporter.get_finished_spans()
    assert got.name == want.name == "a.v1.S/M2"
    assert got.kind == want.kind == SpanKind.SERVER
    assert dict(got.attributes or {}) == dict(want.attributes or {})
    assert got.status.status_code == want.status.status_code == StatusCode.OK
    assert got.parent == want.parent and got.parent is not None and got.parent.span_id == 0xDEF
    assert got.context.trace_id == want.context.trace_id == 0xABC
    assert got.context.span_id not in (0, 0xDEF, want.context.span_id)
    assert got.context.trace_flags.sampled
    assert got.resource is want.resource
    assert got.instrumentation_scope is not None and got.instrumentation_scope.name == "lgsp.grpc"
    assert [e.name for e in got.events] == [e.name for e in want.events] == ["exception"]
    assert dict(got.events[0].attributes or {}) == dict(want.events[0].attributes or {})
    assert got.start_time is not None and got.end_time is not None
    assert got.start_time <= got.end_time


def test_without_parent_the_span_starts_a_trace() -> None:
    provider, exporter = _provider()
    spans = ServerSpans("a.v1.S/M", ATTRS, provider)
    first, second = spans.start(otel_context.Context()), spans.start(otel_context.Context())
    first.end()
    second.end()
    a, b = exporter.get_finished_spans()
    assert a.parent is None and b.parent is None
    assert a.context.trace_id != b.context.trace_id
    assert dict(a.attributes or {}) == ATTRS


@pytest.mark.parametrize(
    ("sampler", "parent_sampled"),
    [(ALWAYS_OFF, True), (ParentBased(TraceIdRatioBased(1.0)), False)],
)
def test_the_providers_sampler_decides(sampler: object, parent_sampled: bool) -> None:
    provider, exporter = _provider(sampler=sampler)
    span = ServerSpans("a.v1.S/M", ATTRS, provider).start(_remote_parent(parent_sampled))
    assert not span.is_recording()
    assert span.get_span_context().is_valid  # still carries ids to children and logs
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert exporter.get_finished_spans() == ()


def test_span_limits_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "2")
    provider, exporter = _provider()
    span = ServerSpans("a.v1.S/M", {"k": "v"}, provider).start(otel_context.Context())
    for i in range(10):
        span.set_attribute(f"x{i}", "abcdefgh")
        span.add_event(f"e{i}")
    span.end()
    (got,) = exporter.get_finished_spans()
    assert len(got.attributes or {}) == 5
    assert (got.attributes or {})["k"] == "v"  # the fixed ones are kept
    assert (got.attributes or {})["x9"] == "abcd"  # the oldest extras make room, as in the SDK
    assert [e.name for e in got.events] == ["e0", "e1"]


def test_without_the_sdk_spans_are_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        not ServerSpans("a.v1.S/M", ATTRS, trace.NoOpTracerProvider())
        .start(otel_context.Context())
        .is_recording()
    )
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider, exporter = _provider()
    span = ServerSpans("a.v1.S/M", ATTRS, provider).start(_remote_parent())
    assert not span.is_recording()
    span.end()
    assert exporter.get_finished_spans() == ()
