"""The embedded bus's doorbell: an idle consumer costs almost no CPU, and a record published by
another process still reaches it at once."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from lgsp.bus import open_bus
from lgsp.bus.embedded import EmbeddedBus

ROOT = Path(__file__).resolve().parents[3]
PUBLISH = """
import asyncio, sys
from lgsp.bus import open_bus
async def main():
    bus = open_bus("sqlite:///" + sys.argv[1])
    await bus.publish("bell-t", b"k", b"v")
    await bus.close()
asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
async def test_other_process_publish_wakes_an_idle_consumer_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = open_bus(f"sqlite:///{path}")
    assert isinstance(bus, EmbeddedBus)
    # Without the doorbell the consumer would re-read the file every 10 ms; slow that
    # fallback to 5 s so only the doorbell can explain a quick delivery.
    bus.poll_backoff_max = 5.0
    await bus.ensure_topic("bell-t", 1)
    consumer = bus.consumer("g", ["bell-t"], heartbeat_interval_ms=10_000)
    try:
        assert await consumer.poll(timeout=0.5) == []  # joined, idle
        assert bus._watching()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISH, str(path), cwd=ROOT
        )
        got = []
        started = time.monotonic()
        while not got and time.monotonic() - started < 8:
            got = await consumer.poll(timeout=5.0)
            if proc.returncode is None:
                await proc.wait()
        assert [m.value for m in got] == [b"v"]
        # the publisher's start-up dominates; the fallback poll would take 5 s
        assert time.monotonic() - started < 3.0
    finally:
        await bus.close()


async def test_idle_consumer_uses_almost_no_cpu(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path / 'bus.db'}")
    await bus.ensure_topic("idle-t")
    consumer = bus.consumer("g", ["idle-t"])
    try:
        await consumer.poll(timeout=0.3)
        cpu, wall = time.process_time(), time.monotonic()
        while time.monotonic() - wall < 2.0:
            await consumer.poll(timeout=1.0)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert share < 0.01, f"an idle consumer used {share:.1%} of a core"
    finally:
        await bus.close()


def test_ring_creates_then_touches_the_bell(tmp_path: Path) -> None:
    from lgsp.bus.doorbell import bell_path, ring

    bell = bell_path(str(tmp_path / "bus.db"))
    ring(bell)
    assert bell.exists()
    before = bell.stat().st_mtime_ns
    time.sleep(0.02)
    ring(bell)
    assert bell.stat().st_mtime_ns > before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
async def test_only_the_bell_wakes_a_process_and_a_replaced_bell_still_does(tmp_path: Path) -> None:
    from lgsp.bus.doorbell import Watcher, bell_path, ring

    bell = bell_path(str(tmp_path / "bus.db"))
    watcher = Watcher.start(bell)
    assert watcher is not None
    rings = asyncio.Event()
    watcher.callbacks.add(rings.set)
    try:
        # Writes to other files of the folder (databases, heartbeats) wake nobody.
        (tmp_path / "documents.db-wal").write_bytes(b"x" * 100)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rings.wait(), 0.3)
        ring(bell)
        await asyncio.wait_for(rings.wait(), 2.0)
        rings.clear()
        bell.unlink()  # a new bell file (ring creates it): the watcher follows
        await asyncio.wait_for(rings.wait(), 2.0)
        rings.clear()
        ring(bell)
        await asyncio.wait_for(rings.wait(), 2.0)
        assert watcher.active
    finally:
        watcher.close()
