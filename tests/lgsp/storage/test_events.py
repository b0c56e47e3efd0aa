"""The event codec and schema registry (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lgsp import events
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest

TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


def test_round_trip_and_registry_lookup() -> None:
    when = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)
    env = events.make_envelope(
        EchoRequest(message="xin chào"),
        source="documents",
        subject="doc-1",
        event_id="e1",
        time=when,
        trace_context={"traceparent": TRACEPARENT},
    )
    back = events.decode(events.encode(env))
    assert (back.id, back.type, back.source, back.subject) == (
        "e1",
        "lgsp.api.diagnostics.v1.EchoRequest",
        "documents",
        "doc-1",
    )
    assert back.time.ToDatetime(tzinfo=UTC) == when
    assert events.payload_of(back) == EchoRequest(message="xin chào")
    assert events.envelope_headers(back)[events.HEADER_EVENT_SUBJECT] == "doc-1"
    assert events.envelope_headers(back)["traceparent"].startswith("00-111")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", events.BadEnvelope),  # parses, but has no id/type/subject
        (b"\xff\xff\xff", events.BadEnvelope),
    ],
)
def test_decode_rejects_non_envelopes(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        events.decode(data)


def test_unknown_type_and_bad_payload() -> None:
    env = events.make_envelope(EchoRequest(), source="s", subject="x")
    env.type = "lgsp.api.nowhere.v1.Missing"
    with pytest.raises(events.UnknownEventType) as e:
        events.payload_of(env)
    assert e.value.reason == "unknown-type"
    env.type = "lgsp.api.diagnostics.v1.EchoRequest"
    env.payload = b"\xff\xff"
    with pytest.raises(events.BadPayload):
        events.payload_of(env)


def test_topic_names() -> None:
    assert events.topic_for("documents") == "lgsp.documents.v1"
    assert events.dlq_topic("lgsp.documents.v1") == "lgsp.documents.v1.dlq"
    assert events.topic_for_type("lgsp.api.dossiers.v1.DossierAccepted") == "lgsp.dossiers.v1"
    with pytest.raises(ValueError):
        events.topic_for_type("google.protobuf.Timestamp")
    with pytest.raises(ValueError):
        events.topic_for("Bad Area")
    with pytest.raises(ValueError):
        events.make_envelope(EchoRequest(), source="s", subject="")
