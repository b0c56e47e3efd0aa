"""Kafka-backend specifics: a broker that is down, and data that survives a broker restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from lgsp.bus import BusError, Message, TopicPartition, open_bus
from lgsp.bus.kafka import KafkaBus
from tests.fixtures import free_port
from tests.fixtures.kafka import RestartableTansu, start_tansu, stop_process
from tests.lgsp.bus.conftest import KAFKA_OPTIONS, drain

pytestmark = pytest.mark.kafka


def test_kafka_url_parsing() -> None:
    bus = open_bus("kafka://10.0.0.1:9092,10.0.0.2:9093", client_id="docs", partitions=6)
    assert isinstance(bus, KafkaBus)
    assert bus.bootstrap_servers == ["10.0.0.1:9092", "10.0.0.2:9093"]
    assert bus.default_partitions == 6 and bus.client_id == "docs"
    with pytest.raises(BusError):
        open_bus("kafka://")


async def test_publish_to_a_down_broker_retries_then_raises() -> None:
    bus = open_bus(f"kafka://127.0.0.1:{free_port()}", publish_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(BusError, match="attempts"):
        await bus.publish("nowhere", "k", b"v")
    elapsed = time.monotonic() - started
    await bus.close()
    assert 1.5 < elapsed < 6.0, f"gave up after {elapsed:.1f} s, bound is 2 s"


@pytest.mark.slow
async def test_publish_waits_for_a_broker_that_comes_up(tmp_path: Path) -> None:
    port = free_port()
    bus = open_bus(f"kafka://127.0.0.1:{port}", publish_timeout=20.0, **KAFKA_OPTIONS)
    topic = f"late-{uuid.uuid4().hex[:6]}"
    publishing = asyncio.create_task(bus.publish(topic, "k", b"made it"))
    await asyncio.sleep(1.5)
    assert not publishing.done(), "publish returned although no broker was there"
    with (tmp_path / "tansu.log").open("wb") as log:
        proc = await asyncio.to_thread(start_tansu, port, "memory://tansu/", None, log)
    try:
        await asyncio.wait_for(publishing, 20)
        c = bus.consumer("g", [topic])
        got = await drain(c, lambda g: len(g) >= 1)
        await c.close()
        assert [m.value for m in got] == [b"made it"]
    finally:
        await bus.close()
        stop_process(proc)


@pytest.mark.slow
async def test_records_and_offsets_survive_a_broker_restart(
    restartable_tansu: RestartableTansu,
) -> None:
    url = f"kafka://{restartable_tansu.bootstrap}"
    topic, group = "durable", "g-durable"
    bus = open_bus(url, publish_timeout=20.0, **KAFKA_OPTIONS)
    await bus.ensure_topic(topic, 2)
    await bus.publish_many([(topic, f"k{i}", f"v{i}".encode(), None) for i in range(20)])
    c = bus.consumer(group, [topic])
    got = await drain(c, lambda g: len(g) >= 20)
    await c.commit(_upto(got, 10))
    await c.close()
    await bus.close()

    await asyncio.to_thread(restartable_tansu.restart)

    bus = open_bus(url, publish_timeout=20.0, **KAFKA_OPTIONS)
    try:
        await bus.publish(topic, "k0", b"after-restart")
        c = bus.consumer(group, [topic])
        handled = {m.value for m in got[:10]}
        expected = {f"v{i}".encode() for i in range(20)} - handled | {b"after-restart"}
        again = await drain(c, lambda g: {m.value for m in g} >= expected)
        await c.close()
    finally:
        await bus.close()
    assert sorted(m.value for m in again) == sorted(expected)


def _upto(msgs: list[Message], n: int) -> dict[TopicPartition, int]:
    """Offsets to commit after handling the first `n` records (a prefix of each partition)."""
    out: dict[TopicPartition, int] = {}
    for m in msgs[:n]:
        out[TopicPartition(m.topic, m.partition)] = m.offset + 1
    return out
