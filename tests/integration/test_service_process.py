"""run_service as a real process: it serves, relays, consumes, and on SIGTERM exits 0 having
committed the offsets of everything it handled (a restart would not handle anything twice)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lgsp.api.documents.v1 import documents_pb2, documents_pb2_grpc
from lgsp.bus import open_bus
from lgsp.bus.embedded import EmbeddedBus
from lgsp.db import create_engine
from tests.fixtures import free_port
from tests.integration.sample_service import GROUP
from tests.lgsp.storage.support import effects

ROOT = Path(__file__).resolve().parents[2]


async def _wait_serving(address: str, proc: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            raise AssertionError(f"service exited early with {proc.returncode}")
        try:
            async with grpc.aio.insecure_channel(address) as ch:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("service never became SERVING")


async def test_sigterm_commits_consumer_offsets_and_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
        "LGSP_DOCUMENTS_GRPC_PORT": str(port),
        "LGSP_PLATFORM_LOG_FORMAT": "json",
        "OTEL_SDK_DISABLED": "true",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.sample_service",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        address = f"127.0.0.1:{port}"
        await _wait_serving(address, proc)
        async with grpc.aio.insecure_channel(address) as ch:
            stub = documents_pb2_grpc.DocumentServiceStub(ch)
            for i in range(20):
                await stub.CreateDraft(
                    documents_pb2.CreateDraftRequest(
                        document=documents_pb2.Document(subject=f"Công văn số {i}")
                    ),
                    timeout=5,
                )
        engine = create_engine(f"sqlite:///{tmp_path}/documents.db")

        def handled() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(effects)).scalar())

        for _ in range(100):
            if await asyncio.to_thread(handled) == 20:
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(handled) == 20
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = output.decode()
    assert proc.returncode == 0, log
    assert "SIGTERM received" in log

    bus = open_bus(f"sqlite:///{tmp_path}/bus.db")
    try:
        assert isinstance(bus, EmbeddedBus)
        lag = {k: v for k, v in (await bus.lag()).items() if k[0] == GROUP}
    finally:
        await bus.close()
    assert lag, "the consumer group committed nothing"
    assert sum(lag.values()) == 0, lag
    engine.dispose()
