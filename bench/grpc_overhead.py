"""What the platform's gRPC bootstrap costs: a bare grpc.aio Echo against the same Echo on
build_server (tracing at 100% sampling with a batch processor, access log formatted as JSON,
auth, error mapping), in one process, one event loop, client and server together.

Goal: the platform keeps ≥ 70% of bare throughput and adds < 0.3 ms at p50.

Throughput: N concurrent callers make a fixed number of calls. Latency: one caller, calls in
sequence, so p50/p99 show the per-call cost without queueing. Rows:
- bare: grpc.aio.server() + plain channel;
- platform server: build_server() + plain channel (the server-side overhead, the goal);
- platform both ends: build_server() + lgsp.grpc.client.channel() (adds the CLIENT span and
  context injection a calling service pays).
Spans go to an exporter that drops them after the batch processor's work, so export
queueing is counted but nothing is sent. Access-log lines go through the handler
setup_logging installs for an OS file (the background writer) to /dev/null; each throughput
round flushes it before the clock stops, so a row pays for formatting and writing its own
lines. The summary line counts SERVER spans and access-log lines against the calls made.

    python -m bench.grpc_overhead [--quick] [--callers N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import grpc.aio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from lgsp.api.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from lgsp.grpc import build_server
from lgsp.grpc.client import channel as platform_channel
from lgsp.grpc.diagnostics import DiagnosticsServicer
from lgsp.logs import JsonFormatter, flush_logs, setup_logging
from lgsp.telemetry import flush_telemetry, setup_telemetry

P50_GOAL_MS = 0.3
THROUGHPUT_GOAL = 0.70


class DroppingExporter(SpanExporter):
    """Accepts batches and drops them, counting spans (proves tracing was on)."""

    def __init__(self) -> None:
        self.spans = 0
        self.server_spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        self.server_spans += sum(1 for s in spans if s.kind is SpanKind.SERVER)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class CountingJsonFormatter(JsonFormatter):
    """The platform's JSON formatter, counting access-log lines (proves logging was on)."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.access_lines = 0

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.name == "lgsp.access":
            self.access_lines += 1
        return line


@dataclass
class Result:
    name: str
    stub: diagnostics_pb2_grpc.DiagnosticsServiceStub
    calls: int = 0
    calls_per_s: float = 0.0
    cpu_us: float = float("inf")
    samples: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return statistics.quantiles(self.samples, n=100)[49] * 1000

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.samples, n=100)[98] * 1000


REQUEST = diagnostics_pb2.EchoRequest(message="xin chào", payload=b"x" * 64)


async def _throughput(r: Result, calls: int, callers: int) -> None:
    per_caller = calls // callers

    async def caller() -> None:
        for _ in range(per_caller):
            await r.stub.Echo(REQUEST)

    flush_logs()  # nothing left over from the previous row
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    flush_logs()  # this row's access log is formatted and written within its time
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    r.calls += per_caller * callers
    r.calls_per_s = max(r.calls_per_s, per_caller * callers / elapsed)
    r.cpu_us = min(r.cpu_us, cpu / (per_caller * callers) * 1e6)


async def _latency(r: Result, calls: int) -> None:
    for _ in range(calls):
        t0 = time.perf_counter()
        await r.stub.Echo(REQUEST)
        r.samples.append(time.perf_counter() - t0)
    r.calls += calls


async def _bench(args: argparse.Namespace, formatter: CountingJsonFormatter) -> int:
    exporter = DroppingExporter()
    setup_telemetry("bench-grpc", exporter=exporter, processor="batch")

    bare = grpc.aio.server()
    diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer("bare"), bare)
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    platform = build_server("bench", max_concurrent_rpcs=None)
    await platform.start()
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{bare_port}"),
        grpc.aio.insecure_channel(platform.address),
        platform_channel(platform.address, service_name="bench"),
    ]
    names = ["bare grpc.aio", "platform server", "platform both ends"]
    results = [
        Result(name, diagnostics_pb2_grpc.DiagnosticsServiceStub(ch))
        for name, ch in zip(names, channels, strict=True)
    ]
    try:
        for r in results:
            await _throughput(r, args.warmup, args.callers)  # connect, warm caches
            r.calls_per_s, r.cpu_us = 0.0, float("inf")
        # Rounds interleave the rows so load from other processes hits them alike.
        for _ in range(args.rounds):
            for r in results:
                await _throughput(r, args.calls, args.callers)
        chunk = max(1, args.latency_calls // 10)
        for _ in range(args.latency_calls // chunk):
            for r in results:
                await _latency(r, chunk)
    finally:
        for ch in channels:
            await ch.close()
        await platform.stop(0)
        await bare.stop(0)
        flush_telemetry()
        flush_logs()

    base = results[0]
    print(
        f"{args.callers} concurrent callers × {args.calls} calls (best of {args.rounds} "
        f"interleaved rounds); latency: 1 caller × {args.latency_calls} calls; "
        f"64 B payload",
        flush=True,
    )
    platform_calls = results[1].calls + results[2].calls
    print(
        f"platform rows: {platform_calls} calls, {exporter.server_spans} SERVER spans exported "
        f"({exporter.spans} spans in all), {formatter.access_lines} access-log lines written",
        flush=True,
    )
    print(
        f"{'':<20} {'calls/s':>10} {'ratio':>6} {'CPU µs/call':>12} "
        f"{'p50 ms':>8} {'+p50 ms':>8} {'p99 ms':>8}"
    )
    for r in results:
        print(
            f"{r.name:<20} {r.calls_per_s:>10,.0f} {r.calls_per_s / base.calls_per_s:>6.0%} "
            f"{r.cpu_us:>12.0f} {r.p50_ms:>8.3f} {r.p50_ms - base.p50_ms:>+8.3f} {r.p99_ms:>8.3f}"
        )
    server = results[1]
    ratio = server.calls_per_s / base.calls_per_s
    added = server.p50_ms - base.p50_ms
    ok = ratio >= THROUGHPUT_GOAL and added < P50_GOAL_MS
    print(
        f"goal (platform server vs bare): throughput ≥ {THROUGHPUT_GOAL:.0%} → {ratio:.0%}, "
        f"p50 added < {P50_GOAL_MS} ms → {added:+.3f} ms: {'OK' if ok else 'BELOW GOAL'}",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--calls", type=int, default=None, help="calls per throughput round")
    args = parser.parse_args(argv)
    args.calls = args.calls or (2_000 if args.quick else 10_000)
    args.warmup = 400 if args.quick else 2_000
    args.rounds = 1 if args.quick else 5
    args.latency_calls = 500 if args.quick else 3_000
    with open(os.devnull, "w") as devnull:
        # The access log goes through the platform's handler (background writer on an OS
        # file), formatted as JSON and written, unseen.
        handler = setup_logging("bench-grpc", json=True, stream=devnull)
        formatter = CountingJsonFormatter("bench-grpc")
        handler.setFormatter(formatter)
        try:
            return asyncio.run(_bench(args, formatter))
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()


if __name__ == "__main__":
    raise SystemExit(main())
