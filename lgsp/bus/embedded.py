"""The embedded bus: a durable log in one SQLite file (WAL) shared by the processes of one machine.

Layout of the file:
- ``bus_topics``: topic name → partition count.
- ``bus_heads``: next offset per (topic, partition); offsets are assigned under SQLite's write
  lock (BEGIN IMMEDIATE), so they stay dense and ordered even with several writing processes,
  and never go back when retention empties a partition.
- ``bus_records``: the log, clustered by (topic, partition, offset).
- ``bus_offsets``: committed *next* offset per (group, topic, partition).
- ``bus_members`` / ``bus_owners``: consumer-group members with their heartbeat, and which member
  currently owns which partition. A member reads and commits only partitions it owns; a
  partition changes hands only once its previous owner released it or expired, so two live
  members never read one partition at the same time once the group is stable.

Every SQLite call runs on a dedicated one-thread executor per connection, so the event loop
never blocks on the file lock. Durability: ``synchronous=NORMAL`` by default, which survives a
process crash (the WAL is written before commit returns) but may lose the last commits on a
power loss; pass ``synchronous="FULL"`` to fsync every commit.

Retention (``retention_ms``, ``retention_records``, ``retention_bytes`` per partition) deletes
old records whatever the groups' positions: a group slower than retention skips what was
deleted (see ``lag()`` to watch for it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import json
import logging
import os
import sqlite3
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

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
from lgsp.bus.doorbell import Watcher, bell_path, ring

log = logging.getLogger(__name__)

T = TypeVar("T")
# (topic, partition, key, value, encoded headers) of a record to append.
_Row = tuple[str, int, bytes | None, bytes, str | None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_topics (
    topic TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_heads (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT,
    ts_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bus_records_ts ON bus_records (topic, partition, ts_ms);
CREATE TABLE IF NOT EXISTS bus_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    topics TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    session_timeout_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_owners (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def key_bytes(key: bytes | str | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return key.encode("utf-8")


def partition_for(key: bytes, partitions: int) -> int:
    """Stable across processes and runs (unlike hash())."""
    return zlib.crc32(key) % partitions


def _encode_headers(headers: Headers | None) -> str | None:
    if not headers:
        return None
    # latin-1 maps every byte to one code point, so any bytes value round-trips through JSON.
    return json.dumps({k: bytes(v).decode("latin-1") for k, v in headers.items()})


def _decode_headers(raw: str | None) -> dict[str, bytes]:
    if not raw:
        return {}
    return {k: v.encode("latin-1") for k, v in json.loads(raw).items()}


class _Db:
    """One SQLite connection, used only from its own thread."""

    def __init__(self, path: str, *, busy_timeout_ms: int, synchronous: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lgsp-bus-sqlite"
        )
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self.conn: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        if self.conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=0
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            _wal(conn, self._busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self.conn = conn
        return self.conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise BusError("bus is closed")
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.Error as exc:
                raise BusError(f"sqlite: {exc}") from exc

        return await loop.run_in_executor(self._executor, call)

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._executor.submit(lambda: fn(self._connect())).result()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()

        def shut() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        await loop.run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=False)


class _Tx:
    """BEGIN IMMEDIATE … COMMIT: takes the write lock up front so offset assignment is serial."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _wal(conn: sqlite3.Connection, patience_s: float) -> None:
    """Switch a connection to WAL. Several processes opening a new log at once (a platform's
    first start) race for the switch, and SQLite answers "database is locked" at once there,
    without its busy handler: try again for as long as a busy wait would."""
    deadline = time.monotonic() + max(patience_s, 1.0)
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class EmbeddedBus(Bus):
    """Event bus on one SQLite file. Several processes may open the same file."""

    def __init__(
        self,
        path: str,
        *,
        client_id: str = "lgsp",
        partitions: int = 4,
        busy_timeout_ms: int = 30_000,
        synchronous: str = "NORMAL",
        retention_ms: int | None = 7 * 24 * 3600 * 1000,
        retention_records: int | None = None,
        retention_bytes: int | None = None,
        retention_check_interval: float = 60.0,
        session_timeout_ms: int = 10_000,
        # Kafka's default: a heartbeat is a write to the file, which every process notices.
        heartbeat_interval_ms: int = 3_000,
        poll_backoff_max_ms: float = 10.0,
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"bad synchronous mode {synchronous!r}")
        self.path = path
        self.client_id = client_id
        self.default_partitions = partitions
        self.retention_ms = retention_ms
        self.retention_records = retention_records
        self.retention_bytes = retention_bytes
        self.retention_check_interval = retention_check_interval
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Where the doorbell (lgsp.bus.doorbell) cannot watch, idle consumers re-check the file
        # at most this often: the bound on the latency added by polling across processes
        # (in-process publishes wake consumers at once; with the doorbell, other processes'
        # publishes do too).
        self.poll_backoff_max = poll_backoff_max_ms / 1000
        self._bell = bell_path(path)
        self._watcher: Watcher | None = None
        self._watch_tried = False
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous.upper()
        self._db = _Db(path, busy_timeout_ms=busy_timeout_ms, synchronous=self._synchronous)
        self._topics: dict[str, int] = {}
        self._rr = itertools.count()
        self._last_retention = time.monotonic()
        self._consumers: set[EmbeddedConsumer] = set()
        self._pending: list[tuple[list[_Row], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._db.call_sync(self._init_schema)

    @staticmethod
    def _init_schema(conn: sqlite3.Connection) -> None:
        # executescript() commits any open transaction first, so the script brings its own.
        conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")

    def _new_db(self) -> _Db:
        return _Db(self.path, busy_timeout_ms=self._busy_timeout_ms, synchronous=self._synchronous)

    # -- topics -----------------------------------------------------------------------------

    @staticmethod
    def _ensure_topic_sync(conn: sqlite3.Connection, topic: str, partitions: int) -> int:
        row = conn.execute("SELECT partitions FROM bus_topics WHERE topic=?", (topic,)).fetchone()
        if row is not None:
            return int(row[0])
        with _Tx(conn):
            row = conn.execute(
                "SELECT partitions FROM bus_topics WHERE topic=?", (topic,)
            ).fetchone()
            if row is not None:
                return int(row[0])
            conn.execute("INSERT INTO bus_topics VALUES (?, ?)", (topic, partitions))
            conn.executemany(
                "INSERT OR IGNORE INTO bus_heads VALUES (?, ?, 0)",
                [(topic, p) for p in range(partitions)],
            )
        return partitions

    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        if not topic:
            raise BusError("empty topic name")
        n = partitions or self.default_partitions
        self._topics[topic] = await self._db.run(lambda c: self._ensure_topic_sync(c, topic, n))

    async def topics(self) -> list[str]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT topic FROM bus_topics ORDER BY topic").fetchall()
        )
        return [str(r[0]) for r in rows]

    async def partitions_for(self, topic: str) -> int:
        if topic not in self._topics:
            await self.ensure_topic(topic)
        return self._topics[topic]

    # -- publish ----------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        await self.publish_many([(topic, key, value, headers)])

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | str | None, bytes, Headers | None]]
    ) -> None:
        if not records:
            return
        rows: list[_Row] = []
        for topic, key, value, headers in records:
            n = await self.partitions_for(topic)
            kb = key_bytes(key)
            part = partition_for(kb, n) if kb is not None else next(self._rr) % n
            rows.append((topic, part, kb, bytes(value), _encode_headers(headers)))
        await self._append(rows)

    async def publish_to_each_partition(
        self, topic: str, value: bytes, headers: Headers | None = None
    ) -> int:
        n = await self.partitions_for(topic)
        encoded = _encode_headers(headers)
        await self._append([(topic, p, None, bytes(value), encoded) for p in range(n)])
        return n

    async def _append(self, rows: list[_Row]) -> None:
        # Group commit: calls that arrive while a transaction is running share the next one,
        # so concurrent publishers cost one commit per batch, not one each.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done
        if time.monotonic() - self._last_retention >= self.retention_check_interval:
            self._last_retention = time.monotonic()
            await self.apply_retention()

    async def _flush(self) -> None:
        # A task of its own: a cancelled publisher must not strand the others' futures.
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [row for part, _ in batch for row in part]
            try:
                await self._db.run(functools.partial(self._append_sync, rows=rows))
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            for consumer in self._consumers:
                consumer._wake.set()
            ring(self._bell)  # consumers in other processes

    @staticmethod
    def _append_sync(conn: sqlite3.Connection, rows: list[_Row]) -> None:
        now = _now_ms()
        heads: dict[tuple[str, int], int] = {}
        with _Tx(conn):
            out = []
            for topic, part, key, value, headers in rows:
                tp = (topic, part)
                if tp not in heads:
                    row = conn.execute(
                        "SELECT next_offset FROM bus_heads WHERE topic=? AND partition=?", tp
                    ).fetchone()
                    heads[tp] = int(row[0]) if row else 0
                off = heads[tp]
                heads[tp] = off + 1
                out.append((topic, part, off, key, value, headers, now))
            conn.executemany("INSERT INTO bus_records VALUES (?, ?, ?, ?, ?, ?, ?)", out)
            conn.executemany(
                "INSERT INTO bus_heads VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset=excluded.next_offset",
                [(t, p, n) for (t, p), n in heads.items()],
            )

    # -- retention --------------------------------------------------------------------------

    async def apply_retention(self) -> int:
        """Delete records past the age / count / size limits; returns how many were deleted."""
        age, count, size = self.retention_ms, self.retention_records, self.retention_bytes

        def run(conn: sqlite3.Connection) -> int:
            deleted = 0
            heads = conn.execute("SELECT topic, partition, next_offset FROM bus_heads").fetchall()
            for topic, part, head in heads:
                with _Tx(conn):
                    if age is not None:
                        cur = conn.execute(
                            "DELETE FROM bus_records WHERE topic=? AND partition=? AND ts_ms<?",
                            (topic, part, _now_ms() - age),
                        )
                        deleted += cur.rowcount
                    if count is not None:
                        cur = conn.execute(
                            "DELETE FROM bus_records WHERE topic=? AND partition=? AND offset<?",
                            (topic, part, head - count),
                        )
                        deleted += cur.rowcount
                    if size is not None:
                        # Keep the newest records whose sizes add up to at most `size` bytes.
                        row = conn.execute(
                            "SELECT MIN(offset) FROM (SELECT offset, SUM(length(value)) "
                            "OVER (ORDER BY offset DESC) AS total FROM bus_records "
                            "WHERE topic=? AND partition=?) WHERE total<=?",
                            (topic, part, size),
                        ).fetchone()
                        keep_from = head if row is None or row[0] is None else int(row[0])
                        cur = conn.execute(
                            "DELETE FROM bus_records WHERE topic=? AND partition=? AND offset<?",
                            (topic, part, keep_from),
                        )
                        deleted += cur.rowcount
            return deleted

        return await self._db.run(run)

    # -- operator view ----------------------------------------------------------------------

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Records behind per (group, topic, partition), on every partition of the topics a
        group committed on or has live members for, and for the dead-letter replay group on
        every dead-letter topic (its lag is what waits for `lgsp dlq replay`). A partition
        without a commit counts from the earliest retained record."""

        return await self._db.run(self._lag_rows)

    def lag_sync(self) -> dict[tuple[str, str, int], int]:
        """lag(), blocking (a metrics scrape runs on its own thread)."""
        return self._db.call_sync(self._lag_rows)

    @staticmethod
    def _lag_rows(conn: sqlite3.Connection) -> dict[tuple[str, str, int], int]:
        heads = {
            (t, p): int(n)
            for t, p, n in conn.execute("SELECT topic, partition, next_offset FROM bus_heads")
        }
        lows = {
            (t, p): int(lo)
            for t, p, lo in conn.execute(
                "SELECT topic, partition, MIN(offset) FROM bus_records GROUP BY topic, partition"
            )
        }
        committed = {
            (g, t, p): int(n)
            for g, t, p, n in conn.execute(
                "SELECT group_id, topic, partition, next_offset FROM bus_offsets"
            )
        }
        keys = set(committed)
        # Every partition of a topic a group committed on, as on Kafka (KafkaBus.lag).
        committed_topics = {(g, t) for g, t, _ in committed}
        keys.update((g, t, p) for g, t in committed_topics for (tt, p) in heads if tt == t)
        keys.update((DLQ_REPLAY_GROUP, t, p) for (t, p) in heads if is_dlq_topic(t))
        for g, topics in conn.execute("SELECT group_id, topics FROM bus_members"):
            for t in json.loads(topics):
                keys.update((g, t, p) for (tt, p) in heads if tt == t)
        out: dict[tuple[str, str, int], int] = {}
        for g, t, p in keys:
            if is_ephemeral_group(g):
                continue
            head = heads.get((t, p), 0)
            low = lows.get((t, p), head)
            pos = max(committed.get((g, t, p), low), low)
            out[(g, t, p)] = max(0, head - pos)
        return out

    # -- consumers --------------------------------------------------------------------------

    def _watching(self) -> bool:
        """Whether other processes' publishes wake this process's consumers (the doorbell)."""
        if not self._watch_tried:
            self._watch_tried = True
            self._watcher = Watcher.start(self._bell)
            if self._watcher is not None:
                self._watcher.callbacks.add(self._ring_consumers)
        return self._watcher is not None and self._watcher.active

    def _ring_consumers(self) -> None:
        for consumer in self._consumers:
            consumer._wake.set()

    def consumer(self, group: str, topics: Sequence[str], **options: object) -> EmbeddedConsumer:
        if not topics:
            raise BusError("a consumer needs at least one topic")
        session = options.pop("session_timeout_ms", self.session_timeout_ms)
        heartbeat = options.pop("heartbeat_interval_ms", self.heartbeat_interval_ms)
        if options:
            raise TypeError(f"unknown consumer options: {sorted(options)}")
        c = EmbeddedConsumer(
            self,
            group,
            list(topics),
            session_timeout_ms=int(session),  # type: ignore[call-overload]
            heartbeat_interval_ms=int(heartbeat),  # type: ignore[call-overload]
        )
        self._consumers.add(c)
        return c

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        for c in list(self._consumers):
            await c.close()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        await self._db.close()


class EmbeddedConsumer(Consumer):
    """A member of a consumer group on the embedded log, with its own SQLite connection."""

    def __init__(
        self,
        bus: EmbeddedBus,
        group: str,
        topics: list[str],
        *,
        session_timeout_ms: int,
        heartbeat_interval_ms: int,
    ) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self.member_id = f"{bus.client_id}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._db = bus._new_db()
        self._owned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}  # next offset to fetch
        self._returned: dict[TopicPartition, int] = {}  # next offset after what poll() returned
        self._last_heartbeat = 0.0
        # The group as the last full sync left it: the live member ids, and whether this
        # member got every partition it should own. While both hold, a heartbeat is one
        # UPDATE and one read instead of the whole rebalance transaction.
        self._members: list[str] = []
        self._settled = False
        self._data_version: int | None = None
        self._idle = False  # last fetch found nothing and nothing changed since
        self._wake = asyncio.Event()
        self._closed = False

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    # -- group membership -------------------------------------------------------------------

    def _sync_group(self, conn: sqlite3.Connection) -> set[TopicPartition]:
        now = _now_ms()
        for t in self.topics:
            if t not in self._bus._topics:
                self._bus._topics[t] = EmbeddedBus._ensure_topic_sync(
                    conn, t, self._bus.default_partitions
                )
        with _Tx(conn):
            conn.execute(
                "INSERT INTO bus_members VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (group_id, member_id) "
                "DO UPDATE SET heartbeat_ms=excluded.heartbeat_ms",
                (
                    self.group,
                    self.member_id,
                    self._bus.client_id,
                    json.dumps(self.topics),
                    now,
                    self.session_timeout_ms,
                ),
            )
            conn.execute(
                "DELETE FROM bus_members "
                "WHERE group_id=? AND heartbeat_ms < ? - session_timeout_ms",
                (self.group, now),
            )
            conn.execute(
                "DELETE FROM bus_owners WHERE group_id=? AND member_id NOT IN "
                "(SELECT member_id FROM bus_members WHERE group_id=?)",
                (self.group, self.group),
            )
            members: dict[str, list[str]] = {}
            everyone: list[str] = []
            for mid, topics in conn.execute(
                "SELECT member_id, topics FROM bus_members WHERE group_id=? ORDER BY member_id",
                (self.group,),
            ):
                everyone.append(mid)
                for t in json.loads(topics):
                    members.setdefault(t, []).append(mid)
            counts = dict(conn.execute("SELECT topic, partitions FROM bus_topics").fetchall())
            desired: set[TopicPartition] = set()
            for t in self.topics:
                subs = members.get(t, [])
                if self.member_id not in subs:
                    continue
                # Deterministic round-robin among the sorted live members of this topic.
                me = subs.index(self.member_id)
                n = int(counts.get(t, 0))
                desired.update(TopicPartition(t, p) for p in range(n) if p % len(subs) == me)
            owned_rows = conn.execute(
                "SELECT topic, partition FROM bus_owners WHERE group_id=? AND member_id=?",
                (self.group, self.member_id),
            ).fetchall()
            for t, p in owned_rows:
                if TopicPartition(t, p) not in desired:
                    conn.execute(
                        "DELETE FROM bus_owners WHERE group_id=? AND topic=? AND partition=? "
                        "AND member_id=?",
                        (self.group, t, p, self.member_id),
                    )
            owned: set[TopicPartition] = set()
            for tp in desired:
                conn.execute(
                    "INSERT OR IGNORE INTO bus_owners VALUES (?, ?, ?, ?)",
                    (self.group, tp.topic, tp.partition, self.member_id),
                )
                row = conn.execute(
                    "SELECT member_id FROM bus_owners WHERE group_id=? AND topic=? AND partition=?",
                    (self.group, tp.topic, tp.partition),
                ).fetchone()
                if row and row[0] == self.member_id:
                    owned.add(tp)
            # Newly owned partitions resume from the group's committed offset.
            positions: dict[TopicPartition, int] = {}
            for tp in owned:
                if tp in self._owned and tp in self._positions:
                    positions[tp] = self._positions[tp]
                    continue
                row = conn.execute(
                    "SELECT next_offset FROM bus_offsets WHERE group_id=? AND topic=? "
                    "AND partition=?",
                    (self.group, tp.topic, tp.partition),
                ).fetchone()
                positions[tp] = int(row[0]) if row else 0
        if owned != self._owned:
            log.info(
                "group %s member %s owns %s",
                self.group,
                self.member_id,
                sorted((tp.topic, tp.partition) for tp in owned),
            )
        self._owned = owned
        self._members = everyone
        self._settled = owned == desired
        self._positions = positions
        self._returned = {tp: n for tp, n in self._returned.items() if tp in owned}
        self._idle = False
        return owned

    def _beat(self, conn: sqlite3.Connection) -> bool:
        """Refresh this member's heartbeat; True if the group is as the last sync left it (no
        member joined, left or expired, and this one owns all it should), so no rebalance."""
        if not self._settled:
            return False
        now = _now_ms()
        with _Tx(conn):
            updated = conn.execute(
                "UPDATE bus_members SET heartbeat_ms=? WHERE group_id=? AND member_id=?",
                (now, self.group, self.member_id),
            ).rowcount
            rows = conn.execute(
                "SELECT member_id, heartbeat_ms >= ? - session_timeout_ms FROM bus_members "
                "WHERE group_id=? ORDER BY member_id",
                (now, self.group),
            ).fetchall()
        return (
            updated == 1
            and all(alive for _, alive in rows)
            and [mid for mid, _ in rows] == self._members
        )

    # -- fetching ---------------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, max_records: int, heartbeat: bool) -> list[Message]:
        if heartbeat and not self._beat(conn):
            self._sync_group(conn)
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._idle and version == self._data_version:
            return []  # nobody committed anything since the last empty fetch
        self._data_version = version
        out: list[Message] = []
        # Fair share across partitions; leftover budget goes to the next ones.
        tps = sorted(self._owned, key=lambda tp: (tp.topic, tp.partition))
        for i, tp in enumerate(tps):
            budget = max(1, (max_records - len(out)) // (len(tps) - i))
            rows = conn.execute(
                "SELECT offset, key, value, headers, ts_ms FROM bus_records "
                "WHERE topic=? AND partition=? AND offset>=? ORDER BY offset LIMIT ?",
                (tp.topic, tp.partition, self._positions.get(tp, 0), budget),
            ).fetchall()
            for off, key, value, headers, ts in rows:
                out.append(
                    Message(tp.topic, tp.partition, off, key, value, _decode_headers(headers), ts)
                )
            if rows:
                self._positions[tp] = int(rows[-1][0]) + 1
        self._idle = not out
        return out

    async def poll(
        self,
        timeout: float = 1.0,  # noqa: ASYNC109 - mirrors KafkaConsumer.poll
        max_records: int = 500,
    ) -> list[Message]:
        if self._closed:
            raise BusError("consumer is closed")
        deadline = time.monotonic() + max(0.0, timeout)
        backoff = 0.001
        while True:
            now = time.monotonic()
            heartbeat = (now - self._last_heartbeat) * 1000 >= self.heartbeat_interval_ms
            if heartbeat:
                self._last_heartbeat = now
            if not heartbeat and self._idle and not self._wake.is_set() and self._bus._watching():
                # Nothing was published since the last empty fetch (a publish anywhere sets
                # _wake): no need to read the file, only to wait.
                msgs: list[Message] = []
            else:
                self._wake.clear()
                msgs = await self._db.run(
                    functools.partial(self._fetch, max_records=max_records, heartbeat=heartbeat)
                )
            if msgs:
                for m in msgs:
                    self._returned[TopicPartition(m.topic, m.partition)] = m.offset + 1
                return msgs
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if self._bus._watching():
                # Any process's publish rings the doorbell: sleep until then, or until the
                # group heartbeat is due.
                due = self._last_heartbeat + self.heartbeat_interval_ms / 1000 - time.monotonic()
                wait = min(remaining, max(due, 0.001))
            else:
                # Short sleeps keep latency low; a publish from this process wakes us at once.
                wait = min(backoff, remaining)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
                backoff = 0.001
            except TimeoutError:
                backoff = min(backoff * 2, self._bus.poll_backoff_max)

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        todo = dict(self._returned if offsets is None else offsets)
        if not todo:
            return
        group, member = self.group, self.member_id

        def run(conn: sqlite3.Connection) -> list[TopicPartition]:
            lost = []
            with _Tx(conn):
                for tp, off in todo.items():
                    # Only the current owner may commit: a member that lost the partition in a
                    # rebalance must not move the new owner's position (Kafka's generation check).
                    row = conn.execute(
                        "SELECT 1 FROM bus_owners WHERE group_id=? AND topic=? AND partition=? "
                        "AND member_id=?",
                        (group, tp.topic, tp.partition, member),
                    ).fetchone()
                    if row is None:
                        lost.append(tp)
                        continue
                    conn.execute(
                        "INSERT INTO bus_offsets VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (group_id, topic, partition) "
                        "DO UPDATE SET next_offset=excluded.next_offset",
                        (group, tp.topic, tp.partition, int(off)),
                    )
            return lost

        lost = await self._db.run(run)
        if lost:
            log.warning(
                "group %s member %s: commit skipped for partitions it no longer owns: %s",
                group,
                member,
                lost,
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._consumers.discard(self)
        group, member = self.group, self.member_id

        def leave(conn: sqlite3.Connection) -> None:
            with _Tx(conn):
                conn.execute(
                    "DELETE FROM bus_members WHERE group_id=? AND member_id=?", (group, member)
                )
                conn.execute(
                    "DELETE FROM bus_owners WHERE group_id=? AND member_id=?", (group, member)
                )

        try:
            await self._db.run(leave)
        finally:
            await self._db.close()

    async def abandon(self) -> None:
        """Stop without leaving the group or committing, as a crashed process would (tests)."""
        self._closed = True
        self._bus._consumers.discard(self)
        await self._db.close()
