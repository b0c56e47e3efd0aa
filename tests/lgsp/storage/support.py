"""Helpers shared by the storage/outbox/inbox tests: a test service schema, event writers,
relay and consumer drivers, and forked worker processes for the crash tests."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.bus import Bus, BusError, Consumer, Headers, Message, open_bus, run_consumer
from lgsp.db import UnitOfWork, create_engine, outbox_table, processed_events_table
from lgsp.inbox import EventProcessor, Handler, ReceivedEvent
from lgsp.outbox import OutboxRelay

MIGRATIONS = Path(__file__).parent / "migrations"
TOPIC = "lgsp.test.v1"
DLQ = f"{TOPIC}.dlq"
GROUP = "test-consumer"

metadata = sa.MetaData()
notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
)
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
)


def bus_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bus.db'}"


def write_events(
    engine: Engine, n: int, subjects: Sequence[str] = ("a", "b", "c"), first: int = 0
) -> list[str]:
    """n committed events (one note row each), round-robin over subjects; their ids."""
    ids = []
    for i in range(first, first + n):
        with UnitOfWork(engine, source="test") as uow:
            uow.session.execute(sa.insert(notes).values(id=f"n{i}", text=f"note {i}"))
            env = uow.emit(
                EchoRequest(message=f"event {i}"), subject=subjects[i % len(subjects)], topic=TOPIC
            )
            uow.commit()
        ids.append(env.id)
    return ids


def effect_handler(event: ReceivedEvent, uow: UnitOfWork) -> None:
    """The effect the tests count: one row per committed handler run."""
    uow.session.execute(sa.insert(effects).values(event_id=event.id, subject=event.subject))


def scalar(engine: Engine, q: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()


def pending(engine: Engine) -> int:
    q = sa.select(sa.func.count()).where(outbox_table.c.sent_at.is_(None))
    return int(scalar(engine, q))


def processed(engine: Engine, consumer: str = GROUP) -> int:
    t = processed_events_table
    return int(scalar(engine, sa.select(sa.func.count()).where(t.c.consumer == consumer)))


def effect_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(effects.c.event_id, sa.func.count()).group_by(effects.c.event_id)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


async def drain_relay(relay: OutboxRelay) -> int:
    total = 0
    while n := await relay.relay_once():
        total += n
    return total


async def read_topic(
    bus: Bus, topic: str, *, idle: float = 0.5, limit: float = 10.0
) -> list[Message]:
    """Every record of a topic, read by a fresh consumer group until it stays idle."""
    await bus.ensure_topic(topic)
    consumer: Consumer = bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    out: list[Message] = []
    deadline = time.monotonic() + limit
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle and time.monotonic() < deadline:
            batch = await consumer.poll(timeout=0.1)
            if batch:
                out.extend(batch)
                last = time.monotonic()
    finally:
        await consumer.close()
    return out


async def consume_until(
    engine: Engine,
    bus: Bus,
    done: Callable[[], bool],
    *,
    handlers: dict[Any, Handler] | None = None,
    limit: float = 20.0,
    **options: Any,
) -> EventProcessor:
    """Run an EventProcessor under run_consumer until done() (checked in a thread) or limit."""
    options.setdefault("backoff_base", 0.01)
    options.setdefault("backoff_max", 0.05)
    processor = EventProcessor(
        engine,
        handlers if handlers is not None else {EchoRequest: effect_handler},
        bus,
        consumer_name=GROUP,
        **options,
    )
    await bus.ensure_topic(TOPIC)
    # A short session lets a new member take over quickly from one that was SIGKILLed.
    consumer = bus.consumer(GROUP, [TOPIC], session_timeout_ms=1000, heartbeat_interval_ms=200)
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(consumer, processor, stop, commit_interval=0.05))
    deadline = time.monotonic() + limit
    try:
        while not await asyncio.to_thread(done):
            if task.done():
                await task  # re-raises what stopped it
                raise AssertionError("consumer stopped before it was done")
            if time.monotonic() > deadline:
                raise AssertionError("consumer did not finish in time")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    return processor


class SwitchableBus(Bus):
    """A bus whose broker can be taken down and brought back: down() closes the embedded bus
    (every call fails like a dead broker), up() opens the same file again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.inner: Bus | None = open_bus(url)
        self.failed_calls = 0

    def _bus(self) -> Bus:
        if self.inner is None:
            self.failed_calls += 1
            raise BusError("broker unavailable")
        return self.inner

    async def down(self) -> None:
        if self.inner is not None:
            await self.inner.close()
            self.inner = None

    def up(self) -> None:
        self.inner = self.inner or open_bus(self.url)

    async def publish(
        self, topic: str, key: bytes | str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        await self._bus().publish(topic, key, value, headers)

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | str | None, bytes, Headers | None]]
    ) -> None:
        await self._bus().publish_many(records)

    async def publish_to_each_partition(
        self, topic: str, value: bytes, headers: Headers | None = None
    ) -> int:
        return await self._bus().publish_to_each_partition(topic, value, headers)

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        await self._bus().ensure_topic(topic, partitions)

    async def topics(self) -> list[str]:
        return await self._bus().topics()

    def consumer(self, group: str, topics: Sequence[str], **options: object) -> Consumer:
        return self._bus().consumer(group, topics, **options)

    async def close(self) -> None:
        await self.down()


# -- forked workers for the crash tests ---------------------------------------------------------


def _child(faults: str | None, fn: Callable[..., Awaitable[None]], args: tuple[Any, ...]) -> None:
    if faults:
        os.environ["LGSP_FAULTS"] = faults
    else:
        os.environ.pop("LGSP_FAULTS", None)
    try:
        asyncio.run(fn(*args))
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def run_child(
    fn: Callable[..., Awaitable[None]], *args: Any, faults: str | None, timeout: float = 30.0
) -> int:
    """Run fn(*args) in a forked process (fresh engines and bus in there); its exit code,
    negative for the signal that ended it."""
    p = multiprocessing.get_context("fork").Process(target=_child, args=(faults, fn, args))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError(f"worker {fn.__name__} hung")
    assert p.exitcode is not None
    return p.exitcode


async def relay_worker(db_url: str, bus_url: str, batch_size: int) -> None:
    engine = create_engine(db_url)
    bus = open_bus(bus_url)
    try:
        await drain_relay(OutboxRelay(engine, bus, batch_size=batch_size))
    finally:
        await bus.close()
        engine.dispose()


async def consumer_worker(db_url: str, bus_url: str, expected: int, stats: str) -> None:
    """Consume until `expected` events are processed; write the outcome counts to `stats`."""
    engine = create_engine(db_url)
    bus = open_bus(bus_url)
    try:
        p = await consume_until(engine, bus, lambda: processed(engine) >= expected)
        await asyncio.to_thread(Path(stats).write_text, json.dumps(p.counts))
    finally:
        await bus.close()
        engine.dispose()
