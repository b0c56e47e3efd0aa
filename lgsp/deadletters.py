"""The bus's dead letters: read the ones waiting, and replay them to their original topics.

Shared by `lgsp dlq` and the operator console. A consumer that cannot handle an event
publishes it to `<topic>.dlq` with why (lgsp.inbox). The offsets of the consumer group
`lgsp-dlq-replay` on a dead-letter topic mark what was replayed: `replay` publishes each
waiting letter again to its original topic (same key, value and headers, without the dlq_*
ones), then commits past it, so a letter is replayed once. Consumers that handled the event
the first time drop the copy by its event id; the one that failed tries again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from lgsp.bus import Bus, Message
from lgsp.bus.base import DLQ_REPLAY_GROUP, DLQ_SUFFIX, Consumer, is_dlq_topic
from lgsp.events import HEADER_EVENT_ID, HEADER_EVENT_TYPE
from lgsp.inbox import DLQ_CONSUMER, DLQ_ERROR, DLQ_HEADER_PREFIX, DLQ_ORIGINAL_TOPIC, DLQ_REASON

# Empty polls in a row that mean "caught up" (a Kafka-wire broker's end offsets may be late).
IDLE_POLLS = 2


class DeadLetterError(Exception):
    """What was asked cannot be done (not a dead-letter topic, no such topic, no partitions…)."""


def _text(m: Message, key: str) -> str:
    return m.headers.get(key, b"").decode("utf-8", "replace")


@dataclass(frozen=True)
class DeadLetter:
    """One waiting dead letter, with what lgsp.inbox recorded of why."""

    message: Message

    @property
    def original_topic(self) -> str:
        return _text(self.message, DLQ_ORIGINAL_TOPIC)

    @property
    def event_type(self) -> str:
        return _text(self.message, HEADER_EVENT_TYPE)

    @property
    def event_id(self) -> str:
        return _text(self.message, HEADER_EVENT_ID)

    @property
    def consumer(self) -> str:
        return _text(self.message, DLQ_CONSUMER)

    @property
    def reason(self) -> str:
        return _text(self.message, DLQ_REASON)

    @property
    def error(self) -> str:
        """The first line of the error the consumer gave up on."""
        lines = _text(self.message, DLQ_ERROR).splitlines()
        return lines[0] if lines else ""


async def dlq_topics(bus: Bus, named: Sequence[str] = ()) -> list[str]:
    """The dead-letter topics named (checked), or every one when none is named."""
    if not named:
        return [t for t in await bus.topics() if is_dlq_topic(t)]
    bad = [t for t in named if not is_dlq_topic(t)]
    if bad:
        raise DeadLetterError(f"not a dead-letter topic (…{DLQ_SUFFIX}): {', '.join(bad)}")
    known = set(await bus.topics())
    missing = [t for t in named if t not in known]
    if missing:
        raise DeadLetterError(f"no such topic: {', '.join(missing)}")
    return list(named)


async def _pending(
    bus: Bus, topics: list[str], poll_timeout: float, join_timeout: float
) -> tuple[Consumer, list[DeadLetter]]:
    """The replay group's member and every record after the group's committed offsets."""
    consumer = bus.consumer(DLQ_REPLAY_GROUP, topics)
    got: list[Message] = []
    idle = 0
    deadline = time.monotonic() + join_timeout
    try:
        while idle < IDLE_POLLS:
            batch = await consumer.poll(timeout=poll_timeout)
            got.extend(batch)
            if batch:
                idle = 0
            elif consumer.assignment():  # idle only counts once the group gave us partitions
                idle += 1
            elif time.monotonic() > deadline:
                raise DeadLetterError(f"no partitions assigned in {join_timeout:g}s")
    except BaseException:
        await consumer.close()
        raise
    got.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return consumer, [DeadLetter(m) for m in got]


async def waiting(
    bus: Bus, topics: Sequence[str] = (), *, poll_timeout: float = 1.0, join_timeout: float = 60.0
) -> list[DeadLetter]:
    """The dead letters not yet replayed, of `topics` (every dead-letter topic by default)."""
    found = await dlq_topics(bus, topics)
    if not found:
        return []
    consumer, letters = await _pending(bus, found, poll_timeout, join_timeout)
    await consumer.close()
    return letters


async def replay(
    bus: Bus, topics: Sequence[str] = (), *, poll_timeout: float = 1.0, join_timeout: float = 60.0
) -> list[DeadLetter]:
    """Publish every waiting dead letter of `topics` to its original topic, then mark them
    replayed; the letters replayed. Nothing is replayed if one names no original topic."""
    found = await dlq_topics(bus, topics)
    if not found:
        return []
    consumer, letters = await _pending(bus, found, poll_timeout, join_timeout)
    try:
        orphans = [d for d in letters if not d.original_topic]
        if orphans:
            raise DeadLetterError(
                f"{len(orphans)} record(s) name no original topic ({DLQ_ORIGINAL_TOPIC} header); "
                "nothing replayed"
            )
        await bus.publish_many(
            [
                (
                    d.original_topic,
                    d.message.key,
                    d.message.value,
                    {
                        k: v
                        for k, v in d.message.headers.items()
                        if not k.startswith(DLQ_HEADER_PREFIX)
                    },
                )
                for d in letters
            ]
        )
        await consumer.commit()
        return letters
    finally:
        await consumer.close()
