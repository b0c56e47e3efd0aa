"""The bus contract, run against every backend (fixture `bus`: embedded, kafka)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest

from lgsp.bus import Bus, BusError, Message, TopicPartition, run_consumer
from tests.lgsp.bus.conftest import drain, wait_for

Name = Callable[[str], str]


def tp_of(m: Message) -> TopicPartition:
    return TopicPartition(m.topic, m.partition)


async def test_headers_keys_and_values_round_trip(bus: Bus, name: Name) -> None:
    topic = name("rt")
    await bus.ensure_topic(topic)
    headers = {
        "traceparent": b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "binary": bytes(range(256)),
        "empty": b"",
    }
    await bus.publish(topic, "hồ-sơ-1", b"payload \x00\xff", headers)
    await bus.publish(topic, b"\x01raw", b"second", None)
    await bus.publish(topic, None, b"keyless", {})
    c = bus.consumer(name("g"), [topic])
    try:
        got = await drain(c, lambda g: len(g) >= 3)
    finally:
        await c.close()
    by_value = {m.value: m for m in got}
    assert set(by_value) == {b"payload \x00\xff", b"second", b"keyless"}
    first = by_value[b"payload \x00\xff"]
    assert first.key == "hồ-sơ-1".encode()
    assert first.headers == headers
    assert first.topic == topic and first.timestamp_ms > 0
    assert by_value[b"second"].key == b"\x01raw" and by_value[b"second"].headers == {}
    assert by_value[b"keyless"].key is None


async def test_order_per_key(bus: Bus, name: Name) -> None:
    topic = name("order")
    await bus.ensure_topic(topic, 3)
    keys = [f"doc-{i}" for i in range(12)]
    # Interleave keys; publish_many and publish both have to keep the order.
    await bus.publish_many(
        [(topic, k, f"{k}:{seq}".encode(), None) for seq in range(10) for k in keys]
    )
    for seq in range(10, 20):
        for k in keys:
            await bus.publish(topic, k, f"{k}:{seq}".encode())
    c = bus.consumer(name("g"), [topic])
    try:
        got = await drain(c, lambda g: len(g) >= 240)
    finally:
        await c.close()
    seqs: dict[str, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for m in got:
        k, seq = m.value.decode().split(":")
        seqs[k].append(int(seq))
        assert m.key is not None
        partitions[m.key].add(m.partition)
    assert {k: s for k, s in seqs.items()} == {k: list(range(20)) for k in keys}
    assert all(len(p) == 1 for p in partitions.values()), "one key went to two partitions"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "keys all hashed alike"


async def test_a_barrier_reaches_every_partition_after_what_was_there(bus: Bus, name: Name) -> None:
    topic = name("barrier")
    await bus.ensure_topic(topic, 3)
    await bus.publish_many([(topic, f"k{i}", f"before-{i}".encode(), None) for i in range(30)])
    assert await bus.publish_to_each_partition(topic, b"barrier", {"kind": b"b"}) == 3
    c = bus.consumer(name("g"), [topic])
    try:
        got = await drain(c, lambda g: sum(m.value == b"barrier" for m in g) >= 3)
    finally:
        await c.close()
    barriers = [m for m in got if m.value == b"barrier"]
    assert sorted(m.partition for m in barriers) == [0, 1, 2]
    assert all(m.headers == {"kind": b"b"} for m in barriers)
    for b in barriers:  # on each partition, after every record published before it
        before = [m for m in got if m.partition == b.partition and m.value != b"barrier"]
        assert before and all(m.offset < b.offset for m in before)
    assert sum(m.value.startswith(b"before-") for m in got) == 30


async def test_group_members_share_partitions(bus: Bus, name: Name) -> None:
    topic, group = name("share"), name("g")
    await bus.ensure_topic(topic, 4)
    members = [bus.consumer(group, [topic]), bus.consumer(group, [topic])]
    received: list[list[Message]] = [[], []]
    stop = asyncio.Event()

    async def pump(i: int) -> None:
        while not stop.is_set():
            received[i].extend(await members[i].poll(timeout=0.2))

    tasks = [asyncio.create_task(pump(i)) for i in range(2)]
    try:
        everything = {TopicPartition(topic, p) for p in range(4)}

        def balanced() -> bool:
            a, b = members[0].assignment(), members[1].assignment()
            return bool(a) and bool(b) and not (a & b) and (a | b) == everything

        await wait_for(balanced, 40, "both members to own partitions")
        await bus.publish_many([(topic, f"k{i}", f"v{i}".encode(), None) for i in range(200)])
        await wait_for(lambda: len(received[0]) + len(received[1]) >= 200, 30, "200 records")
        await asyncio.sleep(0.5)  # a duplicate would show up now
        assert balanced(), "the group rebalanced during the test"
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for m in members:
            await m.close()
    values = [m.value for r in received for m in r]
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(200)), "lost or duplicated"
    assert received[0] and received[1], "one member handled everything"
    for i in range(2):
        assert {tp_of(m) for m in received[i]} <= members[i].assignment()


async def test_resume_from_committed_offsets_after_restart(bus: Bus, name: Name) -> None:
    topic, group = name("resume"), name("g")
    await bus.ensure_topic(topic, 2)
    await bus.publish_many([(topic, f"k{i % 5}", f"a{i}".encode(), None) for i in range(50)])
    c1 = bus.consumer(group, [topic])
    try:
        got = await drain(c1, lambda g: len(g) >= 50)
        handled = got[:30]  # this consumer "handles" 30 records, then stops
        commit: dict[TopicPartition, int] = {}
        for m in handled:
            commit[tp_of(m)] = m.offset + 1
        await c1.commit(commit)
    finally:
        await c1.close()
    await bus.publish_many([(topic, f"k{i % 5}", f"b{i}".encode(), None) for i in range(20)])
    all_values = {f"a{i}".encode() for i in range(50)} | {f"b{i}".encode() for i in range(20)}
    expected = all_values - {m.value for m in handled}
    c2 = bus.consumer(group, [topic])
    try:
        again = await drain(c2, lambda g: {m.value for m in g} >= expected)
        await asyncio.sleep(0.3)
        again += await c2.poll(timeout=0.3)
    finally:
        await c2.close()
    assert sorted(m.value for m in again) == sorted(expected), "committed records came back"


async def test_at_least_once_when_consumer_dies_before_commit(bus: Bus, name: Name) -> None:
    topic, group = name("alo"), name("g")
    await bus.ensure_topic(topic, 2)
    values = [f"v{i}".encode() for i in range(20)]
    await bus.publish_many([(topic, f"k{i}", v, None) for i, v in enumerate(values)])
    c1 = bus.consumer(group, [topic])
    got = await drain(c1, lambda g: len(g) >= 20)
    assert sorted(m.value for m in got) == sorted(values)
    # Handled, never committed: the consumer goes away.
    await c1.close()
    c2 = bus.consumer(group, [topic])
    try:
        again = await drain(c2, lambda g: len(g) >= 20)
        await c2.commit()
    finally:
        await c2.close()
    assert sorted(m.value for m in again) == sorted(values)
    # After that commit nothing is delivered twice: only a new record arrives.
    await bus.publish(topic, "k-late", b"late")
    c3 = bus.consumer(group, [topic])
    try:
        late = await drain(c3, lambda g: any(m.value == b"late" for m in g))
    finally:
        await c3.close()
    assert [m.value for m in late] == [b"late"]


async def test_run_consumer_commits_on_stop(bus: Bus, name: Name) -> None:
    topic, group = name("loop"), name("g")
    await bus.ensure_topic(topic, 1)
    await bus.publish_many([(topic, "k", f"v{i}".encode(), None) for i in range(30)])
    seen: list[bytes] = []
    stop = asyncio.Event()

    async def handler(m: Message) -> None:
        seen.append(m.value)
        if len(seen) == 30:
            stop.set()

    # A long commit interval: only the final commit on stop can save the position.
    await asyncio.wait_for(
        run_consumer(bus.consumer(group, [topic]), handler, stop, commit_interval=3600), 60
    )
    assert seen == [f"v{i}".encode() for i in range(30)]
    await bus.publish(topic, "k", b"after")
    c = bus.consumer(group, [topic])
    try:
        rest = await drain(c, lambda g: any(m.value == b"after" for m in g))
    finally:
        await c.close()
    assert [m.value for m in rest] == [b"after"]


async def test_run_consumer_handler_failure_redelivers(bus: Bus, name: Name) -> None:
    topic, group = name("fail"), name("g")
    await bus.ensure_topic(topic, 1)
    await bus.publish_many([(topic, "k", f"v{i}".encode(), None) for i in range(10)])
    seen: list[bytes] = []

    async def flaky(m: Message) -> None:
        if m.value == b"v6":
            raise RuntimeError("handler failed")
        seen.append(m.value)

    with pytest.raises(RuntimeError, match="handler failed"):
        await asyncio.wait_for(
            run_consumer(bus.consumer(group, [topic]), flaky, asyncio.Event()), 60
        )
    assert seen == [f"v{i}".encode() for i in range(6)]

    retried: list[bytes] = []
    stop = asyncio.Event()

    async def ok(m: Message) -> None:
        retried.append(m.value)
        if m.value == b"v9":
            stop.set()

    await asyncio.wait_for(run_consumer(bus.consumer(group, [topic]), ok, stop), 60)
    assert retried == [b"v6", b"v7", b"v8", b"v9"]


async def test_closed_consumer_refuses_to_poll(bus: Bus, name: Name) -> None:
    topic = name("closed")
    await bus.ensure_topic(topic, 1)
    c = bus.consumer(name("g"), [topic])
    await c.close()
    with pytest.raises(BusError):
        await c.poll(timeout=0.1)


async def test_topics_lists_the_created_ones(bus: Bus, name: Name) -> None:
    created = sorted([name("listed-a"), name("listed-b")])
    for topic in created:
        await bus.ensure_topic(topic)
    await bus.publish(created[0], "k", b"v")
    listed = await bus.topics()
    assert listed == sorted(listed)
    assert set(created) <= set(listed)
    assert not any(t.startswith("__") for t in listed)  # no broker-internal topics
