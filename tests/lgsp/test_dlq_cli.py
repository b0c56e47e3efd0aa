"""`lgsp dlq`: a real dead letter (an EventProcessor gave up on it) listed, replayed to its
topic once the cause is fixed, handled by the consumer that failed and dropped by the one
that had handled it already."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from lgsp import events
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.bus import Message, open_bus
from lgsp.bus.base import DLQ_REPLAY_GROUP
from lgsp.cli import main
from lgsp.db import UnitOfWork, create_engine, migrate
from lgsp.inbox import EventProcessor, PermanentError, ReceivedEvent
from tests.lgsp.storage.support import (
    DLQ,
    MIGRATIONS,
    TOPIC,
    bus_url,
    effect_counts,
    effect_handler,
    read_topic,
)


def lgsp(*argv: str) -> int:
    return main(["dlq", *argv, "--poll-timeout", "0.2"])


def test_dead_letters_are_listed_replayed_once_and_handled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = bus_url(tmp_path)
    monkeypatch.setenv("LGSP_BUS_URL", url)
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    db = f"sqlite:///{tmp_path / 'service.db'}"
    migrate(db, MIGRATIONS)
    engine = create_engine(db)
    fixed = False

    def strict(event: ReceivedEvent, uow: UnitOfWork) -> None:
        if not fixed:
            raise PermanentError("agency 000.00.99.H27 is not in the directory")
        effect_handler(event, uow)

    def lenient(event: ReceivedEvent, uow: UnitOfWork) -> None:
        effect_handler(event, uow)

    env = events.make_envelope(EchoRequest(message="văn bản"), source="t", subject="s")

    async def deliver_all(records: list[Message]) -> None:
        bus = open_bus(url)
        try:
            failing = EventProcessor(engine, {EchoRequest: strict}, bus, consumer_name="strict")
            other = EventProcessor(engine, {EchoRequest: lenient}, bus, consumer_name="lenient")
            for r in records:
                await failing(r)
                await other(r)
        finally:
            await bus.close()

    async def publish_and_read(topic: str) -> list[Message]:
        bus = open_bus(url)
        try:
            if topic == TOPIC:
                headers = {k: v.encode() for k, v in events.envelope_headers(env).items()}
                await bus.publish(TOPIC, "s", events.encode(env), headers)
            return await read_topic(bus, topic, idle=0.3)
        finally:
            await bus.close()

    originals = asyncio.run(publish_and_read(TOPIC))
    asyncio.run(deliver_all(originals))
    assert effect_counts(engine) == {env.id: 1}  # the lenient consumer only

    assert lgsp("list") == 0
    out = capsys.readouterr().out
    assert env.id in out and "not in the directory" in out and "consumer strict" in out
    assert "1 dead letter(s) pending in 1 topic(s)" in out

    assert asyncio.run(_waiting(url)) == 1  # what the console shows as waiting

    fixed = True
    assert lgsp("replay", DLQ) == 0
    assert asyncio.run(_waiting(url)) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert lgsp("list") == 0  # replayed ones are no longer pending
    assert "0 dead letter(s) pending" in capsys.readouterr().out
    assert lgsp("replay") == 0  # nothing twice
    assert "replayed 0 dead letter(s)" in capsys.readouterr().out

    again = asyncio.run(_read(url, TOPIC))
    assert len(again) == 2  # the original and its replay
    replay = again[1]
    assert replay.value == originals[0].value and replay.key == originals[0].key
    assert not any(k.startswith("dlq_") for k in replay.headers)
    asyncio.run(deliver_all([replay]))
    # The strict consumer handled it now; the lenient one dropped the copy by its event id.
    assert effect_counts(engine) == {env.id: 2}
    engine.dispose()


async def _waiting(url: str) -> int:
    """Dead letters after the replay group's offsets, as the embedded bus reports them."""
    bus = open_bus(url)
    try:
        lag = await bus.lag()  # type: ignore[attr-defined]
    finally:
        await bus.close()
    return sum(n for (g, t, _), n in lag.items() if g == DLQ_REPLAY_GROUP and t == DLQ)


async def _read(url: str, topic: str) -> list[Message]:
    bus = open_bus(url)
    try:
        return await read_topic(bus, topic, idle=0.3)
    finally:
        await bus.close()


def test_refuses_topics_that_are_not_dead_letter_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LGSP_BUS_URL", bus_url(tmp_path))
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="not a dead-letter topic"):
        lgsp("replay", TOPIC)
    with pytest.raises(SystemExit, match=re.escape("no such topic: lgsp.nowhere.v1.dlq")):
        lgsp("list", "lgsp.nowhere.v1.dlq")
