"""The outbox relay: publishes the events a unit of work committed, then marks them sent.

At-least-once by construction: a row is marked sent only after the bus acknowledged it, so a
crash between the two publishes it again on restart (consumers drop the duplicate by event
id). While the broker is down the relay retries with bounded backoff, the rows stay unsent
in the service's own database, and it catches up when the broker is back.

On PostgreSQL the batch is read with FOR UPDATE SKIP LOCKED and the lock is held until the
rows are marked sent, so two relays on one database do not publish the same rows (they would
still be allowed to: duplicates are tolerated by design). Note that two relays working at the
same time may interleave one subject's events; run one relay per service database when
per-subject order matters. On SQLite (one process) no lock is held while publishing, so the
service's own writes are never blocked by a slow broker.

Idle, the relay costs almost nothing: every commit in this process that inserted outbox rows
wakes it at once (an engine event, whichever code path committed: a use case, an event
handler, an import), so reading the table is only the safety net for rows another process
wrote (an `lgsp` command on the same database). That read backs off from `poll_interval` to
`idle_poll_max` while it finds nothing.

The relay does not create topics (on Kafka that call blocks for long when the broker is down):
a service creates its topics at start-up with `lgsp.inbox.ensure_topics()`, or relies on the
broker's auto-creation (the embedded bus always creates on publish).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.engine import Engine

from lgsp import metrics, telemetry
from lgsp.bus.base import Bus, BusError
from lgsp.db import fault_point, outbox_table, utcnow

__all__ = ["OutboxRelay", "pending_count", "purge_sent"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("lgsp.outbox")
# The seven outbox columns the relay reads.
_Rows = Sequence[sa.Row[Any, Any, Any, Any, Any, Any, Any]]


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: about base·2^(attempt-1), at most cap."""
    delay = min(cap, base * (2 ** (attempt - 1)))
    return random.uniform(delay / 2, delay)


