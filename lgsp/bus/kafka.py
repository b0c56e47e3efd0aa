"""The Kafka bus: kafka-python behind the Bus interface, usable from asyncio.

kafka-python is thread-based. The producer is thread-safe: records are appended from the event
loop (that never blocks once the topic's metadata is known) and its futures are bridged to
asyncio. A KafkaConsumer is not thread-safe, so each member runs every call on its own
one-thread executor.

Consumer positions come from committed offsets, or `earliest` for a new group. End offsets
are read only for the operators' lag report (`lag()`, through the admin API's ListOffsets).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kafka import KafkaConsumer as _KafkaConsumer
from kafka import KafkaProducer
from kafka import TopicPartition as _KTP
from kafka.admin import KafkaAdminClient, NewTopic, OffsetSpec
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from lgsp.bus.base import (
    DLQ_REPLAY_GROUP,
    Bus,
    BusError,
    Consumer,
    Headers,
    Message,
    TopicPartition,
    is_dlq_topic,
    is_ephemeral_group,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

Record = tuple[str, bytes | str | None, bytes, Headers | None]


def _key(key: bytes | str | None) -> bytes | None:
    return key.encode("utf-8") if isinstance(key, str) else key


class KafkaBus(Bus):
    """Publish with a shared KafkaProducer; each consumer() is one KafkaConsumer group member.

    A publish that fails because the broker is unreachable is retried with exponential
    backoff (0.1 s doubling up to 2 s) until `publish_timeout` seconds have passed, then
    raises BusError. Retried records may be duplicated (at-least-once).
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        *,
        client_id: str = "lgsp",
        partitions: int = 3,
        replication_factor: int = 1,
        publish_timeout: float = 30.0,
        linger_ms: int = 10,
        # Bytes per partition batch. kafka-python's 16 KiB default holds 16 events of 1 KB and
        # caps produce at ~14k/s here; 256 KiB measured ~25k/s against Tansu.
        batch_size: int = 256 * 1024,
        enable_idempotence: bool = True,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        request_timeout_ms: int = 10_000,
        producer_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = list(bootstrap_servers)
        self.client_id = client_id
        self.default_partitions = partitions
        self.replication_factor = replication_factor
        self.publish_timeout = publish_timeout
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.request_timeout_ms = request_timeout_ms
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "compression_type": None,
            "enable_idempotence": enable_idempotence,
            "request_timeout_ms": request_timeout_ms,
            "delivery_timeout_ms": max(int(publish_timeout * 1000), request_timeout_ms + linger_ms),
            "max_block_ms": int(publish_timeout * 1000),
            **(producer_options or {}),
        }
        self._consumer_options = dict(consumer_options or {})
        self._producer: KafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._admin: KafkaAdminClient | None = None
        self._admin_lock = threading.Lock()
        self._known_topics: set[str] = set()
        self._consumers: set[KafkaBusConsumer] = set()
        self._closed = False

    # -- producer ---------------------------------------------------------------------------

    async def _get_producer(self, budget_ms: int) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._producer_lock:
            if self._producer is None:
                config = {**self._producer_config, "bootstrap_timeout_ms": max(budget_ms, 100)}
                self._producer = await asyncio.to_thread(lambda: KafkaProducer(**config))
            return self._producer

    async def publish(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._closed:
            raise BusError("bus is closed")
        deadline = time.monotonic() + self.publish_timeout
        backoff = 0.1
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                producer = await self._get_producer(int(remaining * 1000))
                futures = await self._send_all(producer, records)
                if len(futures) >= 64:
                    # Big batches: one flush() on a thread beats a callback per record.
                    await asyncio.to_thread(producer.flush, max(remaining, 0.1))
                    for f in futures:
                        if f.failed():
                            raise f.exception
                else:
                    async with asyncio.timeout(max(remaining, 0.1)):
                        await _gather_kafka(futures)
                return
            except (KafkaError, TimeoutError, OSError) as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BusError(
                        f"publish to {records[0][0]!r} failed after {attempt} attempts in "
                        f"{self.publish_timeout:.1f} s: {exc!r}"
                    ) from exc
                log.warning("publish failed (attempt %d), retrying: %r", attempt, exc)
                await asyncio.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 2.0)

    async def publish_to_each_partition(
        self, topic: str, value: bytes, headers: Headers | None = None
    ) -> int:
        if self._closed:
            raise BusError("bus is closed")
        hdrs = [(k, bytes(v)) for k, v in headers.items()] if headers else None
        try:
            producer = await self._get_producer(int(self.publish_timeout * 1000))
            # Waits for the topic's metadata: not on the event loop.
            partitions = await asyncio.to_thread(producer.partitions_for, topic)
            if not partitions:
                raise BusError(f"topic {topic!r} has no partitions (does it exist?)")
            futures = [
                producer.send(topic, value=bytes(value), partition=p, headers=hdrs)
                for p in sorted(partitions)
            ]
            async with asyncio.timeout(self.publish_timeout):
                await _gather_kafka(futures)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BusError(f"publish to every partition of {topic!r} failed: {exc!r}") from exc
        return len(partitions)

    async def _send_all(self, producer: KafkaProducer, records: Sequence[Record]) -> list[Any]:
        futures: list[Any] = []
        for topic, key, value, headers in records:
            hdrs = [(k, bytes(v)) for k, v in headers.items()] if headers else None
            send = functools.partial(
                producer.send, topic, value=bytes(value), key=_key(key), headers=hdrs
            )
            if topic in self._known_topics:
                futures.append(send())  # metadata cached: send() only appends to a buffer
            else:
                # The first send to a topic waits for its metadata: not on the event loop.
                futures.append(await asyncio.to_thread(send))
                self._known_topics.add(topic)
        return futures

    # -- topics -----------------------------------------------------------------------------

    def _admin_client(self) -> KafkaAdminClient:
        with self._admin_lock:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id=f"{self.client_id}-admin",
                    request_timeout_ms=self.request_timeout_ms,
                    # kafka-python waits 30 s for a broker that is down, whatever the above.
                    bootstrap_timeout_ms=self.request_timeout_ms,
                )
            return self._admin

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        n = partitions or self.default_partitions

        def create() -> None:
            try:
                self._admin_client().create_topics(
                    [NewTopic(topic, n, self.replication_factor)],
                    timeout_ms=self.request_timeout_ms,
                )
            except TopicAlreadyExistsError:
                pass

        try:
            await asyncio.to_thread(create)
        except KafkaError as exc:
            raise BusError(f"cannot create topic {topic!r}: {exc!r}") from exc

    async def topics(self) -> list[str]:
        try:
            names = await asyncio.to_thread(lambda: self._admin_client().list_topics())
        except KafkaError as exc:
            raise BusError(f"cannot list topics: {exc!r}") from exc
        return sorted(str(n) for n in names if not str(n).startswith("__"))

    # -- operator view ----------------------------------------------------------------------

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Records behind per (group, topic, partition), like EmbeddedBus.lag: committed
        offsets (OffsetFetch) against end offsets (ListOffsets), through the admin API.

        A group counts on every partition of each topic it committed on (a partition without
        a commit counts from the earliest record); the dead-letter replay group counts on
        every dead-letter topic, committed or not (what waits for `lgsp dlq replay`)."""
        try:
            return await asyncio.to_thread(self.lag_sync)
        except KafkaError as exc:
            raise BusError(f"cannot read lag: {exc!r}") from exc

    def lag_sync(self) -> dict[tuple[str, str, int], int]:
        """lag(), blocking (a metrics scrape runs on its own thread)."""
        admin = self._admin_client()
        groups = sorted(
            str(g["group_id"])
            for g in admin.list_groups()
            if not is_ephemeral_group(str(g["group_id"]))
        )
        committed: dict[tuple[str, str, int], int] = {}
        topics_of: dict[str, set[str]] = {}
        for group in groups:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            for ktp, meta in offsets.items():
                if meta.offset >= 0:
                    committed[(group, ktp.topic, ktp.partition)] = meta.offset
                    topics_of.setdefault(group, set()).add(ktp.topic)
        dlq_topics = {t for t in admin.list_topics() if is_dlq_topic(str(t))}
        if dlq_topics:
            topics_of.setdefault(DLQ_REPLAY_GROUP, set()).update(dlq_topics)
        wanted = set().union(*topics_of.values()) if topics_of else set()
        if not wanted:
            return {}
        partitions = [
            _KTP(d["name"], p["partition_index"])
            for d in admin.describe_topics(sorted(wanted))
            if not d.get("error_code")
            for p in d["partitions"]
        ]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        out: dict[tuple[str, str, int], int] = {}
        for group, topics in topics_of.items():
            for tp in partitions:
                if tp.topic not in topics:
                    continue
                end, low = ends[tp].offset, starts[tp].offset
                pos = max(committed.get((group, tp.topic, tp.partition), low), low)
                out[(group, tp.topic, tp.partition)] = max(0, end - pos)
        return out

    # -- consumers --------------------------------------------------------------------------

    def consumer(self, group: str, topics: Sequence[str], **options: object) -> KafkaBusConsumer:
        if not topics:
            raise BusError("a consumer needs at least one topic")
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "request_timeout_ms": max(self.request_timeout_ms, self.session_timeout_ms + 5000),
            # Tansu holds a fetch for the full max wait even when records arrive meanwhile;
            # a short wait bounds the end-to-end latency it adds.
            "fetch_max_wait_ms": 50,
            **self._consumer_options,
            **options,
        }
        c = KafkaBusConsumer(self, list(topics), config)
        self._consumers.add(c)
        return c

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for c in list(self._consumers):
            await c.close()
        producer, admin = self._producer, self._admin
        self._producer = self._admin = None

        def shut() -> None:
            if producer is not None:
                producer.close(timeout=5)
            if admin is not None:
                admin.close()

        await asyncio.to_thread(shut)


async def _gather_kafka(futures: Sequence[Any]) -> None:
    """Wait for kafka-python futures without blocking the loop (one wake-up for the batch)."""
    if not futures:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    lock = threading.Lock()
    pending = [len(futures)]

    def settle(exc: BaseException | None) -> None:
        if not done.done():
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

    def ok(_: object) -> None:
        with lock:
            pending[0] -= 1
            last = pending[0] == 0
        if last:
            loop.call_soon_threadsafe(settle, None)

    def failed(exc: BaseException) -> None:
        loop.call_soon_threadsafe(settle, exc)

    for f in futures:
        # Callbacks run at once if the future is already done, else on the sender thread.
        f.add_callback(ok)
        f.add_errback(failed)
    await done


class KafkaBusConsumer(Consumer):
    """One KafkaConsumer group member; every call runs on the member's own thread."""

    def __init__(self, bus: KafkaBus, topics: list[str], config: dict[str, Any]) -> None:
        self._bus = bus
        self.topics = topics
        self.group = str(config["group_id"])
        self._config = config
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"lgsp-kafka-{self.group}"
        )
        self._consumer: _KafkaConsumer | None = None
        self._assigned: set[TopicPartition] = set()
        self._returned: dict[TopicPartition, int] = {}
        self._closed = False

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _ensure_started(self) -> _KafkaConsumer:
        if self._consumer is None:
            # Subscribing to a missing topic would leave the member without partitions.
            for t in self.topics:
                await self._bus.ensure_topic(t)

            def make() -> _KafkaConsumer:
                c = _KafkaConsumer(**self._config)
                c.subscribe(self.topics)
                return c

            try:
                self._consumer = await self._run(make)
            except KafkaError as exc:
                raise BusError(f"cannot join group {self.group!r}: {exc!r}") from exc
        return self._consumer

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def poll(
        self,
        timeout: float = 1.0,  # noqa: ASYNC109 - mirrors KafkaConsumer.poll
        max_records: int = 500,
    ) -> list[Message]:
        if self._closed:
            raise BusError("consumer is closed")
        consumer = await self._ensure_started()

        def fetch() -> tuple[dict[Any, list[Any]], set[Any]]:
            batches = consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
            return batches, consumer.assignment()

        try:
            batches, assigned = await self._run(fetch)
        except KafkaError as exc:
            raise BusError(f"poll failed: {exc!r}") from exc
        self._assigned = {TopicPartition(tp.topic, tp.partition) for tp in assigned}
        # Forget positions of partitions that went to another member in a rebalance.
        self._returned = {tp: o for tp, o in self._returned.items() if tp in self._assigned}
        out: list[Message] = []
        for ktp, records in batches.items():
            for r in records:
                out.append(
                    Message(
                        topic=ktp.topic,
                        partition=ktp.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value if r.value is not None else b"",
                        headers={k: (v or b"") for k, v in (r.headers or [])},
                        timestamp_ms=int(r.timestamp or 0),
                    )
                )
            if records:
                self._returned[TopicPartition(ktp.topic, ktp.partition)] = records[-1].offset + 1
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        todo = dict(self._returned if offsets is None else offsets)
        if not todo or self._consumer is None:
            return
        consumer = self._consumer
        kafka_offsets = {
            _KTP(tp.topic, tp.partition): OffsetAndMetadata(off, "", -1) for tp, off in todo.items()
        }
        try:
            await self._run(lambda: consumer.commit(kafka_offsets))
        except CommitFailedError as exc:
            # The group rebalanced: these partitions belong to someone else now, who resumes
            # from the last successful commit (the records are delivered again).
            log.warning("group %s: commit rejected after a rebalance: %s", self.group, exc)
        except KafkaError as exc:
            raise BusError(f"commit failed: {exc!r}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._consumers.discard(self)
        consumer = self._consumer
        self._consumer = None
        if consumer is not None:
            try:
                await self._run(lambda: consumer.close(autocommit=False))
            except KafkaError as exc:
                log.warning("closing consumer of group %s: %r", self.group, exc)
        self._executor.shutdown(wait=False)
