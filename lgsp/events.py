"""Event codec and schema registry.

Every event on the bus is an `Envelope` (lgsp.api.events.v1) whose `type` is the full proto
name of its payload message. The registry is protobuf's own default descriptor pool: importing
every generated module under `lgsp.api` registers every event type, so `payload_of()` can find
the class for any type name without a hand-kept table.

Topics are named `lgsp.<area>.v1` after the proto package of the payload
(`lgsp.api.documents.v1.DocumentIssued` → `lgsp.documents.v1`); a topic's dead letters go to
`<topic>.dlq`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from lgsp import telemetry
from lgsp.api.events.v1.envelope_pb2 import Envelope
from lgsp.bus.base import DLQ_SUFFIX

__all__ = [
    "HEADER_EVENT_ID",
    "HEADER_EVENT_SOURCE",
    "HEADER_EVENT_SUBJECT",
    "HEADER_EVENT_TYPE",
    "BadEnvelope",
    "BadPayload",
    "Envelope",
    "MalformedEvent",
    "UnknownEventType",
    "decode",
    "dlq_topic",
    "encode",
    "envelope_headers",
    "make_envelope",
    "message_class",
    "payload_of",
    "topic_for",
    "topic_for_type",
    "type_name",
]

# Record headers follow the CloudEvents Kafka binding names, so generic tools can read them.
HEADER_EVENT_ID = "ce_id"
HEADER_EVENT_TYPE = "ce_type"
HEADER_EVENT_SOURCE = "ce_source"
HEADER_EVENT_SUBJECT = "ce_subject"

_AREA = re.compile(r"^[a-z][a-z0-9_]*$")
_API_TYPE = re.compile(r"^lgsp\.api\.([a-z][a-z0-9_]*)\.(v[0-9]+)\.[A-Za-z_][A-Za-z0-9_.]*$")


class MalformedEvent(Exception):
    """A record that is not a usable event: bad envelope, unknown type, unparsable payload.

    `reason` is a short machine-readable cause used in dead-letter headers.
    """

    reason = "malformed"


class UnknownEventType(MalformedEvent):
    """Envelope.type names no message in the schema registry."""

    reason = "unknown-type"


class BadEnvelope(MalformedEvent):
    reason = "bad-envelope"


class BadPayload(MalformedEvent):
    reason = "bad-payload"


def topic_for(area: str, version: int = 1) -> str:
    """Topic of an area's events, e.g. topic_for("documents") == "lgsp.documents.v1"."""
    if not _AREA.match(area):
        raise ValueError(f"invalid area name {area!r}")
    return f"lgsp.{area}.v{version}"


def dlq_topic(topic: str) -> str:
    """Dead-letter topic of `topic`."""
    return f"{topic}{DLQ_SUFFIX}"


def type_name(message: Message | type[Message]) -> str:
    """Full proto name of a message or message class (the Envelope.type value)."""
    return str(message.DESCRIPTOR.full_name)


def topic_for_type(name: str) -> str:
    """Default topic of an event type, from its proto package `lgsp.api.<area>.<vN>`."""
    m = _API_TYPE.match(name)
    if not m:
        raise ValueError(
            f"event type {name!r} is not in a lgsp.api.<area>.vN package: name a topic"
        )
    return f"lgsp.{m.group(1)}.{m.group(2)}"


_registry_lock = threading.Lock()
_registry_loaded = False


def _load_registry() -> None:
    """Import every generated module under lgsp.api so the default pool knows all types."""
    global _registry_loaded
    if _registry_loaded:
        return
    with _registry_lock:
        if _registry_loaded:
            return
        import lgsp.api

        for info in pkgutil.walk_packages(lgsp.api.__path__, prefix="lgsp.api."):
            if info.name.endswith("_pb2"):
                importlib.import_module(info.name)
        _registry_loaded = True


def message_class(name: str) -> type[Message]:
    """The generated class for a full proto message name; UnknownEventType if none."""
    _load_registry()
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError as e:
        raise UnknownEventType(f"unknown event type {name!r}") from e
    return message_factory.GetMessageClass(desc)


def enum_number(value: int | None) -> Any:
    """A domain enum (an IntEnum with the contract's numbers) as a proto enum field's value.
    The generated stubs type those fields with a NewType the domain does not know; the wire
    holds the same number."""
    return int(value or 0)


def make_envelope(
    payload: Message,
    *,
    source: str,
    subject: str,
    event_id: str | None = None,
    time: datetime | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> Envelope:
    """Wrap a payload. Trace context defaults to the current span's, captured now."""
    if not subject:
        raise ValueError("an event needs a subject (the aggregate id, used as partition key)")
    env = Envelope(
        id=event_id or str(uuid.uuid4()),
        type=type_name(payload),
        source=source,
        subject=subject,
        trace_context=dict(telemetry.trace_headers() if trace_context is None else trace_context),
        payload=payload.SerializeToString(),
    )
    env.time.FromDatetime(time or datetime.now(UTC))
    return env


def encode(envelope: Envelope) -> bytes:
    return envelope.SerializeToString()


def decode(data: bytes) -> Envelope:
    """Parse and validate an envelope; BadEnvelope if it is not one."""
    env = Envelope()
    try:
        env.ParseFromString(data)
    except (DecodeError, ValueError) as e:
        raise BadEnvelope(f"envelope does not parse: {e}") from e
    # Protobuf accepts many byte strings (even empty ones); require the fields we rely on.
    missing = [f for f in ("id", "type", "subject") if not getattr(env, f)]
    if missing:
        raise BadEnvelope(f"envelope lacks {', '.join(missing)}")
    return env


def payload_of(envelope: Envelope) -> Message:
    """The payload message; UnknownEventType or BadPayload when it cannot be read."""
    cls = message_class(envelope.type)
    msg = cls()
    try:
        msg.ParseFromString(envelope.payload)
    except (DecodeError, ValueError) as e:
        raise BadPayload(f"payload of {envelope.type} does not parse: {e}") from e
    return msg


def envelope_headers(envelope: Envelope) -> dict[str, str]:
    """Record headers for an envelope: event id/type/source/subject and its trace context."""
    headers = dict(envelope.trace_context)
    headers.update(
        {
            HEADER_EVENT_ID: envelope.id,
            HEADER_EVENT_TYPE: envelope.type,
            HEADER_EVENT_SOURCE: envelope.source,
            HEADER_EVENT_SUBJECT: envelope.subject,
        }
    )
    return headers
