"""The console's bus pages: lag per consumer group and topic, dead letters with their replay
(a POST that puts each letter back on its original topic once), on the embedded bus; the
Kafka lag itself is tested against a Kafka-wire broker in tests/lgsp/bus/test_kafka_lag.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from console.app import create_app
from lgsp.bus import open_bus
from lgsp.bus.base import TopicPartition
from lgsp.config import Settings, load_settings
from lgsp.inbox import DLQ_CONSUMER, DLQ_ERROR, DLQ_ORIGINAL_TOPIC, DLQ_REASON
from tests.console.support import FakeOidc, signed_in_asgi
from tests.lgsp.storage.support import read_topic

HOSTILE = '<script>alert("x")</script>'
DLQ = "lgsp.exchange.v1.dlq"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, oidc=FakeOidc(settings))
    async with signed_in_asgi(app, settings) as c:
        yield c
    await app.state.lag_reader.close()


async def dead_letter(settings: Settings, n: int, error: str = "agency unknown") -> None:
    bus = open_bus(settings.bus.url)
    try:
        await bus.ensure_topic(DLQ, 1)
        for i in range(n):
            await bus.publish(
                DLQ,
                f"k{i}",
                f"event {i}".encode(),
                {
                    "ce_id": f"ev-{i}".encode(),
                    "ce_type": b"lgsp.exchange.v1.Sent",
                    "x-other": b"kept",
                    DLQ_ORIGINAL_TOPIC: b"lgsp.exchange.v1",
                    DLQ_CONSUMER: b"documents-exchange",
                    DLQ_REASON: b"permanent",
                    DLQ_ERROR: error.encode(),
                },
            )
    finally:
        await bus.close()


async def test_bus_page_shows_lag_per_group_and_topic(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    bus = open_bus(settings.bus.url)
    try:
        await bus.ensure_topic("lgsp.documents.v1", 2)
        for i in range(5):
            await bus.publish("lgsp.documents.v1", f"doc-{i}", b"v")
        consumer = bus.consumer("search-indexer", ["lgsp.documents.v1"])
        got = await consumer.poll(timeout=5, max_records=1)
        assert got
        await consumer.commit({TopicPartition(got[0].topic, got[0].partition): got[0].offset + 1})
        await consumer.close()
    finally:
        await bus.close()
    page = (await client.get("/bus")).text
    assert "<td>search-indexer</td><td>lgsp.documents.v1</td>" in page
    assert '<td class="num err">4</td>' in page


async def test_dead_letters_are_listed_escaped_and_replayed_once(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await dead_letter(settings, 2, error=HOSTILE)
    page = (await client.get("/deadletters")).text
    assert f'<h2 id="{DLQ}">{DLQ} <span class="muted">(2 waiting)</span></h2>' in page
    assert "documents-exchange" in page and "ev-1" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert (await client.get("/bus")).text.count(f">{DLQ}</a>") == 1

    # A replay is a POST; a GET does nothing.
    assert (await client.get("/deadletters/replay")).status_code == 405
    reply = await client.post("/deadletters/replay", data={"topic": DLQ})
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/deadletters?replayed=2&topic={DLQ}"
    after = (await client.get(reply.headers["location"])).text
    assert f"replayed 2 dead letter(s) of {DLQ}" in after
    assert "none waiting" in after

    # A second POST (a double click) replays nothing more: each letter went back once.
    again = await client.post("/deadletters/replay", data={"topic": DLQ})
    assert again.headers["location"] == f"/deadletters?replayed=0&topic={DLQ}"
    bus = open_bus(settings.bus.url)
    try:
        back = await read_topic(bus, "lgsp.exchange.v1")
    finally:
        await bus.close()
    assert sorted(m.value for m in back) == [b"event 0", b"event 1"]
    assert all(not any(k.startswith("dlq_") for k in m.headers) for m in back)
    assert {m.headers["x-other"] for m in back} == {b"kept"}


@pytest.mark.parametrize("topic", ["lgsp.exchange.v1", "", HOSTILE])
async def test_replay_refuses_what_is_not_a_dead_letter_topic(
    client: httpx.AsyncClient, topic: str
) -> None:
    reply = await client.post("/deadletters/replay", data={"topic": topic})
    assert reply.status_code == 400
    assert "replay needs a dead-letter topic (NAME.dlq)" in reply.text
    assert HOSTILE not in reply.text


async def test_replay_of_an_unknown_dead_letter_topic_is_refused(client: httpx.AsyncClient) -> None:
    reply = await client.post("/deadletters/replay", data={"topic": "nothing.here.dlq"})
    assert reply.status_code == 409
    assert "no such topic: nothing.here.dlq" in reply.text


async def test_console_serves_its_process_metrics(client: httpx.AsyncClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    reply = await client.get("/metrics")
    assert reply.status_code == 200
    names = {f.name for f in text_string_to_metric_families(reply.text)}
    assert "process_cpu_seconds" in names or "python_info" in names


async def test_a_refused_replay_still_shows_the_letters_waiting(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    """A replay refused (a letter that names no original topic) replays nothing: the page
    must not then say that none are waiting."""
    await dead_letter(settings, 1)
    bus = open_bus(settings.bus.url)
    try:
        await bus.publish(DLQ, b"k", b"orphan", {DLQ_CONSUMER: b"someone"})
    finally:
        await bus.close()
    reply = await client.post("/deadletters/replay", data={"topic": DLQ})
    assert reply.status_code == 409
    assert "name no original topic" in reply.text
    assert "none waiting" not in reply.text
    assert f'<h2 id="{DLQ}">{DLQ} <span class="muted">(2 waiting)</span></h2>' in reply.text
