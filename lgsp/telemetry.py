"""OpenTelemetry set-up and W3C trace-context propagation for gRPC metadata and event headers.

The propagation helpers are the one way to move a trace across a process boundary:
`trace_headers()` captures the current context as W3C headers (stored with an outbox row or
put on a bus record), `context_from_headers()` restores it on the consumer side.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate


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
