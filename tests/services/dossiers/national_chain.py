"""The whole verification chain with real parts, for the tests and bench/dossiers_intake.py:
the population and business registry mocks as processes, the gateway (its national API, the
demo members seeded by [gateway] demo_seed) and the dossiers service wired as in production
(its verifier built by bootstrap from settings: the gateway's address, its client secret, the
issuer's token endpoint), tokens from a stand-in issuer. One event loop for the services."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import grpc.aio
import sqlalchemy as sa

from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.dossiers.v1 import dossiers_pb2 as pb
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.connectors.http import ClientOptions
from lgsp.grpc.client import channel
from services.dossiers.plugin import PLUGIN as DOSSIERS
from services.dossiers.service_layer.verification import NoVerification
from services.gateway.app import GatewayOptions
from services.gateway.plugin import PLUGIN as GATEWAY
from tests.national.mockproc import API_KEY, MockProcess
from tests.services.dossiers.isolated import isolated_env
from tests.support import free_port
from tests.support.issuer import FakeIssuer

PROVINCE, THANH_SEN = "000.00.00.H27", "000.00.61.H27"
AGENCIES = AgencyDirectory(
    [
        Agency(PROVINCE, "Ủy ban nhân dân tỉnh Hà Tĩnh", "UBND", "", "Hà Tĩnh"),
        Agency(THANH_SEN, "Ủy ban nhân dân phường Thành Sen", "UBND", PROVINCE, "Hà Tĩnh"),
    ]
)
DOSSIERS_SECRET = "dossiers-secret"
SEED = 2025  # the mocks' default data seed


@dataclass(frozen=True)
class Person:
    id_number: str
    full_name: str
    birth_date: date


def citizens(count: int, *, skip: int = 0) -> list[Person]:
    """Adults of the population mock (same seed, same people), in a stable order."""
    from national.population.data import generate

    people = [
        Person(c.id_number, c.full_name, c.birth_date)
        for c in generate(SEED).citizens.values()
        if c.birth_date.year <= 2005
    ]
    return people[skip : skip + count]


def enterprises() -> dict[str, Any]:
    """The business registry mock's enterprises by tax code (same seed)."""
    from national.business_registry.data import generate

    return generate(SEED)


def submission(person: Person, **applicant: Any) -> pb.SubmitDossierRequest:
    """A dossier at the Thành Sen desk (procedure 1.004873, one paper) for `person`."""
    fields: dict[str, Any] = {
        "kind": pb.APPLICANT_KIND_CITIZEN,
        "full_name": person.full_name,
        "identity_number": person.id_number,
        "birth_date": person.birth_date.isoformat(),
    }
    fields.update(applicant)
    return pb.SubmitDossierRequest(
        procedure_code="1.004873",
        agency_code=THANH_SEN,
        applicant=pb.Applicant(**fields),
        channel=pb.CHANNEL_COUNTER,
        papers=[pb.SubmittedPaper(paper_code="TK", name="Tờ khai", originals=1)],
    )


@dataclass
class Chain:
    issuer: FakeIssuer
    population: MockProcess
    business_registry: MockProcess
    gateway: ServiceRuntime
    dossiers: ServiceRuntime
    dossiers_ch: grpc.aio.Channel
    gateway_ch: grpc.aio.Channel
    closers: list[Any] = field(default_factory=list)

    def clerk(self) -> Sequence[tuple[str, str]]:
        token = self.issuer.token(
            sub="ts-vt",
            preferred_username="ts-vt",
            realm_access={"roles": ["clerk"]},
            agency_code=THANH_SEN,
            agency_roles={THANH_SEN: ["clerk"]},
        )
        return (("authorization", f"Bearer {token}"),)

    def member(self, client_id: str) -> Sequence[tuple[str, str]]:
        return (("authorization", f"Bearer {self.issuer.client_token(client_id)}"),)

    async def log_entries(self) -> list[dict[str, Any]]:
        from services.gateway import tables as t

        await self.gateway.app.msglog.flush()
        with self.gateway.engine.connect() as conn:
            rows = conn.execute(sa.select(t.message_log).order_by(t.message_log.c.seq))
            return [dict(r) for r in rows.mappings()]

    def count(self, table: str) -> int:
        with self.dossiers.engine.connect() as conn:
            return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())

    async def aclose(self) -> None:
        await self.dossiers_ch.close()
        await self.gateway_ch.close()
        await self.dossiers.stop(0)
        await self.gateway.stop(0)
        for close in self.closers:
            await close()
        await self.issuer.stop()
        await asyncio.to_thread(self.population.stop)
        await asyncio.to_thread(self.business_registry.stop)


async def start_chain(
    tmp: Path, *, verify: bool = True, verify_timeout_s: float = 5.0, mock_args: Sequence[str] = ()
) -> Chain:
    # The gateway and the dossiers service share this loop and its default thread pool: a
    # dossier's use case holds a worker while it waits for its verification, which needs the
    # gateway's log writes (also threads). Separate processes in production; here, room.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
    for sub in ("population", "registry"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    population, registry = await asyncio.gather(
        asyncio.to_thread(MockProcess("population", tmp / "population", *mock_args).start),
        asyncio.to_thread(MockProcess("business_registry", tmp / "registry", *mock_args).start),
    )
    issuer = FakeIssuer()
    issuer.clients["dossiers"] = DOSSIERS_SECRET
    await issuer.start()
    base = {"LGSP_TELEMETRY_ENABLED": "false", "LGSP_NATIONAL_API_KEY": API_KEY}
    gw_settings = load_settings(
        env={
            **base,
            "LGSP_PLATFORM_DATA_DIR": str(tmp / "gateway"),
            "LGSP_NATIONAL_POPULATION_PORT": str(population.port),
            "LGSP_NATIONAL_BUSINESS_REGISTRY_PORT": str(registry.port),
        }
    )
    gw_authn = JwtAuthenticator(issuer.issuer)
    gw_options = GatewayOptions(
        routes={},
        authenticator=gw_authn,
        demo_seed=True,
        seal_every=50,
        seal_interval=0.5,
        national=ClientOptions(breaker_open_s=1.0),  # tests wait for it to half-open
    )
    gateway = ServiceRuntime(GATEWAY.with_options(options=gw_options), gw_settings, port=0)
    await gateway.start()
    gw_port = gateway.server.address.rsplit(":", 1)[1]
    settings = load_settings(
        env={
            **isolated_env(tmp / "dossiers"),
            **base,
            "LGSP_DOSSIERS_VERIFY_APPLICANTS": "true",
            "LGSP_DOSSIERS_HTTP_PORT": str(free_port()),
            "LGSP_DOSSIERS_CLIENT_SECRET": DOSSIERS_SECRET,
            "LGSP_DOSSIERS_VERIFY_TIMEOUT_S": str(verify_timeout_s),
            "LGSP_IDENTITY_ISSUER_BASE_URL": issuer.base_url,
            "LGSP_GATEWAY_GRPC_PORT": gw_port,
        }
    )
    authn = JwtAuthenticator(issuer.issuer)
    options: dict[str, Any] = {"agencies": AGENCIES, "authenticator": authn}
    if not verify:
        options["verifier"] = NoVerification()
    dossiers = ServiceRuntime(DOSSIERS.with_options(**options), settings, port=0)
    await dossiers.start()
    return Chain(
        issuer,
        population,
        registry,
        gateway,
        dossiers,
        channel(dossiers.server.address, service_name="dossiers-test"),
        channel(gateway.server.address, service_name="gateway-test"),
        [authn.aclose, gw_authn.aclose],
    )
