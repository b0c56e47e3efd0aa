"""Decoding OTLP/HTTP trace exports (protobuf, or the OTLP JSON encoding) into SpanRecords.

Everything here is untrusted input: errors become OtlpError (HTTP 400), sizes are bounded
before decompression finishes, and numbers are clamped to what SQLite can store.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from console.store import SpanRecord

MAX_INT64 = 2**63 - 1
MAX_TEXT = 2048  # longest span name / attribute text kept
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128


class OtlpError(ValueError):
    """The body is not a valid OTLP trace export."""


class TooLarge(ValueError):
    """The body (after decompression) exceeds the configured limit."""


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in {"", "identity"}:
        return body
    if encoding not in {"gzip", "deflate"}:
        raise OtlpError(f"unsupported Content-Encoding {encoding!r}")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)  # a zip bomb stops at limit + 1 bytes
    except zlib.error as exc:
        raise OtlpError(f"bad {encoding} body: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TooLarge(f"decompressed body exceeds {limit} bytes")
    return out


def parse_request(body: bytes, content_type: str) -> tuple[ExportTraceServiceRequest, bool]:
    """(request, is_json) from a protobuf or JSON body."""
    media = content_type.split(";")[0].strip().lower()
    req = ExportTraceServiceRequest()
    if media == "application/json":
        try:
            data = json.loads(body)
            _hex_ids_to_base64(data)
            json_format.ParseDict(data, req, ignore_unknown_fields=True)
        except (ValueError, TypeError, json_format.ParseError, RecursionError) as exc:
            raise OtlpError(f"invalid OTLP JSON: {exc}") from None
        return req, True
    if media not in {"application/x-protobuf", "application/protobuf", ""}:
        raise OtlpError(f"unsupported Content-Type {content_type!r}")
    try:
        req.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise OtlpError(f"invalid OTLP protobuf: {exc}") from None
    return req, False


def response_body(is_json: bool) -> tuple[bytes, str]:
    if is_json:
        return b"{}", "application/json"
    return ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"


def spans_of(req: ExportTraceServiceRequest) -> list[SpanRecord]:
    out: list[SpanRecord] = []
    for rs in req.resource_spans:
        resource = _attributes(rs.resource.attributes)
        service = _text(resource.get("service.name") or "unknown")
        for ss in rs.scope_spans:
            for span in ss.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise OtlpError("span with an invalid trace_id or span_id")
                start = min(span.start_time_unix_nano, MAX_INT64)
                end = max(start, min(span.end_time_unix_nano, MAX_INT64))
                out.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex()
                        if len(span.parent_span_id) == 8
                        else "",
                        name=_text(span.name),
                        service=service,
                        kind=int(span.kind),
                        start_ns=start,
                        end_ns=end,
                        status_code=int(span.status.code),
                        status_message=_text(span.status.message),
                        attributes=_attributes(span.attributes),
                        events=[
                            {
                                "name": _text(e.name),
                                "time_ns": min(e.time_unix_nano, MAX_INT64),
                                "attributes": _attributes(e.attributes),
                            }
                            for e in list(span.events)[:MAX_EVENTS]
                        ],
                    )
                )
    return out


def _text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in list(kvs)[:MAX_ATTRIBUTES]:
        assert isinstance(kv, KeyValue)
        out[_text(kv.key)] = _value(kv.value)
    return out


def _value(v: AnyValue, depth: int = 0) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return _text(v.string_value)
    if which == "bytes_value":
        return _text(v.bytes_value.hex())
    if which in {"bool_value", "double_value"}:
        return getattr(v, which)
    if which == "int_value":
        return int(v.int_value)
    if depth > 4:
        return "…"
    if which == "array_value":
        return [_value(x, depth + 1) for x in list(v.array_value.values)[:MAX_ATTRIBUTES]]
    if which == "kvlist_value":
        return {
            _text(kv.key): _value(kv.value, depth + 1)
            for kv in list(v.kvlist_value.values)[:MAX_ATTRIBUTES]
        }
    return None


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                value = item.get(key)
                if isinstance(value, str) and value:
                    try:
                        item[key] = base64.b64encode(bytes.fromhex(value)).decode()
                    except ValueError:
                        raise OtlpError(f"{key} is not hex: {value[:40]!r}") from None
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


__all__ = [
    "OtlpError",
    "TooLarge",
    "decompress",
    "parse_request",
    "response_body",
    "spans_of",
]
