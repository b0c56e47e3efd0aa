"""The outbox relay: order, headers, marking sent, a broker that is down, two relays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from lgsp import events
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.bus import Bus, BusError, Headers, open_bus
from lgsp.db import create_engine, migrate
from lgsp.outbox import OutboxRelay, pending_count, purge_sent
from tests.lgsp.storage.support import (
    MIGRATIONS,
    TOPIC,
    SwitchableBus,
    bus_url,
    drain_relay,
    pending,
    read_topic,
    write_events,
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[Engine]:
    migrate(db_url, MIGRATIONS)
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    b = open_bus(bus_url(tmp_path))
    yield b
    await b.close()


async def test_relay_publishes_in_order_and_marks_sent(engine: Engine, bus: Bus) -> None:
    ids = write_events(engine, 7)
    relay = OutboxRelay(engine, bus, batch_size=3)
    assert await relay.relay_once() == 3
    assert pending(engine) == 4
    assert await drain_relay(relay) == 4
    assert pending(engine) == 0 and pending_count(engine) == 0
    assert await relay.relay_once() == 0  # nothing published twice

    records = await read_topic(bus, TOPIC)
    assert sorted(r.headers[events.HEADER_EVENT_ID].decode() for r in records) == sorted(ids)
    by_id = {r.headers[events.HEADER_EVENT_ID].decode(): r for r in records}
    for i, event_id in enumerate(ids):
        r = by_id[event_id]
        env = events.decode(r.value)
        assert env.id == event_id
        assert r.key == env.subject.encode() == ("a", "b", "c")[i % 3].encode()
        assert r.headers[events.HEADER_EVENT_TYPE] == b"lgsp.api.diagnostics.v1.EchoRequest"
        assert events.payload_of(env) == EchoRequest(message=f"event {i}")
    # Per subject, records keep the order the events were written in.
    for subject in ("a", "b", "c"):
        got = [
            r.headers[events.HEADER_EVENT_ID].decode()
            for r in sorted(
                (r for r in records if r.key == subject.encode()), key=lambda r: r.offset
            )
        ]
        assert got == [e for i, e in enumerate(ids) if ("a", "b", "c")[i % 3] == subject]


async def test_purge_deletes_only_sent_rows(engine: Engine, bus: Bus) -> None:
    write_events(engine, 3)
    await drain_relay(OutboxRelay(engine, bus))
    write_events(engine, 1, subjects=("later",), first=3)
    assert purge_sent(engine, older_than=timedelta(0)) == 3
    assert pending(engine) == 1
    assert await OutboxRelay(engine, bus).relay_once() == 1


async def test_broker_down_keeps_events_and_delivers_when_back(
    engine: Engine, tmp_path: Path
) -> None:
    bus = SwitchableBus(bus_url(tmp_path))
    try:
        await bus.ensure_topic(TOPIC)
        await bus.down()
        ids = write_events(engine, 5)
        relay = OutboxRelay(
            engine,
            bus,
            batch_size=2,
            poll_interval=0.05,
            publish_attempts=3,
            backoff_base=0.01,
            backoff_max=0.02,
        )
        # One batch waits through its bounded retries, then gives up; the rows stay unsent.
        with pytest.raises(BusError):
            await relay.relay_once()
        assert bus.failed_calls == 3
        assert pending(engine) == 5

        # The running relay survives the outage and catches up once the broker is back.
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await asyncio.sleep(0.3)
        assert not task.done()
        assert pending(engine) == 5
        bus.up()
        for _ in range(100):
            if pending(engine) == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert pending(engine) == 0
        records = await read_topic(bus, TOPIC)
        assert sorted(r.headers[events.HEADER_EVENT_ID].decode() for r in records) == sorted(ids)
    finally:
        await bus.close()


class SlowBus(Bus):
    """Delays every publish, so two relays overlap."""

    def __init__(self, inner: Bus) -> None:
        self.inner = inner
        self.published: list[bytes] = []

    async def publish(
        self, topic: str, key: bytes | str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | str | None, bytes, Headers | None]]
    ) -> None:
        await asyncio.sleep(0.3)
        await self.inner.publish_many(records)
        self.published.extend(r[2] for r in records)

    async def publish_to_each_partition(
        self, topic: str, value: bytes, headers: Headers | None = None
    ) -> int:
        return await self.inner.publish_to_each_partition(topic, value, headers)

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        await self.inner.ensure_topic(topic, partitions)

    async def topics(self) -> list[str]:
        return await self.inner.topics()

    def consumer(self, group: str, topics: Sequence[str], **options: object):  # type: ignore[no-untyped-def]
        return self.inner.consumer(group, topics, **options)

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.postgres
async def test_two_relays_on_postgres_skip_locked_rows(postgres_url: str, bus: Bus) -> None:
    migrate(postgres_url, MIGRATIONS)
    eng = create_engine(postgres_url)
    try:
        write_events(eng, 8)
        slow = SlowBus(bus)
        a = OutboxRelay(eng, slow, batch_size=4)
        b = OutboxRelay(eng, slow, batch_size=4)
        counts = await asyncio.gather(a.relay_once(), b.relay_once())
        # Each relay took a different batch: every row published exactly once.
        assert sorted(counts) == [4, 4]
        assert len(slow.published) == len(set(slow.published)) == 8
        assert pending(eng) == 0
    finally:
        eng.dispose()


async def test_an_idle_relay_reads_less_often_and_any_commit_here_wakes_it(
    engine: Engine, bus: Bus
) -> None:
    relay = OutboxRelay(engine, bus, poll_interval=0.05, idle_poll_max=1.0)
    reads = 0
    read = asyncio.Event()
    relay_once = relay.relay_once

    async def counted() -> int:
        nonlocal reads
        reads += 1
        try:
            return await relay_once()
        finally:
            read.set()  # the read is over: the relay waits next

    relay.relay_once = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(1.6)
        # 0.05 s polls would be 32 reads; backing off to 1 s they are 0.1+0.2+0.4+0.8: 5.
        assert 2 <= reads <= 7, reads
        # Right after a read the next one is 2 s or more away: only a wake explains a quick
        # delivery. A unit of work that tells nobody (no after_commit call) wakes the relay.
        relay.idle_poll_max = 30.0
        read.clear()
        await read.wait()
        ids = await asyncio.to_thread(write_events, engine, 1)
        started = asyncio.get_running_loop().time()
        while pending(engine):
            assert asyncio.get_running_loop().time() - started < 0.5, "not woken by the commit"
            await asyncio.sleep(0.01)
        records = await read_topic(bus, TOPIC)
        assert [r.headers[events.HEADER_EVENT_ID].decode() for r in records] == ids
    finally:
        stop.set()
        await task
