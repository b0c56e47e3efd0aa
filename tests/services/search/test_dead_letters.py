"""The indexer's dead letters can be replayed like every other consumer's: a record it cannot
read goes to `<topic>.dlq` naming where it came from, so `lgsp dlq replay` and the console's
replay button send it back instead of refusing the whole topic."""

from __future__ import annotations

from pathlib import Path

from lgsp import deadletters, events
from lgsp.bus import open_bus
from lgsp.inbox import DLQ_CONSUMER, DLQ_ORIGINAL_OFFSET, DLQ_ORIGINAL_TOPIC
from services.search.adapters.state import StateStore
from services.search.index import open_index
from services.search.service_layer.indexer import Indexer

TOPIC = "lgsp.documents.v1"


async def test_a_malformed_record_is_dead_lettered_where_a_replay_finds_its_topic(
    tmp_path: Path,
) -> None:
    bus = open_bus(f"sqlite:///{tmp_path / 'bus.db'}")
    index = open_index("tantivy", index_dir=tmp_path / "ix")
    try:
        await bus.ensure_topic(TOPIC, 1)
        await bus.ensure_topic(events.dlq_topic(TOPIC), 1)
        await bus.publish(TOPIC, b"k", b"<not an envelope>")
        consumer = bus.consumer("search-indexer", [TOPIC])
        records = await consumer.poll(timeout=5, max_records=10)
        await consumer.close()
        indexer = Indexer(index, StateStore(tmp_path / "state.db"), bus=bus)
        await indexer.apply(records)
        assert indexer.counts["malformed"] == 1

        (letter,) = await deadletters.waiting(bus, [events.dlq_topic(TOPIC)], poll_timeout=0.5)
        headers = letter.message.headers
        assert headers[DLQ_CONSUMER] == b"search-indexer"
        assert headers[DLQ_ORIGINAL_TOPIC] == TOPIC.encode()
        assert headers[DLQ_ORIGINAL_OFFSET] == str(records[0].offset).encode()
        replayed = await deadletters.replay(bus, [events.dlq_topic(TOPIC)], poll_timeout=0.5)
        assert [d.original_topic for d in replayed] == [TOPIC]
        back = bus.consumer("after-replay", [TOPIC])
        values = [r.value for r in await back.poll(timeout=5, max_records=10)]
        await back.close()
        assert values == [b"<not an envelope>", b"<not an envelope>"]
    finally:
        index.close()
        await bus.close()
