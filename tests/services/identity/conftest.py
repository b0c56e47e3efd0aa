"""A running identity service (gRPC + OIDC HTTP) on free loopback ports, per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from lgsp.app import ServiceRuntime
from lgsp.config import load_settings
from services.identity.bootstrap import Identity
from services.identity.plugin import PLUGIN
from tests.fixtures import free_port

ADMIN_PASSWORD = "Quan-Tri-Th3-Test!"


@dataclass
class Running:
    runtime: ServiceRuntime
    identity: Identity
    base_url: str
    grpc_address: str
    data_dir: Path


async def start_identity(
    tmp_path: Path,
    db_url: str | None = None,
    seed: bool = False,
    host: str | None = None,
    env_extra: dict[str, str] | None = None,
    **extra: str,
) -> tuple[ServiceRuntime, Identity, str]:
    """The service on `db_url` (SQLite in tmp_path by default); `extra` adds LGSP_IDENTITY_*
    settings by key (issuer_base_url="…"), `env_extra` other variables."""
    http_port = free_port()
    env = {
        "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
        "LGSP_IDENTITY_HTTP_PORT": str(http_port),
        "LGSP_IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LGSP_TELEMETRY_ENABLED": "false",
    }
    if db_url:
        env["LGSP_IDENTITY_DATABASE_URL"] = db_url
    if seed:  # otherwise as the default says: no demo data
        env["LGSP_IDENTITY_DEMO_SEED"] = "true"
    if host:
        env["LGSP_PLATFORM_HOST"] = host
    env.update({f"LGSP_IDENTITY_{k.upper()}": v for k, v in extra.items()})
    env.update(env_extra or {})
    settings = load_settings(env=env)
    runtime = ServiceRuntime(PLUGIN, settings, port=0)
    await runtime.start()
    base = f"http://127.0.0.1:{http_port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("identity HTTP app did not come up")
    return runtime, runtime.app, base


@pytest.fixture
async def identity(tmp_path: Path, db_url: str) -> AsyncIterator[Running]:
    """A fresh identity service (no demo data), on SQLite and on PostgreSQL (db_url)."""
    runtime, ident, base = await start_identity(tmp_path, db_url)
    try:
        yield Running(runtime, ident, base, runtime.server.address, tmp_path)
    finally:
        await runtime.stop(grace=1)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """db_url for a module's shared service: a SQLite file, then a fresh PostgreSQL database
    (same server and skip/fail rule as tests.fixtures.postgres)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('identity-db') / 'identity.db'}"
        return
    import psycopg
    from psycopg import sql

    from tests.fixtures.postgres import _url_for

    server = request.getfixturevalue("postgres_server")
    name = f"lgsp_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _url_for(name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(
    tmp_path_factory: pytest.TempPathFactory, module_db_url: str
) -> AsyncIterator[Running]:
    """One identity service with the demo province, shared by a module's tests (each test
    that changes an account makes its own with new_official); the module runs once on SQLite
    and once on PostgreSQL."""
    tmp_path = tmp_path_factory.mktemp("identity")
    runtime, ident, base = await start_identity(tmp_path, module_db_url, seed=True)
    try:
        yield Running(runtime, ident, base, runtime.server.address, tmp_path)
    finally:
        await runtime.stop(grace=1)


OFFICIAL_PASSWORD = "Chuyen-Vien-2025!"


def new_official(run: Running, roles: tuple[str, ...] = ("specialist",)) -> tuple[str, str]:
    """A fresh account in Sở Tư pháp: (user id, username)."""
    import uuid

    from lgsp.api.identity.v1 import identity_pb2 as pb
    from services.identity.domain.access import SYSTEM

    ident = run.identity
    username = f"cv{uuid.uuid4().hex[:8]}.stp"
    user, _ = ident.users.create(
        SYSTEM,
        pb.User(username=username, display_name="Trần Thị Bích", agency_code="000.00.12.H27"),
        password=OFFICIAL_PASSWORD,
    )
    for role in roles:
        ident.roles.grant(SYSTEM, user.id, role, "000.00.12.H27")
    return user.id, username


def demo_password(run: Running, username: str) -> str:
    """A demo official's password, as seeding wrote it to the data directory."""
    from services.identity.seed import read_demo

    return read_demo(run.data_dir).password(username)


def demo_secret(run: Running, client_id: str) -> str:
    """A demo client system's secret, as seeding wrote it to the data directory."""
    from services.identity.seed import read_demo

    return read_demo(run.data_dir).secret(client_id)
