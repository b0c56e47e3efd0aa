"""Search freshness: the time from a document being issued to it being findable.

The documents and search services run in process on the embedded defaults (SQLite bus and
databases, tantivy index, in a temp dir; real gRPC servers with token checks against a
stand-in issuer). N documents are drafted, reviewed and signed first (not timed), then issued
at a steady rate; for each, a poller asks SearchService for its unique word every 10 ms
until it is found. Beside it, the reference: the bus's own end-to-end latency in the same
run (IssueDocument returned → a plain consumer group on lgsp.documents.v1 receives the
DocumentIssued event).

    python -m bench.search_freshness [--quick] [--documents N] [--rate PER_SECOND]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.api.search.v1 import search_pb2 as spb
from tests.integration.test_search_service import Platform, draft, search_platform, to_signed

GOAL_P99 = 1.0


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


async def run(n: int, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with search_platform(Path(tmp)) as p:
            await measure(p, n, rate)


async def measure(p: Platform, n: int, rate: float) -> None:
    print(f"preparing {n} signed documents…", flush=True)
    signed = [
        await to_signed(
            p.docs, draft(subject=f"Kế hoạch cải cách hành chính mã fz{i}q", recipients=[])
        )
        for i in range(n)
    ]
    word = {d.id: f"fz{i}q" for i, d in enumerate(signed)}
    issued_at: dict[str, float] = {}
    bus_seen: dict[str, float] = {}
    found: dict[str, float] = {}
    stop = asyncio.Event()

    async def reference() -> None:
        consumer = p.bus.consumer(f"bench-freshness-{time.time_ns()}", ["lgsp.documents.v1"])
        try:
            while not stop.is_set():
                for r in await consumer.poll(timeout=0.05):
                    env = events.decode(r.value)
                    if env.type == events.type_name(ev.DocumentIssued):
                        bus_seen.setdefault(env.subject, time.monotonic())
                await consumer.commit()
        finally:
            await consumer.close()

    async def poll(doc_id: str) -> None:
        md = p.md("ubnd-cv")
        while True:
            res = await p.search_stub.Search(
                spb.SearchRequest(query=word[doc_id], page_size=1), metadata=md, timeout=10
            )
            if res.hits and res.hits[0].id == doc_id:
                found[doc_id] = time.monotonic()
                return
            await asyncio.sleep(0.01)

    ref = asyncio.create_task(reference())
    await asyncio.sleep(0.5)  # the reference group has joined
    pollers = []
    interval = 1.0 / rate
    start = time.monotonic()
    print(f"issuing {n} documents at {rate:g}/s…", flush=True)
    for i, d in enumerate(signed):
        await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
        await p.docs.as_("ubnd-vt").IssueDocument(
            dpb.IssueDocumentRequest(document_id=d.id, etag=d.etag)
        )
        issued_at[d.id] = time.monotonic()
        pollers.append(asyncio.create_task(poll(d.id)))
    await asyncio.wait_for(asyncio.gather(*pollers), 60)
    await asyncio.sleep(0.2)
    stop.set()
    await ref
    fresh = [found[i] - issued_at[i] for i in issued_at]
    bus = [bus_seen[i] - issued_at[i] for i in issued_at if i in bus_seen]
    print()
    print(f"{'':34}{'p50':>9}{'p99':>9}{'max':>9}")
    for label, xs in (
        ("issued → findable (search)", fresh),
        ("issued → consumed (bus reference)", bus),
    ):
        print(
            f"{label:34}{pct(xs, 0.5) * 1000:8.0f}ms{pct(xs, 0.99) * 1000:7.0f}ms"
            f"{max(xs) * 1000:7.0f}ms"
        )
    ok = pct(fresh, 0.99) < GOAL_P99
    print(f"\ngoal p99 < {GOAL_P99:g} s: {'met ✔' if ok else 'missed ✘'} ({len(fresh)} documents)")
    if p.serving.indexer is not None:
        print(f"indexer: {dict(p.serving.indexer.counts)}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_freshness", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 documents")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="documents issued per second")
    args = parser.parse_args()
    asyncio.run(run(50 if args.quick else args.documents, args.rate))


if __name__ == "__main__":
    main()
