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
from datetime import UTC, datetime

from lgsp import deadletters
from lgsp.bus import interactive_options, open_bus
from lgsp.cli import Subparsers, config_option, settings_from_args
from lgsp.deadletters import DeadLetter, DeadLetterError


def _describe(d: DeadLetter) -> str:
    m = d.message
    when = datetime.fromtimestamp(m.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{m.topic} {m.partition}:{m.offset}  {when}Z  {d.event_type or '?'} {d.event_id}\n"
        f"    from {d.original_topic} (consumer {d.consumer or '?'}, "
        f"{d.reason or '?'}): {d.error[:300]}"
    )


async def _run(args: argparse.Namespace, replay: bool) -> int:
    settings = settings_from_args(args)
    # A person waits: a broker that is down is said within seconds, not half a minute.
    bus = open_bus(settings.bus.url, client_id="lgsp-dlq", **interactive_options(settings.bus.url))
    try:
        topics = await deadletters.dlq_topics(bus, args.topics)
        if not topics:
            print("no dead-letter topics")
            return 0
        if not replay:
            letters = await deadletters.waiting(bus, topics, poll_timeout=args.poll_timeout)
            for d in letters:
                print(_describe(d))
            print(f"{len(letters)} dead letter(s) pending in {len(topics)} topic(s)")
            return 0
        done = await deadletters.replay(bus, topics, poll_timeout=args.poll_timeout)
        for d in done:
            print(_describe(d))
        print(f"replayed {len(done)} dead letter(s) to their original topics")
        return 0
    except DeadLetterError as exc:
        raise SystemExit(f"lgsp dlq: {exc}") from None
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
