"""The serving index and its live indexer, and the switch to a rebuilt generation.

The service searches `Serving.index` and feeds it from the consumer group "search-indexer".
`lgsp search reindex` builds a new generation from its own consumer group and then points
CURRENT at it. The service notices at its next idle poll (within ~0.5 s) and, still serving
the old index meanwhile:

1. opens the new generation and drains the reindex group to its end into it (the events
   published between the end of the rebuild and now, which the old index may already have);
2. swaps the index searches use (one attribute assignment), closes the old one's writer;
3. carries on with "search-indexer" on the new index: anything it re-reads that the rebuild
   had already applied is skipped by version.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from lgsp.bus import Bus
from lgsp.inbox import ensure_topics, publish_barrier
from services.search.adapters.extract import Limits
from services.search.adapters.generations import Generations
from services.search.adapters.state import StateStore
from services.search.index import Caller, SearchIndex
from services.search.service_layer.copies import Copies, copies_of
from services.search.service_layer.indexer import TOPIC, AttachmentReader, Indexer

log = logging.getLogger(__name__)

LIVE_GROUP = "search-indexer"
REPLAY_GROUP_KEY = "replay_group"
LIVE_KEY = "live"


async def read_to_barrier(
    indexer: Indexer,
    bus: Bus,
    group: str,
    stop: asyncio.Event,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Consume `group` into `indexer` until it has read everything the topic holds now: a
    barrier is written to every partition and reading stops once it was seen on each. Empty
    polls prove nothing (a Kafka group still joining reads none), nor do end offsets (some
    brokers report them wrong)."""
    barrier = f"{group}/{uuid.uuid4().hex}"
    partitions = await publish_barrier(bus, TOPIC, barrier, source="search")
    consumer = bus.consumer(group, [TOPIC])
    try:
        await indexer.run(
            consumer,
            stop,
            until=lambda: len(indexer.barriers.get(barrier, ())) >= partitions,
            on_batch=on_batch,
        )
    finally:
        await consumer.close()


@dataclass
class Serving:
    generations: Generations
    attachments: AttachmentReader | None = None
    limits: Limits = field(default_factory=Limits)
    commit_interval: float = 0.1
    name: str | None = None
    index: SearchIndex | None = None  # what searches use; swapped whole on a switch
    indexer: Indexer | None = None
    _pointer_checked: float = 0.0
    _open_lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> SearchIndex:
        """Open the serving generation (creating the first one) for searches."""
        with self._open_lock:  # the first search and the indexer may both get here first
            return self._open()

    def _open(self) -> SearchIndex:
        if self.index is None:
            self.name = self.generations.ensure_current()
            index, state = self.generations.open(self.name)
            _warm_up(index)
            self.index = index
            self.indexer = self._indexer(index, state)
        return self.index

    def copies(self, hit_ids: list[str], caller: Caller) -> dict[str, Copies]:
        """The other copies of each hit's document the caller may read (copies.py), from the
        serving generation's state store; none while it is being switched."""
        indexer = self.indexer
        if indexer is None or not hit_ids:
            return {}
        try:
            return copies_of(indexer.state, hit_ids, caller)
        except sqlite3.ProgrammingError:  # closed by a switch in between: the hits stand alone
            return {}

    def _indexer(self, index: SearchIndex, state: StateStore, bus: Bus | None = None) -> Indexer:
        return Indexer(
            index, state, self.attachments, bus, self.limits, commit_interval=self.commit_interval
        )

    def _pointer_changed(self) -> bool:
        now = time.monotonic()
        if now - self._pointer_checked < 0.5:
            return False
        self._pointer_checked = now
        return self.generations.current() not in (None, self.name)

    async def run(self, bus: Bus, stop: asyncio.Event) -> None:
        """Keep the serving index current until `stop`; switch generations when told."""
        await asyncio.to_thread(self.open)
        await ensure_topics(bus, [TOPIC])
        assert self.indexer is not None
        self.indexer.bus = bus
        await self._catch_up(self.indexer, bus, stop)
        while not stop.is_set():
            consumer = bus.consumer(LIVE_GROUP, [TOPIC])
            try:
                await self.indexer.run(consumer, stop, switch=self._pointer_changed)
            finally:
                await consumer.close()
            if not stop.is_set() and self._pointer_changed_now():
                await self._switch(bus, stop)

    def _pointer_changed_now(self) -> bool:
        self._pointer_checked = 0.0
        return self._pointer_changed()

    async def _switch(self, bus: Bus, stop: asyncio.Event) -> None:
        name = self.generations.current()
        assert name is not None
        log.info("switching the search index from %s to %s", self.name, name)
        index, state = await asyncio.to_thread(self.generations.open, name)
        await asyncio.to_thread(_warm_up, index)
        indexer = self._indexer(index, state, bus)
        await self._catch_up(indexer, bus, stop)
        old, old_state = self.index, self.indexer.state if self.indexer else None
        self.name, self.index, self.indexer = name, index, indexer
        if old is not None:
            await asyncio.to_thread(old.close)
        if old_state is not None:
            old_state.close()
        log.info("search index %s is serving", name)

    async def _catch_up(self, indexer: Indexer, bus: Bus, stop: asyncio.Event) -> None:
        """Drain a rebuilt generation's replay group into it, once."""
        state = indexer.state
        group = state.meta(REPLAY_GROUP_KEY)
        if not group or state.meta(LIVE_KEY) == "1":
            return
        await read_to_barrier(indexer, bus, group, stop)
        if stop.is_set():
            return
        state.set_meta(LIVE_KEY, "1")
        state.commit()

    async def close(self) -> None:
        if self.index is not None:
            await asyncio.to_thread(self.index.close)
        if self.indexer is not None:
            self.indexer.state.close()


def _warm_up(index: SearchIndex) -> None:
    """Open the writer and load the extractors now, not on the first event (≈1 s cold)."""
    index.upsert([])
    index.commit()
    import docx  # noqa: F401
    import pypdf  # noqa: F401
