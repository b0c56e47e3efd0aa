"""What the LGSP gateway costs: the same unary call made directly to an upstream service and
through the gateway (access check, limits, forwarding, message log on), in one run.

Processes (2 cores shared): the identity service (real tokens, started once), the upstream (a
build_server with the platform layers and token checks, answering DocumentService.GetDocument
with a small document — a stand-in echo on a routed method, because the gateway answers the
diagnostics Echo itself), the gateway (`python -m bench.gateway --serve-gateway`, its own
process, SQLite message log), and this process with the callers. Both rows send the same
member token; the upstream verifies it either way.

Throughput: N concurrent callers × calls, best of interleaved rounds (direct, gateway,
direct, …) after a warm-up of each; the callers run in this process, apart from the gateway,
with the same stub code, token and request for both rows. Latency: one caller, sequential
calls, interleaved in chunks, p50/p99. The CPU time each process spent per call during the
throughput rounds is printed (from /proc), which is the figure noise disturbs least. After
the gateway stops (flushing and sealing its log) the log is counted against the calls made
through it and verified.

Two topologies, both honest about different questions:
- `shared` (default): every process may run on every core. The box is saturated, so the
  ratio is total CPU per call direct (callers + upstream) over total CPU per call through
  the gateway (callers + upstream + gateway): what the extra hop costs on one small box.
- `pinned`: the gateway on a core of its own, the callers, upstream and identity on the
  other, in both rows (the gateway's core idles in the direct row). This is the gateway as
  deployed — its own host in front of the services — and asks whether it slows them down.

Goal: the gateway keeps ≥ 60% of direct throughput and adds < 1 ms at p50; no entry lost.

    python -m bench.gateway [--quick] [--callers N] [--calls N] [--topology shared|pinned]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx

THROUGHPUT_GOAL = 0.60
P50_GOAL_MS = 1.0
MEMBER = "000.00.61.H27:motcua-thanhsen"
CLIENT = "motcua-thanhsen"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the upstream and gateway processes ------------------------------------------------------


async def _serve_upstream(issuer: str, port_file: str) -> None:
    from lgsp.api.documents.v1 import documents_pb2 as dpb
    from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
    from lgsp.authn import JwtAuthenticator
    from lgsp.grpc import build_server

    class Docs(dpbg.DocumentServiceServicer):
        async def GetDocument(self, request: Any, context: Any) -> Any:
            return dpb.GetDocumentResponse(document=dpb.Document(id=request.id, subject="x" * 64))

    server = build_server(
        "upstream",
        servicers=[(dpbg.add_DocumentServiceServicer_to_server, Docs())],
        authenticator=JwtAuthenticator(issuer),
        max_concurrent_rpcs=None,
    )
    await server.start()
    Path(port_file).write_text(str(server.port))  # noqa: ASYNC240 - once, at start-up
    await _until_signal()
    await server.stop(1)


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_gateway(issuer: str, upstream: str, data_dir: str, port_file: str) -> None:
    from lgsp.api.gateway.v1 import gateway_pb2 as gpb
    from lgsp.app import ServiceRuntime
    from lgsp.authn import JwtAuthenticator
    from lgsp.config import load_settings
    from services.gateway.app import GatewayOptions
    from services.gateway.plugin import PLUGIN
    from services.gateway.proxy import Route

    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": data_dir, "LGSP_TELEMETRY_ENABLED": "false"}
    )
    opts = GatewayOptions(
        routes={"documents": Route("documents", upstream, "documents")},
        authenticator=JwtAuthenticator(issuer),
        default_rate_per_minute=10_000_000,
        max_concurrent_per_member=1024,
    )
    runtime = ServiceRuntime(PLUGIN.with_options(options=opts), settings, port=0)
    await runtime.start()
    gw = runtime.app
    reg = gw.registry
    if reg.member(MEMBER) is None:
        reg.register_member(
            "bench",
            gpb.Member(
                code=MEMBER,
                name="Một cửa phường Thành Sen",
                agency_code="000.00.61.H27",
                kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
                client_id=CLIENT,
            ),
        )
        reg.grant(
            "bench",
            gpb.AccessRight(
                member_code=MEMBER,
                service=gpb.ServiceTarget(service="lgsp.api.documents.v1.DocumentService"),
            ),
        )
    Path(port_file).write_text(str(runtime.server.port))  # noqa: ASYNC240 - once, at start-up
    await _until_signal()
    await runtime.stop(2)
    print(json.dumps({"appended": gw.msglog.appended, "written": gw.msglog.written}), flush=True)


# --- the measuring process -------------------------------------------------------------------


@dataclass
class Row:
    name: str
    stub: Any
    calls: int = 0
    calls_per_s: float = 0.0
    samples: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, rounds
    round_calls: int = 0

    def pct(self, q: int) -> float:
        return statistics.quantiles(self.samples, n=100)[q - 1] * 1000


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pin(pid: int, cpu: int) -> None:
    """Every thread of a process (grpc's poller, executor threads…) onto one CPU."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, stdout=subprocess.PIPE
    )


