"""Graceful shutdown on a real SIGTERM, and an independent client (buf curl) on reflection."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import grpc
import grpc.aio
import pytest
from opentelemetry.trace import SpanKind

from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.grpc import serve_until_signal
from lgsp.grpc.client import channel
from lgsp.logs import BackgroundHandler, JsonFormatter
from tests.fixtures import missing_server
from tests.lgsp.grpc._support import method

REPO = Path(__file__).resolve().parents[3]


async def test_sigterm_drains_in_flight_calls_then_runs_callbacks() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.lgsp.grpc._shutdown_server",
        "5",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port = None
        while port is None:  # log lines come first; the script's own line has no "msg"
            line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
            port = None if "msg" in line else line["port"]
        async with channel(f"127.0.0.1:{port}") as ch:
            sleep = method(ch, "Sleep")
            assert (await sleep(EchoRequest(message="0"))).message == "0"  # serving
            slow = asyncio.ensure_future(sleep(EchoRequest(message="1.5")))
            await asyncio.sleep(0.3)  # the slow call is in its handler now
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)

            # New calls are refused while the slow one drains.
            async with channel(f"127.0.0.1:{port}") as fresh:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await method(fresh, "Sleep")(EchoRequest(message="0"), timeout=2)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not slow.done()

            reply = await asyncio.wait_for(slow, 10)
            assert reply.message == "1.5"

        rest, stderr = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    records = [
        json.loads(x) if x.startswith("{") else {"msg": x} for x in rest.decode().splitlines()
    ]
    events = [r["msg"] for r in records]
    finished = next(i for i, r in enumerate(records) if r.get("slept_s") == 1.5)
    callback = events.index("on_shutdown ran")
    assert finished < callback < events.index("exited")
    assert any("SIGTERM received" in e for e in events[:finished]), events
    assert any("shutdown callback" in e and "failed" in e for e in events)


async def test_buf_curl_calls_echo_through_reflection(make_server) -> None:
    buf = REPO / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        missing_server("buf not installed: run make setup")
    server, _ = await make_server()
    proc = await asyncio.create_subprocess_exec(
        str(buf),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--reflect",
        f"http://127.0.0.1:{server.port}/lgsp.api.diagnostics.v1.DiagnosticsService/Echo",
        "-d",
        '{"message":"xin chào"}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out) == {"message": "xin chào", "service": "test"}


async def test_serve_until_signal_flushes_the_queued_access_log(
    make_server, tmp_path: Path, spans
) -> None:
    """Records waiting for the background log writer are written before serve returns."""
    server, _ = await make_server()
    out = (tmp_path / "access.log").open("w", encoding="utf-8")
    handler = BackgroundHandler(out, interval=3600)  # only a flush can write them
    handler.setFormatter(JsonFormatter("shutdown-test"))
    access = logging.getLogger("lgsp.access")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        serving = asyncio.create_task(serve_until_signal(server, signals=(signal.SIGUSR1,)))
        async with channel(server.address) as ch:
            await method(ch, "Sleep")(EchoRequest(message="0"))
        assert (tmp_path / "access.log").read_text() == ""  # still queued
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(serving, 10)
        lines = [json.loads(x) for x in (tmp_path / "access.log").read_text().splitlines()]
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        handler.close()
        out.close()
    (line,) = [x for x in lines if x.get("grpc_method", "").endswith("/Sleep")]
    (span,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert line["grpc_code"] == "OK" and line["logger"] == "lgsp.access"
    assert line["trace_id"] == format(span.context.trace_id, "032x")
