"""The `bus` fixture: one open Bus per backend, so the contract suite runs against each."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lgsp.bus import Bus, Consumer, Message, open_bus

# Consumer-group timings: Tansu's group join takes about half the session timeout.
KAFKA_OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
EMBEDDED_OPTIONS = {"session_timeout_ms": 1500, "heartbeat_interval_ms": 100}


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "embedded":
        b = open_bus(f"sqlite:///{tmp_path / 'bus.db'}", **EMBEDDED_OPTIONS)
    else:
        bootstrap = request.getfixturevalue("tansu")
        b = open_bus(f"kafka://{bootstrap}", publish_timeout=20.0, **KAFKA_OPTIONS)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique topic / group names, so tests can share one broker."""
    suffix = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{suffix}"


async def drain(
    consumer: Consumer,
    until: Callable[[list[Message]], bool],
    within: float = 30.0,
) -> list[Message]:
    """Poll until `until(received)` holds; fail after `within` seconds."""
    got: list[Message] = []
    deadline = time.monotonic() + within
    while not until(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after receiving {len(got)} records")
        got.extend(await consumer.poll(timeout=0.2))
    return got


async def wait_for(cond: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)
