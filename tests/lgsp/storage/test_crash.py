"""Crash tests: a relay or a consumer process is SIGKILLed at each step, then restarted;
every event's effect must have happened exactly once.

The kill lands at an exact step through lgsp.db.fault_point (LGSP_FAULTS in the child's
environment); the children are forked workers with their own engine and bus connections.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from lgsp.bus import open_bus
from lgsp.db import create_engine, migrate
from tests.lgsp.storage.support import (
    MIGRATIONS,
    TOPIC,
    bus_url,
    consumer_worker,
    effect_counts,
    pending,
    processed,
    read_topic,
    relay_worker,
    run_child,
    write_events,
)

N = 10
BATCH = 4
KILLED = -signal.SIGKILL


def topic_size(url: str) -> int:
    async def count() -> int:
        bus = open_bus(url)
        try:
            return len(await read_topic(bus, TOPIC, idle=0.3))
        finally:
            await bus.close()

    return asyncio.run(count())


# (fault spec, outbox rows still unsent after the kill, records on the topic after the kill)
RELAY_STEPS = {
    "relay.after_read=2": (N - BATCH, BATCH),  # 2nd batch read, nothing published
    "relay.after_publish=2": (N - BATCH, 2 * BATCH),  # 2nd batch published, not marked sent
    "relay.after_mark=2": (N - 2 * BATCH, 2 * BATCH),  # 2nd batch marked sent
}
# (fault spec, events processed when the consumer died)
CONSUMER_STEPS = {
    "inbox.before_handler=4": 3,  # 4th event about to be handled
    "inbox.after_handler=4": 3,  # 4th handler ran, its transaction not committed
    "inbox.after_commit=4": 4,  # 4th committed, offsets not (all) committed to the bus
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", [*RELAY_STEPS, *CONSUMER_STEPS])
def test_kill_at_each_step_every_effect_exactly_once(
    db_url: str, tmp_path: Path, fault: str
) -> None:
    migrate(db_url, MIGRATIONS)
    engine = create_engine(db_url)
    try:
        ids = write_events(engine, N)
        bus = bus_url(tmp_path)

        if fault in RELAY_STEPS:
            assert run_child(relay_worker, db_url, bus, BATCH, faults=fault) == KILLED
            unsent, published = RELAY_STEPS[fault]
            assert pending(engine) == unsent
            assert topic_size(bus) == published
        assert run_child(relay_worker, db_url, bus, BATCH, faults=None) == 0
        assert pending(engine) == 0
        on_topic = topic_size(bus)
        # Killed after publishing, before marking sent: that batch went out twice.
        assert on_topic == (N + BATCH if fault == "relay.after_publish=2" else N)

        if fault in CONSUMER_STEPS:
            assert run_child(consumer_worker, db_url, bus, N, "", faults=fault) == KILLED
            assert processed(engine) == CONSUMER_STEPS[fault]
            assert sum(effect_counts(engine).values()) == CONSUMER_STEPS[fault]
        stats = tmp_path / "stats.json"
        assert run_child(consumer_worker, db_url, bus, N, str(stats), faults=None) == 0

        assert processed(engine) == N
        assert effect_counts(engine) == dict.fromkeys(ids, 1)
        # The restarted consumer did see redeliveries and dropped them.
        counts = json.loads(stats.read_text())
        if fault == "relay.after_publish=2":
            assert counts["duplicate"] >= BATCH
        if fault == "inbox.after_commit=4":
            assert counts["duplicate"] >= 1  # its offset was never committed
        assert counts["handled"] == N - CONSUMER_STEPS.get(fault, 0)
    finally:
        engine.dispose()