class OutboxRelay:
    """Moves committed outbox rows to the bus.

    `publish_attempts` bounds how long one batch waits for a broker that is down (with
    exponential backoff between `backoff_base` and `backoff_max` seconds); after that
    relay_once() raises BusError and run() keeps trying on its own backoff.
    """

    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        idle_poll_max: float = 5.0,
        publish_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
        min_cycle_interval: float = 0.02,
    ) -> None:
        if batch_size < 1 or publish_attempts < 1:
            raise ValueError("batch_size and publish_attempts must be at least 1")
        self.engine = engine
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.idle_poll_max = max(idle_poll_max, poll_interval)
        self.publish_attempts = publish_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.min_cycle_interval = min_cycle_interval
        self._locking = engine.dialect.name != "sqlite"
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_requested = False  # a wake() is on its way to the loop: skip repeats
        # Set on a connection that inserted outbox rows, until its commit wakes this relay.
        self._inserted = f"lgsp.outbox.inserted.{id(self)}"

    def wake(self) -> None:
        """Publish soon instead of at the next poll; call after a commit, from the event loop
        or from a worker thread (units of work usually run in one)."""
        if self._wake_requested:
            return
        self._wake_requested = True
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._wake.set()
        else:
            # asyncio.Event is not thread-safe: set() from a worker thread would not wake an
            # idle loop. One call_soon_threadsafe per relay cycle, not per commit.
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; never gives up on a broker or database that is down.

        A cycle starts at most every `min_cycle_interval` seconds: when commits come in a
        stream, one cycle (read, publish, mark sent) carries all that landed meanwhile instead
        of one event each; a commit after a quiet spell is published at once."""
        self._loop = asyncio.get_running_loop()
        # Bound methods: SQLAlchemy tells two relays' listeners on one engine apart.
        listeners = (
            ("after_cursor_execute", self._on_execute),
            ("commit", self._on_commit),
            ("rollback", self._on_rollback),
        )
        for name, listener in listeners:
            sa.event.listen(self.engine, name, listener)
        try:
            await self._run(stop)
        finally:
            for name, listener in listeners:
                sa.event.remove(self.engine, name, listener)

    def _on_execute(self, conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO outbox"):
            conn.info[self._inserted] = True

    def _on_commit(self, conn: sa.Connection) -> None:
        if conn.info.pop(self._inserted, False):
            self.wake()

    def _on_rollback(self, conn: sa.Connection) -> None:
        conn.info.pop(self._inserted, None)

    async def _run(self, stop: asyncio.Event) -> None:
        assert self._loop is not None
        failures = 0
        idle_wait = self.poll_interval
        while not stop.is_set():
            last_start = self._loop.time()
            self._wake_requested = False  # commits from now on wake the next cycle
            try:
                n = await self.relay_once()
                failures = 0
            except Exception as e:
                failures += 1
                n = 0
                delay = backoff_delay(failures, max(self.poll_interval, 0.05), self.backoff_max)
                log.warning("outbox relay failed (%s); retrying in %.2fs", e, delay)
                await _wait(stop, delay)
                continue
            if n >= self.batch_size:
                continue  # more are waiting
            # Found nothing: look less often (a commit here wakes the relay anyway).
            idle_wait = self.poll_interval if n else min(self.idle_poll_max, idle_wait * 2)
            if not self._wake_requested:
                self._wake.clear()
            await _wait_any(stop, self._wake, idle_wait if n == 0 else self.poll_interval)
            if self._wake.is_set():
                idle_wait = self.poll_interval
            self._wake.clear()
            since = self._loop.time() - last_start
            if since < self.min_cycle_interval:  # let the stream of commits fill one batch
                await _wait(stop, self.min_cycle_interval - since)

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows in order; the number published."""
        # Two thread hops per batch (connect + read, mark sent + close), one when idle.
        conn, rows = await asyncio.to_thread(self._open_and_read)
        if conn is None:
            return 0
        try:
            fault_point("relay.after_read")
            await self._publish(rows)
            fault_point("relay.after_publish")
        except BaseException:
            # Without a commit this rolls back and releases the row locks.
            await asyncio.to_thread(conn.close)
            raise
        await asyncio.to_thread(self._mark_sent_and_close, conn, [r.id for r in rows])
        fault_point("relay.after_mark")
        return len(rows)

    def _open_and_read(self) -> tuple[sa.Connection | None, _Rows]:
        """(connection, batch), or (None, []) with the connection closed when none is unsent."""
        conn = self.engine.connect()
        try:
            rows = self._read_batch(conn)
        except BaseException:
            conn.close()
            raise
        if not rows:
            conn.close()
            return None, rows
        return conn, rows

    def _mark_sent_and_close(self, conn: sa.Connection, ids: list[int]) -> None:
        try:
            self._mark_sent(conn, ids)
        finally:
            conn.close()

    def _read_batch(self, conn: sa.Connection) -> _Rows:
        t = outbox_table
        q = (
            sa.select(
                t.c.id, t.c.event_id, t.c.event_type, t.c.topic, t.c.key, t.c.value, t.c.headers
            )
            .where(t.c.sent_at.is_(None))
            .order_by(t.c.id)
            .limit(self.batch_size)
        )
        if self._locking:
            rows = conn.execute(q.with_for_update(skip_locked=True)).all()
        else:
            rows = conn.execute(q).all()
            conn.commit()  # hold no SQLite write lock while the broker is slow
        return rows

    def _mark_sent(self, conn: sa.Connection, ids: list[int]) -> None:
        conn.execute(
            sa.update(outbox_table).where(outbox_table.c.id.in_(ids)).values(sent_at=utcnow())
        )
        conn.commit()

    async def _publish(self, rows: _Rows) -> None:
        spans = []
        records: list[tuple[str, bytes | str | None, bytes, dict[str, bytes]]] = []
        for r in rows:
            stored: dict[str, str] = dict(r.headers)
            span = _tracer.start_span(
                f"{r.topic} publish",
                context=telemetry.context_from_headers(stored),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "lgsp",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": r.topic,
                    "messaging.message.id": r.event_id,
                    "lgsp.event.type": r.event_type,
                },
            )
            spans.append(span)
            with trace.use_span(span, end_on_exit=False):
                stored.update(telemetry.trace_headers())  # the consumer's parent is this span
            headers = {k: v.encode() for k, v in stored.items()}
            records.append((r.topic, r.key, bytes(r.value), headers))
        try:
            await self._publish_with_retry(records)
        except BaseException as e:
            for span in spans:
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, str(e)))
                span.end()
            raise
        for span in spans:
            span.end()

    async def _publish_with_retry(
        self, records: list[tuple[str, bytes | str | None, bytes, dict[str, bytes]]]
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.bus.publish_many(records)
                for topic, *_ in records:
                    metrics.BUS_PUBLISHED.labels(topic).inc()
                return
            except Exception as e:
                if attempt >= self.publish_attempts:
                    raise BusError(f"publish failed after {attempt} attempts: {e}") from e
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_max)
                log.info("publish failed (%s), attempt %d; retrying in %.2fs", e, attempt, delay)
                await asyncio.sleep(delay)


def pending_count(engine: Engine) -> int:
    """Rows not yet published (a health/lag figure)."""
    with engine.connect() as conn:
        q = sa.select(sa.func.count()).where(outbox_table.c.sent_at.is_(None))
        return int(conn.execute(q).scalar_one())


def purge_sent(engine: Engine, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete rows published more than `older_than` ago; the number deleted."""
    with engine.begin() as conn:
        res = conn.execute(
            sa.delete(outbox_table).where(outbox_table.c.sent_at < utcnow() - older_than)
        )
        return int(res.rowcount)


_INSERTED = "lgsp.outbox.inserted"


def _note_outbox_insert(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if statement.startswith("INSERT INTO outbox"):
        conn.info[_INSERTED] = True


def _forget_outbox_insert(conn: sa.Connection) -> None:
    conn.info.pop(_INSERTED, None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
