"""Broker down on Kafka: the outbox keeps the events, the relay waits and retries, and nothing
is lost once the broker (Tansu with persistent S3 storage) is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lgsp.bus import BusError, open_bus
from lgsp.db import create_engine, migrate
from lgsp.outbox import OutboxRelay
from tests.lgsp.storage.support import (
    MIGRATIONS,
    consume_until,
    effect_counts,
    pending,
    processed,
    write_events,
)

N = 6


@pytest.mark.kafka
@pytest.mark.slow
async def test_relay_survives_broker_restart_and_nothing_is_lost(
    restartable_tansu: object, tmp_path: Path
) -> None:
    broker = restartable_tansu
    db_url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(db_url, MIGRATIONS)
    engine = create_engine(db_url)
    bus = open_bus(
        f"kafka://{broker.bootstrap}",  # type: ignore[attr-defined]
        publish_timeout=1.0,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        broker.stop()  # type: ignore[attr-defined]
        ids = write_events(engine, N)
        relay = OutboxRelay(
            engine,
            bus,
            batch_size=4,
            poll_interval=0.1,
            publish_attempts=2,
            backoff_base=0.1,
            backoff_max=0.2,
        )
        with pytest.raises(BusError):
            await relay.relay_once()
        assert pending(engine) == N

        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(0.5)
            assert not task.done() and pending(engine) == N
            await asyncio.to_thread(broker.start)  # type: ignore[attr-defined]
            for _ in range(400):
                if pending(engine) == 0:
                    break
                await asyncio.sleep(0.1)
            assert pending(engine) == 0
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

        # The published records survive another broker restart, and each is handled once.
        await asyncio.to_thread(broker.restart)  # type: ignore[attr-defined]
        await consume_until(engine, bus, lambda: processed(engine) == N, limit=60)
        assert effect_counts(engine) == dict.fromkeys(ids, 1)
    finally:
        await bus.close()
        engine.dispose()