async def _wait_file(path: Path, proc: subprocess.Popen[bytes], what: str) -> int:
    for _ in range(600):
        text = await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
        if text:
            return int(text)
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


async def _bench(args: argparse.Namespace, tmp: Path) -> int:
    from lgsp.api.documents.v1 import documents_pb2 as dpb
    from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg

    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    http_port = _free_port()
    base = f"http://127.0.0.1:{http_port}"
    issuer = f"{base}/realms/lgsp"
    quiet = {"LGSP_PLATFORM_LOG_LEVEL": "WARNING", "LGSP_TELEMETRY_ENABLED": "false"}
    identity = _spawn(
        ["-m", "services.identity"],
        {
            **quiet,
            "LGSP_PLATFORM_DATA_DIR": str(tmp / "identity"),
            "LGSP_IDENTITY_DEMO_SEED": "true",
            "LGSP_IDENTITY_HTTP_PORT": str(http_port),
            "LGSP_IDENTITY_GRPC_PORT": str(_free_port()),
            "IDENTITY_ADMIN_PASSWORD": "Quan-Tri-Th3-Bench!",
        },
    )
    procs = [identity]
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(1200):
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if identity.poll() is not None:
                    raise RuntimeError("identity service exited")
                await asyncio.sleep(0.05)
            from services.identity.seed import read_demo

            for _ in range(200):  # the demo province is seeded just after start-up
                r = await http.post(
                    f"{issuer}/protocol/openid-connect/token",
                    data={"grant_type": "client_credentials"},
                    auth=(CLIENT, read_demo(tmp / "identity").client_secrets.get(CLIENT, "")),
                )
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            r.raise_for_status()
            token = r.json()["access_token"]
        up_file, gw_file = tmp / "upstream.port", tmp / "gateway.port"
        upstream = _spawn(["-m", "bench.gateway", "--serve-upstream", issuer, str(up_file)], quiet)
        procs.append(upstream)
        up_port = await _wait_file(up_file, upstream, "upstream")
        gateway = _spawn(
            [
                "-m",
                "bench.gateway",
                "--serve-gateway",
                issuer,
                f"127.0.0.1:{up_port}",
                str(tmp / "gateway"),
                str(gw_file),
            ],
            quiet,
        )
        procs.append(gateway)
        gw_port = await _wait_file(gw_file, gateway, "gateway")

        md = (("authorization", f"Bearer {token}"),)
        request = dpb.GetDocumentRequest(id="bench-0001")
        channels = [
            grpc.aio.insecure_channel(f"127.0.0.1:{up_port}"),
            grpc.aio.insecure_channel(f"127.0.0.1:{gw_port}"),
        ]
        rows = [
            Row("direct", dpbg.DocumentServiceStub(channels[0])),
            Row("through gateway", dpbg.DocumentServiceStub(channels[1])),
        ]

        async def throughput(row: Row, calls: int) -> float:
            per = calls // args.callers

            async def caller() -> None:
                for _ in range(per):
                    await row.stub.GetDocument(request, metadata=md)

            cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(args.callers)))
            elapsed = time.perf_counter() - started
            for name, pid in pids.items():
                row.cpu[name] = row.cpu.get(name, 0.0) + _cpu_seconds(pid) - cpu0[name]
            row.calls += per * args.callers
            return per * args.callers / elapsed

        pids = {"client": os.getpid(), "upstream": upstream.pid, "gateway": gateway.pid}
        if args.topology == "pinned":
            # The gateway on a core of its own, as a gateway host in front of the services;
            # the callers, the upstream and identity share the other core in both rows.
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) < 2:
                raise SystemExit("--topology pinned needs two CPUs")
            for pid in (os.getpid(), upstream.pid, identity.pid):
                _pin(pid, cpus[0])
            _pin(gateway.pid, cpus[1])
        for row in rows:
            await throughput(row, args.warmup)
            row.cpu.clear()
        for _ in range(args.rounds):
            for row in rows:
                row.calls_per_s = max(row.calls_per_s, await throughput(row, args.calls))
                row.round_calls += args.calls // args.callers * args.callers
        chunk = max(1, args.latency_calls // 10)
        for _ in range(args.latency_calls // chunk):
            for row in rows:
                for _ in range(chunk):
                    t0 = time.perf_counter()
                    await row.stub.GetDocument(request, metadata=md)
                    row.samples.append(time.perf_counter() - t0)
                row.calls += chunk
        for ch in channels:
            await ch.close()
        gateway.send_signal(signal.SIGTERM)
        out, _ = gateway.communicate(timeout=60)
        counts = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    import sqlalchemy as sa

    from lgsp import db
    from services.gateway import tables as t
    from services.gateway.msglog import verify_log

    engine = db.create_engine(f"sqlite:///{tmp / 'gateway' / 'gateway.db'}")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(t.message_log)).scalar()
    verdict = verify_log(engine)
    engine.dispose()

    direct, gw = rows
    where = (
        "the gateway pinned to one core, callers + upstream + identity to the other"
        if args.topology == "pinned"
        else "all processes share the cores"
    )
    print(
        f"{args.callers} concurrent callers × {args.calls} calls (best of {args.rounds} "
        f"interleaved rounds); latency: 1 caller × {args.latency_calls} calls; "
        f"gateway, upstream and identity in their own processes ({where}); "
        f"message log on (SQLite); load average before: {load0}"
    )
    print(f"{'':<18} {'calls/s':>10} {'ratio':>6} {'p50 ms':>8} {'+p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row.name:<18} {row.calls_per_s:>10,.0f} {row.calls_per_s / direct.calls_per_s:>6.0%}"
            f" {row.pct(50):>8.3f} {row.pct(50) - direct.pct(50):>+8.3f} {row.pct(99):>8.3f}"
        )
    print("CPU per call during the throughput rounds (µs, all rounds):")
    for row in rows:
        parts = ", ".join(
            f"{name} {row.cpu[name] / row.round_calls * 1e6:.0f}"
            for name in ("client", "upstream", "gateway")
        )
        print(f"  {row.name:<16} {parts}")
    lossless = stored == gw.calls == counts["appended"]
    print(
        f"message log: {stored} entries stored, {gw.calls} calls made through the gateway "
        f"({counts['appended']} appended): {'log entries == calls made' if lossless else 'LOST'}; "
        f"{verdict.describe()}"
    )
    ratio = gw.calls_per_s / direct.calls_per_s
    added = gw.pct(50) - direct.pct(50)
    ok = ratio >= THROUGHPUT_GOAL and added < P50_GOAL_MS and lossless and verdict.valid
    print(
        f"goal: throughput ≥ {THROUGHPUT_GOAL:.0%} of direct → {ratio:.0%}, p50 added "
        f"< {P50_GOAL_MS} ms → {added:+.3f} ms, no entry lost: {'OK' if ok else 'BELOW GOAL'}",
        flush=True,
    )
    return 0 if lossless and verdict.valid else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-upstream"]:
        asyncio.run(_serve_upstream(argv[1], argv[2]))
        return 0
    if argv[:1] == ["--serve-gateway"]:
        profile = os.environ.get("BENCH_GATEWAY_PROFILE")  # a path: cProfile the gateway
        if profile:
            import cProfile

            with cProfile.Profile() as prof:
                asyncio.run(_serve_gateway(argv[1], argv[2], argv[3], argv[4]))
            prof.dump_stats(profile)
            return 0
        asyncio.run(_serve_gateway(argv[1], argv[2], argv[3], argv[4]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--calls", type=int, default=None, help="calls per throughput round")
    parser.add_argument(
        "--topology",
        choices=("shared", "pinned"),
        default="shared",
        help="shared: every process on every core (total CPU decides); pinned: the gateway "
        "on a core of its own (does it slow the services down?)",
    )
    args = parser.parse_args(argv)
    args.calls = args.calls or (2_000 if args.quick else 10_000)
    args.warmup = 400 if args.quick else 2_000
    args.rounds = 1 if args.quick else 3
    args.latency_calls = 500 if args.quick else 3_000
    with tempfile.TemporaryDirectory(prefix="lgsp-bench-gateway-") as tmp:
        return asyncio.run(_bench(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
