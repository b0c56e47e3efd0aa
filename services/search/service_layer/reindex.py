"""Rebuild the index from the beginning of lgsp.documents.v1 into a new generation.

The rebuild reads with a consumer group of its own ("search-reindex-<generation>"), which
starts at the earliest retained record; the serving index is untouched until the end, when
CURRENT is pointed at the new generation (see serving.py for how a running service takes
over). Only one rebuild runs at a time (a lock file in the index root).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass

from lgsp.bus import Bus
from lgsp.inbox import ensure_topics
from services.search.adapters.generations import Generations
from services.search.service_layer.indexer import TOPIC, AttachmentReader, Indexer
from services.search.service_layer.serving import REPLAY_GROUP_KEY, read_to_barrier


class ReindexBusy(Exception):
    """Another rebuild holds the lock."""


class ReindexInterrupted(Exception):
    """Stopped before the end: CURRENT was not switched (the partial generation is pruned
    by the next rebuild)."""


@dataclass(frozen=True)
class Rebuilt:
    generation: str
    events: int
    documents: int
    pruned: tuple[str, ...]


async def remaining(bus: Bus, group: str) -> int | None:
    """Records the group has still to read, when the bus can tell (the embedded one can)."""
    lag = getattr(bus, "lag", None)
    if lag is None:
        return None
    behind = await lag()
    return sum(n for (g, _, _), n in behind.items() if g == group)


async def rebuild(
    generations: Generations,
    bus: Bus,
    *,
    attachments: AttachmentReader | None = None,
    progress: Callable[[int, int | None], None] = lambda done, left: None,
    stop: asyncio.Event | None = None,
    keep: int = 2,
) -> Rebuilt:
    root = generations.root
    lock_fd = os.open(root / "reindex.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReindexBusy(f"another reindex is running on {root}") from None
        name = generations.new_name()
        group = f"search-reindex-{name}"
        index, state = await asyncio.to_thread(generations.open, name, serving=False)
        state.set_meta(REPLAY_GROUP_KEY, group)
        state.commit()
        indexer = Indexer(index, state, attachments, bus, commit_interval=1.0, max_batch=2000)
        await ensure_topics(bus, [TOPIC])
        done = 0
        stop = stop or asyncio.Event()

        def on_batch(n: int) -> None:
            nonlocal done
            done += n
            progress(done, None)

        reporter = asyncio.create_task(_report(bus, group, lambda: done, progress, stop))
        try:
            # Switch only once every record the topic held when the rebuild began is in.
            await read_to_barrier(indexer, bus, group, stop, on_batch=on_batch)
        finally:
            reporter.cancel()
        if stop.is_set():
            raise ReindexInterrupted("reindex interrupted; the serving index is unchanged")
        documents = await asyncio.to_thread(index.count)
        await asyncio.to_thread(index.close)
        state.close()
        generations.switch(name)
        pruned = tuple(generations.prune(keep=keep))
        progress(done, 0)
        return Rebuilt(name, done, documents, pruned)
    finally:
        os.close(lock_fd)


async def _report(
    bus: Bus,
    group: str,
    done: Callable[[], int],
    progress: Callable[[int, int | None], None],
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        left = await remaining(bus, group)
        progress(done(), left)
        await asyncio.sleep(0.5)
