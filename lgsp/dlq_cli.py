"""`lgsp dlq`: the dead letters of the event bus — see them, and send them back once fixed.

A consumer that cannot handle an event (malformed, or failing past its retries) publishes it
to `<topic>.dlq` with why (lgsp.inbox). After the cause is fixed (a bug, a refused partner, a
missing agency), `replay` publishes each pending dead letter again to its original topic —
same key, value and headers, without the dlq_* ones — and then marks it replayed (the offset
of the consumer group `lgsp-dlq-replay`). Consumers that handled the event the first time
drop the copy by its event id; the one that failed tries again.

    lgsp dlq list                          pending dead letters of every *.dlq topic
    lgsp dlq list lgsp.exchange.v1.dlq     of one topic
    lgsp dlq replay lgsp.exchange.v1.dlq   send them back, then mark them replayed
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from lgsp.bus import Bus, Message, interactive_options, open_bus
from lgsp.bus.base import DLQ_REPLAY_GROUP, DLQ_SUFFIX, Consumer, is_dlq_topic
from lgsp.cli import Subparsers, config_option, settings_from_args
from lgsp.events import HEADER_EVENT_ID, HEADER_EVENT_TYPE
from lgsp.inbox import (
    DLQ_CONSUMER,
    DLQ_ERROR,
    DLQ_HEADER_PREFIX,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
)

# Empty polls in a row that mean "caught up" (the bus has no reliable end offset: Tansu).
IDLE_POLLS = 2


def _text(m: Message, key: str) -> str:
    return m.headers.get(key, b"").decode("utf-8", "replace")


async def _dlq_topics(bus: Bus, named: Sequence[str]) -> list[str]:
    if not named:
        return [t for t in await bus.topics() if is_dlq_topic(t)]
    bad = [t for t in named if not is_dlq_topic(t)]
    if bad:
        raise SystemExit(f"lgsp dlq: not a dead-letter topic (…{DLQ_SUFFIX}): {', '.join(bad)}")
    known = set(await bus.topics())
    missing = [t for t in named if t not in known]
    if missing:
        raise SystemExit(f"lgsp dlq: no such topic: {', '.join(missing)}")
    return list(named)


async def _pending(
    bus: Bus, topics: list[str], poll_timeout: float, join_timeout: float = 60.0
) -> tuple[Consumer, list[Message]]:
    """The group's member and every record after the group's committed offsets."""
    consumer = bus.consumer(DLQ_REPLAY_GROUP, topics)
    got: list[Message] = []
    idle = 0
    deadline = time.monotonic() + join_timeout
    while idle < IDLE_POLLS:
        batch = await consumer.poll(timeout=poll_timeout)
        got.extend(batch)
        if batch:
            idle = 0
        elif consumer.assignment():  # idle only counts once the group gave us partitions
            idle += 1
        elif time.monotonic() > deadline:
            await consumer.close()
            raise SystemExit(f"lgsp dlq: no partitions assigned in {join_timeout:g}s")
    got.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return consumer, got


def _describe(m: Message) -> str:
    when = datetime.fromtimestamp(m.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    error = _text(m, DLQ_ERROR).splitlines()[0] if m.headers.get(DLQ_ERROR) else ""
    return (
        f"{m.topic} {m.partition}:{m.offset}  {when}Z  {_text(m, HEADER_EVENT_TYPE) or '?'} "
        f"{_text(m, HEADER_EVENT_ID)}\n"
        f"    from {_text(m, DLQ_ORIGINAL_TOPIC)} (consumer {_text(m, DLQ_CONSUMER) or '?'}, "
        f"{_text(m, DLQ_REASON) or '?'}): {error[:300]}"
    )


async def _run(args: argparse.Namespace, replay: bool) -> int:
    settings = settings_from_args(args)
    # A person waits: a broker that is down is said within seconds, not half a minute.
    bus = open_bus(settings.bus.url, client_id="lgsp-dlq", **interactive_options(settings.bus.url))
    try:
        topics = await _dlq_topics(bus, args.topics)
        if not topics:
            print("no dead-letter topics")
            return 0
        consumer, pending = await _pending(bus, topics, args.poll_timeout)
        try:
            for m in pending:
                print(_describe(m))
            if not replay:
                print(f"{len(pending)} dead letter(s) pending in {len(topics)} topic(s)")
                return 0
            orphans = [m for m in pending if not m.headers.get(DLQ_ORIGINAL_TOPIC)]
            if orphans:
                print(
                    f"lgsp dlq: {len(orphans)} record(s) name no original topic "
                    f"({DLQ_ORIGINAL_TOPIC} header); nothing replayed",
                    file=sys.stderr,
                )
                return 1
            records = [
                (
                    _text(m, DLQ_ORIGINAL_TOPIC),
                    m.key,
                    m.value,
                    {k: v for k, v in m.headers.items() if not k.startswith(DLQ_HEADER_PREFIX)},
                )
                for m in pending
            ]
            await bus.publish_many(records)
            await consumer.commit()
            print(f"replayed {len(records)} dead letter(s) to their original topics")
            return 0
        finally:
            await consumer.close()
    finally:
        await bus.close()


def _list(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, replay=False))


def _replay(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, replay=True))


def register(sub: Subparsers) -> None:
    common = config_option()
    p = sub.add_parser(
        "dlq",
        parents=[common],
        help="list the bus's dead letters, or replay them to their topics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    for name, handler, what in (
        ("list", _list, "show the dead letters not yet replayed"),
        ("replay", _replay, "publish them again to their original topics, mark them replayed"),
    ):
        c = cmds.add_parser(name, parents=[common], help=what, description=what)
        c.add_argument(
            "topics",
            nargs="*",
            metavar="TOPIC",
            help="dead-letter topics (NAME.dlq); default: every one",
        )
        c.add_argument(
            "--poll-timeout",
            type=float,
            default=1.0,
            metavar="SECONDS",
            help="how long one poll waits; two empty polls in a row end the scan (default 1)",
        )
        c.set_defaults(handler=handler)
