"""What the operator console costs: OTLP spans ingested per second beside a bare HTTP handler
on the same server stack, and trace search p95 with 1,000,000 spans stored beside a
primary-key lookup on the same store.

Ingest: two servers, one after the other, each uvicorn in a subprocess of its own on a free
loopback port (`python -m bench.console --serve console|bare`): the console app (token check,
protobuf decode, SQLite insert with its indexes and business keys) and a bare Starlette route
that reads the body and answers 200. This process posts the same pre-encoded OTLP exports
(SPANS_PER_EXPORT spans, as a BatchSpanProcessor sends them) from CONCURRENCY connections for
SECONDS each; the figure is spans per second (the bare row: exports per second × spans per
export, what the stack could carry if storing cost nothing).

Search: a store filled with 1,000,000 spans (200,000 traces of 5 spans over 4 services, every
trace naming a document number, one in 50 failed) in this process; each kind of search run
ROUNDS times with random arguments, p50/p95/max, beside the reference: a trace's spans by
trace id (the index the waterfall uses). Goal: every search p95 < 200 ms.

    python -m bench.console [--quick] [--spans N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

SPANS_PER_EXPORT = 100
CONCURRENCY = 4
SEARCH_GOAL_MS = 200.0
SERVICES = ("gateway", "documents", "search", "dossiers")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _export_body(seed: int) -> bytes:
    """One OTLP protobuf export of SPANS_PER_EXPORT spans (20 traces of 5)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "documents"
    spans = rs.scope_spans.add().spans
    now = time.time_ns()
    rnd = random.Random(seed)
    for t in range(SPANS_PER_EXPORT // 5):
        trace_id = rnd.randbytes(16)
        parent = b""
        for i in range(5):
            s = spans.add()
            s.trace_id, s.span_id, s.parent_span_id = trace_id, rnd.randbytes(8), parent
            s.name, s.kind = f"op{i}", 2
            s.start_time_unix_nano, s.end_time_unix_nano = now + i * 1000, now + 5000
            a = s.attributes.add()
            a.key, a.value.string_value = "lgsp.document.number", f"{seed * 100 + t}/QĐ-UBND"
            b = s.attributes.add()
            b.key, b.value.string_value = "rpc.method", "IssueDocument"
            parent = s.span_id
    return req.SerializeToString()


def serve(kind: str, port: int, data_dir: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    if kind == "console":
        from console.app import create_app
        from lgsp.config import load_settings

        settings = load_settings(
            env={"LGSP_PLATFORM_DATA_DIR": data_dir, "LGSP_CONSOLE_RETENTION_SPANS": "2000000"}
        )
        app = create_app(settings)
    else:

        async def bare(request: Request) -> Response:
            await request.body()
            return Response(b"", media_type="application/x-protobuf")

        app = Starlette(routes=[Route("/v1/traces", bare, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _post_for(url: str, bodies: list[bytes], headers: dict[str, str], seconds: float) -> int:
    """Exports accepted in `seconds` from CONCURRENCY connections."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=30) as client:
            i = n
            while time.perf_counter() < stop:
                r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                assert r.status_code == 200, r.text
                done += 1
                i += CONCURRENCY

    await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))
    return done


def ingest(seconds: float) -> dict[str, float]:
    from lgsp.otlp_token import HEADER, installation_token

    bodies = [_export_body(i) for i in range(200)]
    out = {}
    for kind in ("bare", "console"):
        with tempfile.TemporaryDirectory() as data:
            port = _free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.console", "--serve", kind, str(port), data],
                env={**os.environ, "OTEL_SDK_DISABLED": "true"},
            )
            try:
                url = f"http://127.0.0.1:{port}/v1/traces"
                for _ in range(300):
                    try:
                        httpx.get(url.replace("/v1/traces", "/healthz"), timeout=1)
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                headers = {"content-type": "application/x-protobuf"}
                if kind == "console":
                    headers[HEADER] = installation_token(data)
                asyncio.run(_post_for(url, bodies, headers, 1.0))  # warm-up
                started = time.perf_counter()
                exports = asyncio.run(_post_for(url, bodies, headers, seconds))
                out[kind] = exports * SPANS_PER_EXPORT / (time.perf_counter() - started)
            finally:
                proc.terminate()
                proc.wait(10)
    return out


def fill(store: object, spans: int) -> None:
    from console.store import SpanRecord

    rnd = random.Random(7)
    now = time.time_ns()
    traces = spans // 5
    batch: list[SpanRecord] = []
    for t in range(traces):
        start = now - (traces - t) * 400_000_000  # a trace every 0.4 s: ~22 h of traffic
        trace_id = f"{t:032x}"
        failed = t % 50 == 0
        parent = ""
        for i in range(5):
            service = SERVICES[min(i, 3) if t % 2 else min(i, 2)]
            span_id = f"{t * 5 + i:016x}"
            dur = rnd.randint(1, 40) * 1_000_000 if i else rnd.randint(20, 900) * 1_000_000
            attrs: dict[str, object] = {"rpc.method": f"Method{i}"}
            if i == 1:
                attrs["lgsp.document.number"] = f"{t}/QĐ-UBND"
                attrs["lgsp.agency.code"] = f"000.00.{t % 60:02d}.H27"
            batch.append(
                SpanRecord(
                    trace_id,
                    span_id,
                    parent,
                    f"op{i}",
                    service,
                    2,
                    start + i * 1_000_000,
                    start + i * 1_000_000 + dur,
                    2 if failed and i == 4 else 0,
                    "",
                    attrs,
                    [],
                )
            )
            parent = span_id
        if len(batch) >= 5000:
            store.add(batch)  # type: ignore[attr-defined]
            batch = []
    if batch:
        store.add(batch)  # type: ignore[attr-defined]


def _timed(fn: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, times[-1]


def search(spans: int, rounds: int) -> list[tuple[str, float, float, float]]:
    from console.search import TraceQuery
    from console.store import SpanStore

    rows = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "traces.db"
        store = SpanStore(path, max_spans=spans + 1, max_age_s=48 * 3600)
        t0 = time.perf_counter()
        fill(store, spans)
        fill_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(d).iterdir()) / 1e6
        print(
            f"store: {store.count_spans():,} spans filled in {fill_s:.0f} s "
            f"({spans / fill_s:,.0f} spans/s in process), {size_mb:,.0f} MB on disk "
            f"({size_mb * 1e6 / spans:,.0f} B/span)",
            flush=True,
        )
        traces = spans // 5
        rnd = random.Random(1)
        now = time.time_ns()

        def any_trace() -> str:
            return f"{rnd.randrange(traces):032x}"

        kinds: list[tuple[str, Callable[[], object]]] = [
            ("reference: a trace's spans by id", lambda: store.trace(any_trace())),
            ("trace id", lambda: store.search(TraceQuery(trace_id=any_trace()))),
            (
                "document number",
                lambda: store.search(TraceQuery(key=f"{rnd.randrange(traces)}/QĐ-UBND")),
            ),
            (
                "agency code",
                lambda: store.search(TraceQuery(key=f"000.00.{rnd.randrange(60):02d}.H27")),
            ),
            ("service", lambda: store.search(TraceQuery(service=rnd.choice(SERVICES)))),
            (
                "service + operation",
                lambda: store.search(TraceQuery(service="documents", operation="op1")),
            ),
            ("errors only", lambda: store.search(TraceQuery(errors_only=True))),
            ("min duration 800 ms", lambda: store.search(TraceQuery(min_duration_ns=800_000_000))),
            (
                "service + min duration 35 ms",
                lambda: store.search(TraceQuery(service="search", min_duration_ns=35_000_000)),
            ),
            (
                "time range (an hour, 10 h ago)",
                lambda: store.search(
                    TraceQuery(start_ns=now - 11 * 3600 * 10**9, end_ns=now - 10 * 3600 * 10**9)
                ),
            ),
            (
                "service in a time range",
                lambda: store.search(
                    TraceQuery(
                        service="dossiers",
                        start_ns=now - 11 * 3600 * 10**9,
                        end_ns=now - 10 * 3600 * 10**9,
                    )
                ),
            ),
            (
                "no match (scan bound): service + 10 s",
                lambda: store.search(TraceQuery(service="search", min_duration_ns=10**10)),
            ),
            ("service map, last hour", lambda: store.service_map(now - 3600 * 10**9)),
        ]
        for name, fn in kinds:
            fn()  # warm
            rows.append((name, *_timed(fn, rounds)))
        store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "DATA_DIR"))
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    spans = 50_000 if args.quick else args.spans
    seconds = 1.0 if args.quick else args.seconds
    rounds = 20 if args.quick else 100

    rates = ingest(seconds)
    print(f"\ningest ({SPANS_PER_EXPORT} spans per export, {CONCURRENCY} connections):")
    print(f"  bare handler, same stack   {rates['bare']:>10,.0f} spans/s (if storing were free)")
    print(
        f"  console /v1/traces         {rates['console']:>10,.0f} spans/s "
        f"({rates['console'] / rates['bare']:.0%} of bare)"
    )

    print(f"\nsearch with {spans:,} spans stored ({rounds} rounds each, 100 traces per page):")
    rows = search(spans, rounds)
    print(f"  {'query':<36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for name, p50, p95, top in rows:
        print(f"  {name:<36} {p50:>8.2f} {p95:>8.2f} {top:>8.2f}")
        if not name.startswith("reference"):
            worst = max(worst, p95)
    ok = worst < SEARCH_GOAL_MS
    verdict = "met" if ok else "MISSED"
    print(f"\nworst search p95 {worst:.1f} ms: goal < {SEARCH_GOAL_MS:.0f} ms {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
