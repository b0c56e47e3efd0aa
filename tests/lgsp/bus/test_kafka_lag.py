"""Lag and dead letters on the Kafka bus, against a real Kafka-wire broker (Tansu): committed
offsets against end offsets through the admin API, shown by the console, and a dead letter
replayed from the console's POST once to its original topic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console.app import create_app
from lgsp.bus import open_bus
from lgsp.bus.base import DLQ_REPLAY_GROUP, TopicPartition
from lgsp.config import load_settings
from lgsp.inbox import DLQ_ORIGINAL_TOPIC
from tests.console.support import FakeOidc, signed_in_asgi
from tests.lgsp.bus.conftest import KAFKA_OPTIONS, drain

pytestmark = pytest.mark.kafka


async def test_lag_per_group_topic_and_partition(tansu: str, name: Callable[[str], str]) -> None:
    topic, group, dlq = name("lag.docs"), name("indexer"), name("lag.docs") + ".dlq"
    bus = open_bus(f"kafka://{tansu}", publish_timeout=20.0, **KAFKA_OPTIONS)
    try:
        await bus.ensure_topic(topic, 2)
        await bus.ensure_topic(dlq, 1)
        await bus.publish_to_each_partition(topic, b"first")  # one record on each partition
        # One batch per record: Tansu answers ListOffsets(latest) with the last batch's base
        # offset + 1 (Kafka with its last offset + 1), so only single-record batches agree.
        for i in range(4):
            await bus.publish(topic, f"k{i}", b"x")
        await bus.publish(dlq, b"k", b"dead", {DLQ_ORIGINAL_TOPIC: topic.encode()})
        consumer = bus.consumer(group, [topic])
        got = await drain(consumer, lambda got: len(got) >= 6)
        first = min((m for m in got if m.partition == 0), key=lambda m: m.offset)
        await consumer.commit({TopicPartition(topic, 0): first.offset + 1})  # its first handled
        await consumer.close()
        on = [sum(1 for m in got if m.partition == p) for p in (0, 1)]

        lag = await bus.lag()  # type: ignore[attr-defined]
        assert lag[(group, topic, 0)] == on[0] - 1
        assert lag[(group, topic, 1)] == on[1]  # no commit on it: counted from the earliest
        assert lag[(DLQ_REPLAY_GROUP, dlq, 0)] == 1
    finally:
        await bus.close()


async def test_console_shows_kafka_lag_and_replays_a_dead_letter_once(
    tansu: str, name: Callable[[str], str], tmp_path: Path
) -> None:
    topic = name("lgsp.exchange.v1")
    dlq = f"{topic}.dlq"
    url = f"kafka://{tansu}"
    bus = open_bus(url, publish_timeout=20.0, **KAFKA_OPTIONS)
    try:
        await bus.ensure_topic(topic, 1)
        await bus.ensure_topic(dlq, 1)
        await bus.publish(dlq, b"k", b"the event", {DLQ_ORIGINAL_TOPIC: topic.encode()})
    finally:
        await bus.close()
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_BUS_URL": url})
    app = create_app(settings, oidc=FakeOidc(settings))  # an operator signed in
    try:
        async with signed_in_asgi(app, settings, http_timeout_s=60) as client:
            page = (await client.get("/bus")).text
            assert (
                f'<td><a href="/deadletters#{dlq}">{dlq}</a></td><td class="num err">1</td>' in page
            )
            reply = await client.post("/deadletters/replay", data={"topic": dlq})
            assert reply.headers["location"] == f"/deadletters?replayed=1&topic={dlq}"
            again = await client.post("/deadletters/replay", data={"topic": dlq})
            assert again.headers["location"] == f"/deadletters?replayed=0&topic={dlq}"
    finally:
        await app.state.lag_reader.close()
    bus = open_bus(url, publish_timeout=20.0, **KAFKA_OPTIONS)
    try:
        consumer = bus.consumer(name("reader"), [topic])
        back = await drain(consumer, lambda got: len(got) >= 1)
        back += await consumer.poll(timeout=1.0)  # nothing more: replayed once
        await consumer.close()
        assert [m.value for m in back] == [b"the event"]
        assert (await bus.lag())[(DLQ_REPLAY_GROUP, dlq, 0)] == 0  # type: ignore[attr-defined]
    finally:
        await bus.close()
