"""The bus pages: lag per consumer group and topic, dead letters with their replay.

Both bus backends: the lag comes from the bus's `lag()` (the embedded log's own tables, or
Kafka's committed offsets against end offsets through the admin API), the dead letters from
lgsp.deadletters, as `lgsp dlq` reads and replays them. The replay is a plain POST handler
(`replay_dead_letters`) so a sign-in / CSRF layer can wrap it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from console.health import LagReader
from console.templating import render
from lgsp import deadletters
from lgsp.bus import Bus, interactive_options, open_bus
from lgsp.bus.base import is_dlq_topic
from lgsp.config import Settings, mask_url

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
# How long a page waits for the dead-letter topics' partitions and their records.
POLL_TIMEOUT = 0.3
JOIN_TIMEOUT = 15.0


@dataclass(frozen=True)
class LagRow:
    group: str
    topic: str
    total: int
    partitions: list[tuple[int, int]]


def lag_rows(lag: dict[tuple[str, str, int], int]) -> tuple[list[LagRow], list[tuple[str, int]]]:
    """Consumer groups' rows (dead-letter topics left out) and dead letters waiting per topic."""
    per: dict[tuple[str, str], list[tuple[int, int]]] = {}
    dead: dict[str, int] = {}
    for (group, topic, partition), n in lag.items():
        if is_dlq_topic(topic):
            dead[topic] = dead.get(topic, 0) + n
        else:
            per.setdefault((group, topic), []).append((partition, n))
    rows = [
        LagRow(g, t, sum(n for _, n in parts), sorted(parts))
        for (g, t), parts in sorted(per.items())
    ]
    return rows, [(t, n) for t, n in sorted(dead.items()) if n]


def routes(settings: Settings, lag_reader: LagReader) -> dict[str, Handler]:
    """The handlers by name: bus_page, dead_letters_page, replay_dead_letters."""

    def bus() -> Bus:
        return open_bus(
            settings.bus.url, client_id="lgsp-console", **interactive_options(settings.bus.url)
        )

    async def bus_page(request: Request) -> Response:
        lag = await lag_reader.read()
        groups, dead = lag_rows(lag) if isinstance(lag, dict) else ([], [])
        html = render(
            request,
            "bus.html",
            title="Event bus",
            backend=mask_url(settings.bus.url),
            error=lag if isinstance(lag, str) else "",
            groups=groups,
            dead=dead,
            refresh=10,
        )
        return HTMLResponse(html)

    async def waiting() -> tuple[dict[str, list[deadletters.DeadLetter]], str]:
        """The letters waiting by topic, or why they cannot be read."""
        by_topic: dict[str, list[deadletters.DeadLetter]] = {}
        b = bus()
        try:
            for d in await deadletters.waiting(
                b, poll_timeout=POLL_TIMEOUT, join_timeout=JOIN_TIMEOUT
            ):
                by_topic.setdefault(d.message.topic, []).append(d)
        except Exception as exc:  # the page says it rather than failing
            return by_topic, f"cannot read the dead letters: {exc}"
        finally:
            await b.close()
        return by_topic, ""

    async def dead_letters_page(request: Request) -> Response:
        by_topic, error = await waiting()
        replayed = request.query_params.get("replayed")
        notice = (
            f"replayed {replayed} dead letter(s) of {request.query_params.get('topic', '')}"
            if replayed and replayed.isdigit()
            else ""
        )
        html = render(
            request,
            "deadletters.html",
            title="Dead letters",
            topics=sorted(by_topic.items()),
            notice=notice,
            error=error,
        )
        return HTMLResponse(html)

    async def replay_dead_letters(request: Request) -> Response:
        form = await request.form()
        topic = form.get("topic")
        if not isinstance(topic, str) or not is_dlq_topic(topic):
            return HTMLResponse(
                render(
                    request,
                    "deadletters.html",
                    title="Dead letters",
                    topics=[],
                    notice="",
                    error="replay needs a dead-letter topic (NAME.dlq)",
                ),
                status_code=400,
            )
        b = bus()
        try:
            done = await deadletters.replay(
                b, [topic], poll_timeout=POLL_TIMEOUT, join_timeout=JOIN_TIMEOUT
            )
        except deadletters.DeadLetterError as exc:
            refused = str(exc)
        else:
            refused = ""
        finally:
            await b.close()
        if refused:  # nothing was replayed: the letters are shown still waiting
            by_topic, error = await waiting()
            return HTMLResponse(
                render(
                    request,
                    "deadletters.html",
                    title="Dead letters",
                    topics=sorted(by_topic.items()),
                    notice="",
                    error=f"{refused}; {error}" if error else refused,
                ),
                status_code=409,
            )
        log.info("replayed %d dead letter(s) of %s from the console", len(done), topic)
        query = urlencode({"replayed": len(done), "topic": topic})
        return RedirectResponse(f"/deadletters?{query}", status_code=303)

    return {
        "bus_page": bus_page,
        "dead_letters_page": dead_letters_page,
        "replay_dead_letters": replay_dead_letters,
    }
