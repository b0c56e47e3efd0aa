"""The citizens' lookup through a real gateway: a call without a token reaches the methods the
dossiers plugin declares public (and only those), is limited per caller address at the
gateway and logged in its message log; the dossiers service counts each citizen by the
address the gateway appends to x-forwarded-for, and believes that header only from a trusted
proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.api.dossiers.v1 import dossiers_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from lgsp.netaddr import TrustedProxies
from services.dossiers.plugin import PLUGIN as DOSSIERS
from services.gateway.app import GatewayOptions, public_methods_from_plugins
from services.gateway.plugin import PLUGIN as GATEWAY
from services.gateway.proxy import Route
from tests.services.dossiers.citizen_env import CitizenEnv, start
from tests.services.dossiers.test_grpc import refused

LOOKUP = "/lgsp.api.dossiers.v1.DossierLookupService/LookupDossier"


@dataclass
class Through:
    env: CitizenEnv
    gateway: ServiceRuntime
    ch: grpc.aio.Channel

    def lookup(self) -> Any:
        return dossiers_pb2_grpc.DossierLookupServiceStub(self.ch)

    async def log(self) -> list[dict[str, Any]]:
        from services.gateway import tables as t

        await self.gateway.app.msglog.flush()
        with self.gateway.engine.connect() as conn:
            rows = conn.execute(sa.select(t.message_log).order_by(t.message_log.c.seq))
            return [dict(r) for r in rows.mappings()]


@asynccontextmanager
async def through_gateway(
    tmp_path: Path, *, gateway_burst: int, lookup_burst: int
) -> AsyncIterator[Through]:
    dossiers = start(tmp_path / "dossiers", lookup_per_minute="1", lookup_burst=str(lookup_burst))
    env = await anext(dossiers)
    authn = JwtAuthenticator(env.issuer.issuer)
    settings = load_settings(
        env={"LGSP_TELEMETRY_ENABLED": "false", "LGSP_PLATFORM_DATA_DIR": str(tmp_path / "gw")}
    )
    options = GatewayOptions(
        routes={"dossiers": Route("dossiers", env.runtime.server.address, "dossiers")},
        authenticator=authn,
        public_per_minute=1,
        public_burst=gateway_burst,
        seal_every=50,
        seal_interval=0.5,
    )
    gateway = ServiceRuntime(GATEWAY.with_options(options=options), settings, port=0)
    await gateway.start()
    ch = channel(gateway.server.address, service_name="gateway-test")
    try:
        yield Through(env, gateway, ch)
    finally:
        await ch.close()
        await gateway.stop(0)
        await authn.aclose()
        await dossiers.aclose()


def test_the_gateway_reads_the_public_methods_from_the_plugin() -> None:
    assert set(DOSSIERS.public_methods) <= set(public_methods_from_plugins())
    assert LOOKUP in DOSSIERS.public_methods
    assert not [m for m in DOSSIERS.public_methods if "/lgsp.api.dossiers.v1.DossierService/" in m]


async def test_a_citizen_looks_up_without_a_token_and_the_call_is_logged(tmp_path: Path) -> None:
    async with through_gateway(tmp_path, gateway_burst=50, lookup_burst=50) as t:
        d = await t.env.accepted()
        request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
        seen = await t.lookup().LookupDossier(request)
        assert seen.receipt_code == d.receipt_code and seen.agency_name
        catalogue = dossiers_pb2_grpc.ProcedureServiceStub(t.ch)
        assert (await catalogue.ListProcedures(pb.ListProceduresRequest())).procedures
        entries = [e for e in await t.log() if e["method"] == LOOKUP]
        assert len(entries) == 1
        assert entries[0]["status_code"] == 0
        assert entries[0]["client_member"] == "" and entries[0]["caller"] == ""
        assert entries[0]["service_member"] == "dossiers"


async def test_only_public_methods_and_only_without_a_token(tmp_path: Path) -> None:
    async with through_gateway(tmp_path, gateway_burst=50, lookup_burst=50) as t:
        d = await t.env.accepted()
        # A method the plugin does not declare public still needs a member's token.
        dossiers = dossiers_pb2_grpc.DossierServiceStub(t.ch)
        await refused(
            dossiers.GetDossier(pb.GetDossierRequest(id=d.id)),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        # A bad token on a public method is refused, not taken as a citizen without one.
        request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
        for bad in ("Bearer not-a-jwt", "Bearer ", "Basic eDp5"):
            await refused(
                t.lookup().LookupDossier(request, metadata=(("authorization", bad),)),
                grpc.StatusCode.UNAUTHENTICATED,
            )
        expired = t.env.issuer.token(sub="x", exp=1)
        await refused(
            t.lookup().LookupDossier(request, metadata=(("authorization", f"Bearer {expired}"),)),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        codes = [e["status_code"] for e in await t.log()]
        assert codes.count(grpc.StatusCode.UNAUTHENTICATED.value[0]) == 5


async def test_the_gateway_limits_calls_without_a_token_per_address(tmp_path: Path) -> None:
    async with through_gateway(tmp_path, gateway_burst=3, lookup_burst=50) as t:
        d = await t.env.accepted()
        request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
        for _ in range(3):
            await t.lookup().LookupDossier(request)
        # A forged x-forwarded-for does not escape the gateway's bucket (it reads the peer).
        e = await refused(
            t.lookup().LookupDossier(request, metadata=(("x-forwarded-for", "203.0.113.9"),)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert dict(e.trailing_metadata() or ()).get("retry-after-ms")
        log = await t.log()
        assert log[-1]["status_code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        # Members are not under the public limit: a clerk's token still goes through… to the
        # member checks (no such member registered here: PERMISSION_DENIED, not exhausted).
        await refused(
            t.lookup().LookupDossier(request, metadata=t.env.md("ts-vt")),
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_the_service_counts_each_citizen_behind_the_gateway(tmp_path: Path) -> None:
    # Citizens reach the gateway through the province's load balancer, which appends their
    # address (here sent by the test); the gateway appends its peer (the balancer, 127.0.0.1,
    # trusted like the gateway itself by the default trusted_proxies), so the service's
    # bucket is the citizen's.
    async with through_gateway(tmp_path, gateway_burst=50, lookup_burst=2) as t:
        d = await t.env.accepted()
        request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")

        def citizen(address: str) -> Any:
            return t.lookup().LookupDossier(request, metadata=(("x-forwarded-for", address),))

        for _ in range(2):
            await citizen("198.51.100.7")
        await refused(citizen("198.51.100.7"), grpc.StatusCode.RESOURCE_EXHAUSTED)
        await citizen("198.51.100.8")  # another citizen: a bucket of their own


@pytest.fixture
async def untrusting(tmp_path: Path) -> AsyncIterator[CitizenEnv]:
    # The service trusts a proxy elsewhere: the test's direct calls come from an untrusted peer.
    async for e in start(
        tmp_path, lookup_per_minute="1", lookup_burst="2", trusted_proxies="192.0.2.1"
    ):
        yield e


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(
    untrusting: CitizenEnv,
) -> None:
    d = await untrusting.accepted()
    request = pb.LookupDossierRequest(receipt_code=d.receipt_code, verification="1234")
    lookup = untrusting.lookup()
    for i in range(2):
        await lookup.LookupDossier(request, metadata=(("x-forwarded-for", f"203.0.113.{i}"),))
    await refused(
        lookup.LookupDossier(request, metadata=(("x-forwarded-for", "203.0.113.99"),)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


def test_the_client_behind_trusted_proxies() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.client("127.0.0.1", "198.51.100.7") == "198.51.100.7"
    # Entries left of the first untrusted hop may be forged: the rightmost untrusted one.
    assert proxies.client("127.0.0.1", "1.2.3.4, 198.51.100.7, 10.1.2.3") == "198.51.100.7"
    assert proxies.client("198.51.100.7", "1.2.3.4") == "198.51.100.7"  # untrusted peer
    assert proxies.client("127.0.0.1", None) == "127.0.0.1"
    assert proxies.client("127.0.0.1", "10.0.0.1, 127.0.0.1") == "10.0.0.1"  # all trusted
    assert proxies.client("127.0.0.1", "not-an-ip") == "not-an-ip"
    assert not TrustedProxies().trusts("127.0.0.1")
    assert not proxies.trusts("unix:/tmp/x")
