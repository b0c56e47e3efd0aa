"""SERVER spans of gRPC calls, recorded with a fraction of the SDK's per-span work.

The OpenTelemetry SDK's Span cost ~27 µs of CPU per call here (attributes validated under a
lock as they are set, a second copy made at end), the largest single part of the platform's
per-call overhead (bench/grpc_overhead.py). A server span's shape is known before the call:
its name and attributes are fixed per method, so they are validated once, when the method
is wrapped. Per call, `ServerSpans.start()` asks the provider's sampler, takes ids from its
id generator, and `end()` hands one ReadableSpan to the provider's span processors: the same
processors and exporters as every other span, so nothing downstream can tell the difference.

Code inside the call sees a recording `trace.Span`: set_attribute, add_event,
record_exception, set_status and update_name work as on the SDK's span (with the same
limits). One difference: span processors get `on_end` only, not `on_start` (the platform's
batch and simple export processors do nothing on start).

Without the SDK (OTEL_SDK_DISABLED, no provider set), spans come from the global tracer as
usual: non-recording, nearly free.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

__all__ = ["ServerSpans"]

_SCOPE = InstrumentationScope("lgsp.grpc")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


class _Recorder:
    """What every span of one SDK provider needs, looked up once per provider."""

    __slots__ = ("id_generator", "limits", "processor", "provider", "resource", "sampler")

    def __init__(self, provider: TracerProvider, tracer: Tracer) -> None:
        self.provider = provider
        # Through a tracer: the provider's sampler, resource, processors and id generator
        # are public attributes of the SDK's Tracer.
        self.sampler = tracer.sampler
        self.resource = tracer.resource
        self.processor = tracer.span_processor
        self.id_generator = tracer.id_generator
        self.limits = SpanLimits()  # the OTEL_SPAN_*_LIMIT variables, as the SDK reads them


def _full(items: list[Any], limit: int | None) -> bool:
    return limit is not None and len(items) >= limit


class _ServerSpan(trace.Span):
    """A recording span whose fixed attributes were validated in advance."""

    __slots__ = (
        "_attributes",
        "_base",
        "_context",
        "_end_ns",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_recorder",
        "_start_ns",
        "_status",
    )

    def __init__(
        self,
        recorder: _Recorder,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        base: Mapping[str, types.AttributeValue],
        kind: SpanKind,
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._context = context
        self._parent = parent
        self._base = base
        self._kind = kind
        self._attributes: BoundedAttributes | None = None  # set during the call, if any
        self._events: list[Event] = []
        self._links: list[Link] = []
        self._status = Status(StatusCode.UNSET)
        self._start_ns = time_ns()
        self._end_ns: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_ns is None

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_ns is not None:
            return
        if self._attributes is None:
            limits = self._recorder.limits
            room = limits.max_span_attributes  # the limit counts the fixed ones too
            self._attributes = BoundedAttributes(
                None if room is None else max(0, room - len(self._base)),
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        limits = self._recorder.limits
        if self._end_ns is not None or _full(self._events, limits.max_events):
            return
        bounded = BoundedAttributes(
            limits.max_event_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
        )
        self._events.append(Event(name, bounded, timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        limits = self._recorder.limits
        if self._end_ns is not None or not context.is_valid:
            return
        if not _full(self._links, limits.max_links):
            bounded = BoundedAttributes(limits.max_link_attributes, attributes, immutable=True)
            self._links.append(Link(context, bounded))

    def update_name(self, name: str) -> None:
        if self._end_ns is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK: OK is final, UNSET is ignored.
        if self._end_ns is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        cls = type(exception)
        module = cls.__module__
        event: dict[str, types.AttributeValue] = {
            "exception.type": (
                f"{module}.{cls.__qualname__}"
                if module and module != "builtins"
                else cls.__qualname__
            ),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_ns is not None:
            return
        self._end_ns = end_time or time_ns()
        attributes: Mapping[str, types.AttributeValue] = self._base
        if self._attributes:
            attributes = {**self._base, **self._attributes}
        recorder = self._recorder
        recorder.processor.on_end(
            ReadableSpan(
                self._name,
                self._context,
                self._parent,
                recorder.resource,
                attributes,
                tuple(self._events),
                tuple(self._links),
                self._kind,
                None,
                self._status,
                self._start_ns,
                self._end_ns,
                instrumentation_scope=_SCOPE,
            )
        )


class ServerSpans:
    """Starts the SERVER span of each call of one method."""

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, types.AttributeValue],
        provider: trace.TracerProvider | None = None,
    ) -> None:
        self.name = name
        # Validated once: every span of the method shares this mapping (read-only).
        self._base = dict(BoundedAttributes(attributes=attributes, immutable=True))
        self._provider = provider  # None: the global provider, looked up at each call
        self._recorder: tuple[object, _Recorder | None] = (None, None)

    def _recorder_for(self, provider: trace.TracerProvider) -> _Recorder | None:
        """The recorder of an SDK provider; None for any other (no-op, proxy, disabled)."""
        if self._recorder[0] is provider:
            return self._recorder[1]
        recorder = None
        if isinstance(provider, TracerProvider):
            tracer = provider.get_tracer(_SCOPE.name)
            if isinstance(tracer, Tracer):  # not OTEL_SDK_DISABLED's no-op tracer
                recorder = _Recorder(provider, tracer)
        self._recorder = (provider, recorder)
        return recorder

    def start(self, parent: otel_context.Context, links: Sequence[Link] = ()) -> trace.Span:
        """The call's span, child of the span in `parent` if there is one (not made current)."""
        provider = self._provider or trace.get_tracer_provider()
        recorder = self._recorder_for(provider)
        if recorder is None:
            tracer = trace.get_tracer(_SCOPE.name, tracer_provider=provider)
            return tracer.start_span(
                self.name, context=parent, kind=SpanKind.SERVER, attributes=self._base
            )
        parent_span = trace.get_current_span(parent).get_span_context()
        ids = recorder.id_generator
        if parent_span.is_valid:
            parent_ctx: SpanContext | None = parent_span
            trace_id = parent_span.trace_id
            random_id = parent_span.trace_flags.random_trace_id
        else:
            parent_ctx = None
            trace_id = ids.generate_trace_id()
            random_id = ids.is_trace_id_random()
        sampled = recorder.sampler.should_sample(
            parent, trace_id, self.name, SpanKind.SERVER, self._base, links
        )
        flags = _SAMPLED if sampled.decision.is_sampled() else _NOT_SAMPLED
        if random_id:
            flags = TraceFlags(flags | TraceFlags.RANDOM_TRACE_ID)
        context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=sampled.trace_state,
        )
        if not sampled.decision.is_recording():
            return trace.NonRecordingSpan(context)
        # The sampler's attributes: ours (as validated), plus any it adds.
        base = sampled.attributes if sampled.attributes is not None else self._base
        return _ServerSpan(recorder, self.name, context, parent_ctx, base, SpanKind.SERVER)
