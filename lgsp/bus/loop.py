"""The consumer loop: hand each record to an async handler, commit only what was handled."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lgsp.bus.base import Consumer, Message, TopicPartition
from lgsp.metrics import BUS_CONSUMED

log = logging.getLogger(__name__)


async def run_consumer(
    consumer: Consumer,
    handler: Callable[[Message], Awaitable[None]],
    stop: asyncio.Event,
    *,
    commit_interval: float = 0.2,
    poll_timeout: float = 1.0,
    max_records: int = 500,
) -> None:
    """Poll `consumer` until `stop` is set, awaiting `handler` for each record in order.

    Offsets are committed after the handler returned, batched every `commit_interval`
    seconds. On stop the loop commits what was handled and closes the consumer. If the
    handler raises, the loop commits the records handled before it, closes the consumer and
    re-raises: the failed record and the rest of the batch are delivered again to whoever
    consumes the partition next (at-least-once).
    """
    handled: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()
    group = str(getattr(consumer, "group", ""))
    consumed: dict[str, Any] = {}  # topic -> its counter child (labels() costs a lookup)

    async def flush() -> None:
        nonlocal last_commit
        if handled:
            await consumer.commit(dict(handled))
            handled.clear()
        last_commit = time.monotonic()

    try:
        while not stop.is_set():
            batch = await consumer.poll(timeout=poll_timeout, max_records=max_records)
            for msg in batch:
                if stop.is_set():
                    break  # the rest is redelivered; it was never handed to the handler
                try:
                    await handler(msg)
                except BaseException:
                    await flush()
                    raise
                handled[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
                counter = consumed.get(msg.topic)
                if counter is None:
                    counter = consumed[msg.topic] = BUS_CONSUMED.labels(group, msg.topic)
                counter.inc()
            if time.monotonic() - last_commit >= commit_interval:
                await flush()
        await flush()
    finally:
        try:
            await consumer.close()
        except Exception:
            log.exception("closing consumer failed")
