"""Embedded-backend specifics: several processes on one file, retention, member expiry, lag."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import pytest

from lgsp.bus import BusError, TopicPartition, open_bus
from lgsp.bus.embedded import EmbeddedBus, EmbeddedConsumer
from tests.lgsp.bus.conftest import drain


def _writer(path: str, writer: int, count: int) -> None:
    async def main() -> None:
        bus = open_bus(f"sqlite:///{path}", client_id=f"w{writer}")
        try:
            for seq in range(count):
                # Each writer owns a few keys; alternate single and batched appends.
                key = f"w{writer}-k{seq % 3}"
                if seq % 2:
                    await bus.publish("shared", key, f"{key}:{seq}".encode())
                else:
                    await bus.publish_many([("shared", key, f"{key}:{seq}".encode(), None)])
        finally:
            await bus.close()

    asyncio.run(main())


@pytest.mark.slow
async def test_several_processes_append_to_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "bus.db")
    bus = open_bus(f"sqlite:///{path}")
    await bus.ensure_topic("shared", 4)
    ctx = multiprocessing.get_context("spawn")
    writers, count = 4, 300
    procs = [ctx.Process(target=_writer, args=(path, w, count)) for w in range(writers)]
    for p in procs:
        p.start()
    consumer = bus.consumer("reader", ["shared"])
    try:
        # Read while the writers are still writing.
        got = await drain(consumer, lambda g: len(g) >= writers * count, within=60)
    finally:
        for p in procs:
            p.join(30)
        await consumer.close()
        await bus.close()
    assert all(p.exitcode == 0 for p in procs)
    per_key: dict[str, list[int]] = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for m in got:
        key, seq = m.value.decode().split(":")
        per_key[key].append(int(seq))
        offsets[m.partition].append(m.offset)
    assert len(got) == writers * count
    for key, seqs in per_key.items():
        _writer_id, k = key.split("-k")
        assert seqs == [s for s in range(count) if s % 3 == int(k)], key
    for p, offs in offsets.items():
        assert offs == list(range(len(offs))), f"partition {p} offsets not dense"


def test_url_parsing(tmp_path: Path) -> None:
    with pytest.raises(BusError):
        open_bus("redis://x")
    with pytest.raises(BusError):
        open_bus("sqlite://relative-without-slash.db")
    bus = open_bus(f"sqlite:///{tmp_path}/x.db", partitions=7)
    assert isinstance(bus, EmbeddedBus) and bus.default_partitions == 7
    assert bus.path == f"{tmp_path}/x.db"


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/w.db")
    await bus.publish("t", "k", b"v")
    await bus.close()
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_retention_by_count_size_and_age(tmp_path: Path) -> None:
    bus = open_bus(
        f"sqlite:///{tmp_path}/r.db",
        retention_ms=None,
        retention_records=10,
        retention_check_interval=3600,
    )
    assert isinstance(bus, EmbeddedBus)
    await bus.ensure_topic("t", 1)
    await bus.publish_many([("t", "k", f"v{i}".encode(), None) for i in range(25)])
    assert await bus.apply_retention() == 15
    c = bus.consumer("g", ["t"])
    got = await drain(c, lambda g: len(g) >= 10)
    assert [m.offset for m in got] == list(range(15, 25)), "offsets must not restart"
    await c.close()
    # Size: keep at most 3 records of 100 bytes.
    bus.retention_records, bus.retention_bytes = None, 350
    await bus.publish_many([("t", "k", bytes(100), None) for _ in range(5)])
    assert await bus.apply_retention() == 12
    # Age: everything older than 50 ms goes; the offset counter survives an empty log.
    bus.retention_bytes, bus.retention_ms = None, 50
    await asyncio.sleep(0.1)
    assert await bus.apply_retention() == 3
    await bus.publish("t", "k", b"fresh")
    c = bus.consumer("g2", ["t"])
    got = await drain(c, lambda g: len(g) >= 1)
    assert [(m.offset, m.value) for m in got] == [(30, b"fresh")]
    await c.close()
    await bus.close()


async def test_crashed_member_expires_and_partitions_move(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/e.db")
    assert isinstance(bus, EmbeddedBus)
    await bus.ensure_topic("t", 4)
    opts = {"session_timeout_ms": 800, "heartbeat_interval_ms": 100}
    a = bus.consumer("g", ["t"], **opts)
    b = bus.consumer("g", ["t"], **opts)
    assert isinstance(a, EmbeddedConsumer)

    async def pump_both() -> None:
        await asyncio.gather(a.poll(timeout=0.15), b.poll(timeout=0.15))

    deadline = time.monotonic() + 10
    while not (a.assignment() and b.assignment() and len(a.assignment() | b.assignment()) == 4):
        assert time.monotonic() < deadline
        await pump_both()
    assert not (a.assignment() & b.assignment())
    await bus.publish_many([("t", f"k{i}", f"v{i}".encode(), None) for i in range(40)])
    got_a = await drain(a, lambda g: len(g) >= 1)
    a_parts = a.assignment()
    # `a` dies without committing or leaving; `b` keeps polling and must inherit its partitions
    # once the session times out, then replay what `a` had handled.
    await a.abandon()
    started = time.monotonic()
    got_b: list = []
    await wait_for_assign(b, 4, got_b)
    waited = time.monotonic() - started
    assert 0.5 < waited < 5, waited
    got_b += await drain(b, lambda g: len(g) + len(got_b) >= 40)
    assert {m.value for m in got_a} <= {m.value for m in got_b}
    assert sorted(m.value for m in got_b) == sorted(f"v{i}".encode() for i in range(40))
    assert a_parts <= b.assignment()
    await b.close()
    await bus.close()


async def wait_for_assign(c: EmbeddedConsumer, n: int, sink: list) -> None:
    deadline = time.monotonic() + 10
    while len(c.assignment()) < n:
        assert time.monotonic() < deadline, "partitions were not reassigned"
        sink.extend(await c.poll(timeout=0.1))


async def test_lag_per_group_and_partition(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/l.db")
    assert isinstance(bus, EmbeddedBus)
    await bus.ensure_topic("t", 2)
    c = bus.consumer("g", ["t"])
    await c.poll(timeout=0.05)  # joins the group: it shows up with its full lag
    await bus.publish_many([("t", None, b"x", None) for _ in range(10)])  # round-robin: 5 + 5
    assert await bus.lag() == {("g", "t", 0): 5, ("g", "t", 1): 5}
    got = await drain(c, lambda g: len(g) >= 10)
    await c.commit({TopicPartition("t", 0): 2})
    lag = await bus.lag()
    assert lag[("g", "t", 0)] == 3 and lag[("g", "t", 1)] == 5
    await c.commit()
    assert await bus.lag() == {("g", "t", 0): 0, ("g", "t", 1): 0}
    assert len(got) == 10
    await c.close()
    # A group that left keeps its committed offsets, hence its lag.
    await bus.publish("t", None, b"y")
    assert sum((await bus.lag()).values()) == 1
    await bus.close()


async def test_commit_by_a_member_that_lost_the_partition_is_ignored(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/c.db")
    await bus.ensure_topic("t", 1)
    await bus.publish_many([("t", "k", f"v{i}".encode(), None) for i in range(5)])
    a = bus.consumer("g", ["t"], heartbeat_interval_ms=50)
    got = await drain(a, lambda g: len(g) >= 5)
    assert a.assignment() == {TopicPartition("t", 0)}
    b = bus.consumer("g", ["t"], heartbeat_interval_ms=50)
    tp = TopicPartition("t", 0)
    deadline = time.monotonic() + 5
    # With one partition the member whose id sorts first owns it once the other let go.
    while True:
        await asyncio.sleep(0.06)
        await asyncio.gather(a.poll(timeout=0.01), b.poll(timeout=0.01))
        if {len(a.assignment()), len(b.assignment())} == {0, 1}:
            break
        assert time.monotonic() < deadline
    loser = a if not a.assignment() else b
    assert (a if loser is b else b).assignment() == {tp}
    # The member without the partition may not move the group's position.
    await loser.commit({tp: 5})
    assert (await bus.lag())[("g", "t", 0)] == 5
    assert len(got) == 5
    await a.close()
    await b.close()
    await bus.close()


async def test_a_settled_group_heartbeats_without_rebalancing_until_a_member_joins(
    tmp_path: Path,
) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/h.db")
    await bus.ensure_topic("t", 2)
    opts = {"heartbeat_interval_ms": 50}
    a = bus.consumer("g", ["t"], **opts)
    assert isinstance(a, EmbeddedConsumer)
    syncs = 0
    sync = a._sync_group

    def counted(conn: sqlite3.Connection) -> set[TopicPartition]:
        nonlocal syncs
        syncs += 1
        return sync(conn)

    a._sync_group = counted  # type: ignore[method-assign]
    try:
        await a.poll(timeout=0.1)
        assert syncs == 1 and len(a.assignment()) == 2
        syncs = 0
        await a.poll(timeout=0.4)  # several heartbeats: each one UPDATE, no rebalance
        assert syncs == 0
        b = bus.consumer("g", ["t"], **opts)
        await b.poll(timeout=0.1)  # joins; `a` still owns both partitions
        deadline = time.monotonic() + 5
        while len(a.assignment()) != 1 or len(b.assignment()) != 1:
            assert time.monotonic() < deadline, "the join was not noticed"
            await asyncio.gather(a.poll(timeout=0.06), b.poll(timeout=0.06))
        assert syncs >= 1 and not (a.assignment() & b.assignment())
    finally:
        await bus.close()
