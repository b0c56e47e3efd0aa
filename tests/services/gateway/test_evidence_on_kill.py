"""The message log is the province's evidence of every exchange: a response that reached the
caller has its entry in the durable log, even when the gateway process is SIGKILLed at any
moment under load (write-ahead, as data-exchange layers keep their message logs)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import grpc.aio
import sqlalchemy as sa

from lgsp import db
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc as dpbg
from lgsp.api.gateway.v1 import gateway_pb2 as gpb
from lgsp.grpc import build_server
from services.gateway.msglog import verify_log
from services.gateway.proxy import MESSAGE_ID
from services.gateway.registry import Registry
from services.gateway.tables import MIGRATIONS
from tests.support import free_port
from tests.support.issuer import FakeIssuer

REPO = Path(__file__).resolve().parents[3]
MEMBER = "000.00.61.H27:motcua"
CLIENT = "motcua-thanhsen"


class Documents(dpbg.DocumentServiceServicer):
    async def GetDocument(self, request: dpb.GetDocumentRequest, context: object) -> object:
        await asyncio.sleep(random.uniform(0, 0.003))
        return dpb.GetDocumentResponse(document=dpb.Document(id=request.id, subject="Công văn"))


def seed(db_url: str) -> None:
    engine = db.create_engine(db_url)
    db.migrate(engine, MIGRATIONS)
    registry = Registry(engine)
    registry.register_member(
        "test",
        gpb.Member(
            code=MEMBER,
            name="Một cửa phường Thành Sen",
            agency_code="000.00.61.H27",
            kind=gpb.MEMBER_KIND_PROVINCIAL_SYSTEM,
            client_id=CLIENT,
        ),
    )
    registry.grant(
        "test",
        gpb.AccessRight(
            member_code=MEMBER,
            service=gpb.ServiceTarget(service="lgsp.api.documents.v1.DocumentService"),
        ),
    )
    engine.dispose()


async def wait_serving(address: str, proc: subprocess.Popen[bytes]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for _ in range(200):
        assert proc.poll() is None, "the gateway exited at start-up"
        try:
            async with grpc.aio.insecure_channel(address) as ch:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not come up")


async def test_every_answered_exchange_is_in_the_log_when_the_gateway_is_killed(
    tmp_path: Path,
) -> None:
    issuer = FakeIssuer()
    await issuer.start()
    upstream = build_server(
        "documents", servicers=[(dpbg.add_DocumentServiceServicer_to_server, Documents())]
    )
    await upstream.start()
    data = tmp_path / "data"
    db_url = f"sqlite:///{data / 'gateway.db'}"
    data.mkdir()
    await asyncio.to_thread(seed, db_url)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))},
        "PYTHONPATH": str(REPO),
        "LGSP_PLATFORM_DATA_DIR": str(data),
        "LGSP_TELEMETRY_ENABLED": "false",
        "LGSP_GATEWAY_GRPC_PORT": str(port),
        "LGSP_DOCUMENTS_GRPC_PORT": upstream.address.rpartition(":")[2],
        "LGSP_IDENTITY_ISSUER_BASE_URL": issuer.base_url,
    }
    token = issuer.token(client_id=CLIENT, azp=CLIENT, sub=None)
    metadata = (("authorization", f"Bearer {token}"),)
    answered: list[str] = []
    address = f"127.0.0.1:{port}"

    async def client(stop: asyncio.Event, n: int) -> None:
        async with grpc.aio.insecure_channel(address) as ch:
            call = ch.unary_unary(
                "/lgsp.api.documents.v1.DocumentService/GetDocument",
                request_serializer=dpb.GetDocumentRequest.SerializeToString,
                response_deserializer=dpb.GetDocumentResponse.FromString,
            )
            i = 0
            while not stop.is_set():
                i += 1
                pending = call(dpb.GetDocumentRequest(id=f"{n}-{i}"), metadata=metadata, timeout=2)
                try:
                    await pending
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.01)
                    continue
                trailers = dict(await pending.trailing_metadata() or ())
                answered.append(str(trailers[MESSAGE_ID]))

    try:
        for _round in range(4):
            proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "services.gateway"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_serving(address, proc)
                before = len(answered)
                stop = asyncio.Event()
                clients = [asyncio.create_task(client(stop, n)) for n in range(8)]
                for _ in range(600):  # under real load first, however slow the machine
                    if len(answered) > before + 20:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(random.uniform(0.0, 0.6))
                proc.send_signal(signal.SIGKILL)  # in the middle of the load
                await asyncio.to_thread(proc.wait, 10)
                await asyncio.sleep(0.2)
                stop.set()
                await asyncio.gather(*clients)
                assert len(answered) > before + 20  # the load was real
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as conn:
                logged = set(conn.execute(sa.text("SELECT id FROM message_log")).scalars())
            result = verify_log(engine)
        finally:
            engine.dispose()
        missing = [m for m in answered if m not in logged]
        assert missing == [], f"{len(missing)} of {len(answered)} answered calls have no entry"
        assert result.valid, result.reason
    finally:
        await upstream.stop(0)
        await issuer.stop()
