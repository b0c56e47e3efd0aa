"""The event bus interface: one contract, two backends (embedded SQLite log, Kafka).

Delivery is at-least-once: a consumer commits the offset *after* its handler has finished,
so a crash between handling and committing replays the event. Consumers therefore have to be
idempotent (see lgsp.inbox). Ordering holds per partition, and the partition is chosen by
the key, so all events of one aggregate (one document, one dossier) arrive in order.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Headers = Mapping[str, bytes]

# A topic's dead letters go to <topic>.dlq (lgsp.inbox). The offsets of DLQ_REPLAY_GROUP on
# such a topic mark what `lgsp dlq replay` has sent back; what lies after them waits for an
# operator (the embedded bus reports it as that group's lag).
DLQ_SUFFIX = ".dlq"
DLQ_REPLAY_GROUP = "lgsp-dlq-replay"


def is_dlq_topic(topic: str) -> bool:
    return topic.endswith(DLQ_SUFFIX)


# A group of one process that re-reads a topic from its beginning at every start and never
# commits (lgsp.authn.sessions): not a consumer whose lag means work waiting, so lag reports
# leave it out.
EPHEMERAL_SUFFIX = ".ephemeral"


def is_ephemeral_group(group: str) -> bool:
    return group.endswith(EPHEMERAL_SUFFIX)


@dataclass(frozen=True, slots=True)
class Message:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


class BusError(Exception):
    """The bus could not do what was asked (broker down past the retry budget, bad topic…)."""


class Consumer(abc.ABC):
    """A member of a consumer group. Partitions are shared among the group's members."""

    @abc.abstractmethod
    async def poll(
        self,
        timeout: float = 1.0,  # noqa: ASYNC109 - mirrors KafkaConsumer.poll
        max_records: int = 500,
    ) -> list[Message]:
        """Next records of the assigned partitions, in offset order within each partition."""

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit the *next* offset to read per partition (Kafka's convention).

        With no argument, commits the position after the last records returned by poll().
        """

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """Partitions this member currently owns."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Leave the group; uncommitted records will be delivered again to someone."""


class Bus(abc.ABC):
    """Publish to topics and create consumer-group members."""

    @abc.abstractmethod
    async def publish(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        """Durably append one record; when this returns the record will not be lost."""

    async def publish_many(
        self, records: Sequence[tuple[str, bytes | str | None, bytes, Headers | None]]
    ) -> None:
        """Append several records; backends override this to batch."""
        for topic, key, value, headers in records:
            await self.publish(topic, key, value, headers)

    @abc.abstractmethod
    async def publish_to_each_partition(
        self, topic: str, value: bytes, headers: Headers | None = None
    ) -> int:
        """Durably append `value` once to every partition of `topic` (a barrier a reader can
        wait for on each partition); the number of partitions."""

    @abc.abstractmethod
    async def ensure_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create the topic if it does not exist (idempotent)."""

    @abc.abstractmethod
    async def topics(self) -> list[str]:
        """Every topic that exists, sorted."""

    @abc.abstractmethod
    def consumer(self, group: str, topics: Sequence[str], **options: object) -> Consumer:
        """A new member of `group` subscribed to `topics`, starting at the committed offset
        or at the earliest record when the group has none."""

    @abc.abstractmethod
    async def close(self) -> None: ...
