"""`lgsp search reindex` on Kafka (Tansu): the new generation serves only once it holds every
event the topic had when the rebuild began, and the generation that served last survives
an interrupted rebuild."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import events_pb2 as dev
from lgsp.bus import open_bus
from lgsp.config import load_settings
from services.search.adapters.generations import Generations
from services.search.index import Caller, SearchQuery
from services.search.service_layer.indexer import TOPIC
from services.search.service_layer.reindex import ReindexInterrupted, rebuild

AGENCY = "000.00.12.H27"


# The broker is shared by the session's tests: these documents carry a word of their own.
MARK = "thuphuc" + uuid.uuid4().hex[:8]


def issued(n: int) -> tuple[str, bytes, bytes, dict[str, bytes]]:
    doc = dpb.Document(
        id=str(uuid.uuid4()),
        agency_code=AGENCY,
        subject=f"Quyết định số {n} về cải cách hành chính {MARK}",
        number_notation=f"{n}/QĐ-UBND",
        promulgation_date=f"2026-03-{1 + n % 28:02d}",
        direction=dpb.DIRECTION_OUTGOING,
        outgoing_status=dpb.OUTGOING_STATUS_ISSUED,
    )
    env = events.make_envelope(dev.DocumentIssued(document=doc), source="documents", subject=doc.id)
    headers = {k: v.encode() for k, v in events.envelope_headers(env).items()}
    return TOPIC, doc.id.encode(), events.encode(env), headers


def count(gens: Generations, generation: str) -> int:
    """This test's documents in a generation, as an official of their agency finds them."""
    index, state = gens.open(generation, serving=False)
    try:
        return index.search(SearchQuery(MARK, page_size=1), Caller(AGENCY)).total
    finally:
        index.close()
        state.close()


@pytest.mark.timeout(180)
async def test_reindex_on_kafka_switches_only_when_complete_and_keeps_the_last_served(
    tansu: str, tmp_path: Path
) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    bus = open_bus(
        f"kafka://{tansu}",
        client_id=f"reindex-{uuid.uuid4().hex[:6]}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    gens = Generations(settings)
    try:
        await bus.ensure_topic(TOPIC)
        await bus.publish_many([issued(n) for n in range(300)])
        # A new consumer group joins for seconds before it reads anything: 2 s of empty polls
        # were taken for "caught up" and an empty generation was switched to.
        first = await rebuild(gens, bus)
        assert gens.current() == first.generation
        assert count(gens, first.generation) == 300

        # An interrupted rebuild switches nothing; the next one prunes its leftovers and keeps
        # the generation that served last.
        stop = asyncio.Event()
        stop.set()
        with pytest.raises(ReindexInterrupted):
            await rebuild(gens, bus, stop=stop)
        assert gens.current() == first.generation
        await bus.publish_many([issued(n) for n in range(300, 320)])
        second = await rebuild(gens, bus, keep=2)
        left = sorted(p.name for p in gens.root.iterdir() if p.name.startswith("g"))
        assert left == sorted([first.generation, second.generation])
        assert count(gens, second.generation) == 320
    finally:
        await bus.close()
