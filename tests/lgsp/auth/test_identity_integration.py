"""Against the built-in identity service (Keycloak-compatible endpoints): KeycloakProvisioner
through python-keycloak, and JwtAuthenticator trusting the service's JWKS and introspection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from lgsp.authn import (
    ClientCredentials,
    HttpIntrospector,
    JwtAuthenticator,
    authenticator_from_settings,
)
from lgsp.config import load_settings
from lgsp.grpc.errors import Unauthenticated
from services.identity.keycloak_provisioning import (
    ClientSpec,
    GroupSpec,
    KeycloakProvisioner,
    RealmSpec,
    UserSpec,
)
from tests.fixtures import free_port

ADMIN_PASSWORD = "Quan-tri-2025!"
JUSTICE = "000.00.12.H27"

SPEC = RealmSpec(
    groups=[GroupSpec("Phòng Hành chính tư pháp", attributes={"agency_code": JUSTICE})],
    users=[
        UserSpec(
            "tranthibinh.stp",
            first_name="Bình",
            last_name="Trần Thị",
            email="ttbinh@stp.hatinh.gov.vn",
            agency_code=JUSTICE,
            password="Mat-khau-2025!",
            realm_roles=["specialist"],
            groups=["Phòng Hành chính tư pháp"],
        )
    ],
    clients=[
        ClientSpec(
            "qlvb-stp",
            name="Hệ thống quản lý văn bản Sở Tư pháp",
            secret="qlvb-stp-secret-2025",
            service_account_roles=["clerk"],
            agency_code=JUSTICE,
        )
    ],
)


@dataclass
class Identity:
    base_url: str
    issuer: str
    settings: object


@pytest.fixture
async def identity(tmp_path) -> AsyncIterator[Identity]:
    from lgsp.app import ServiceRuntime
    from services.identity.plugin import PLUGIN

    http_port = free_port()
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_IDENTITY_HTTP_PORT": str(http_port),
            "LGSP_IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )
    runtime = ServiceRuntime(PLUGIN.with_options(seed_demo=True), settings, port=0)
    await runtime.start()
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{base_url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
            else:
                pytest.fail("identity HTTP endpoint did not come up")
        yield Identity(base_url, f"{base_url}/realms/lgsp", settings)
    finally:
        await runtime.stop(0)


def provisioner(identity: Identity) -> KeycloakProvisioner:
    return KeycloakProvisioner(identity.base_url, "lgsp", username="admin", password=ADMIN_PASSWORD)


async def test_provisioning_is_idempotent(identity: Identity) -> None:
    first = await asyncio.to_thread(provisioner(identity).provision, SPEC)
    assert "user:tranthibinh.stp" in first.created
    assert "client:qlvb-stp" in first.created
    assert "group:Phòng Hành chính tư pháp" in first.created
    second = await asyncio.to_thread(provisioner(identity).provision, SPEC)
    assert not second.changed, second
    assert "user:tranthibinh.stp" in second.unchanged

    p = provisioner(identity)
    users = await asyncio.to_thread(p.admin.get_users, {"username": "tranthibinh.stp"})
    assert len(users) == 1
    assert users[0]["attributes"]["agency_code"] == [JUSTICE]
    roles = await asyncio.to_thread(p.admin.get_realm_roles_of_user, users[0]["id"])
    assert "specialist" in {r["name"] for r in roles}
    groups = await asyncio.to_thread(p.admin.get_user_groups, users[0]["id"])
    assert [g["name"] for g in groups] == ["Phòng Hành chính tư pháp"]

    # A change in the spec is applied as an update, not a duplicate.
    changed = RealmSpec(
        users=[
            UserSpec(
                "tranthibinh.stp",
                first_name="Bình",
                last_name="Trần Thị",
                email="binh.tt@stp.hatinh.gov.vn",
                agency_code=JUSTICE,
            )
        ]
    )
    third = await asyncio.to_thread(p.provision, changed)
    assert "user:tranthibinh.stp" in third.updated
    users = await asyncio.to_thread(p.admin.get_users, {"username": "tranthibinh.stp"})
    assert len(users) == 1 and users[0]["email"] == "binh.tt@stp.hatinh.gov.vn"


async def test_services_trust_the_built_in_provider(identity: Identity) -> None:
    await asyncio.to_thread(provisioner(identity).provision, SPEC)
    creds = ClientCredentials(
        f"{identity.issuer}/protocol/openid-connect/token", "qlvb-stp", "qlvb-stp-secret-2025"
    )
    introspector = HttpIntrospector(
        f"{identity.issuer}/protocol/openid-connect/token/introspect",
        client_id="qlvb-stp",
        client_secret="qlvb-stp-secret-2025",
        cache_ttl_s=0,
    )
    authn = JwtAuthenticator(
        identity.issuer, introspection=introspector, sensitive_methods=["/x.v1.S/Delete"]
    )
    try:
        token = await creds.token()
        principal = await authn.authenticate({"authorization": f"Bearer {token}"}, "/x.v1.S/Get")
        assert principal.kind == "client"
        assert principal.client_id == "qlvb-stp"
        assert principal.agency_code == JUSTICE
        assert principal.has_role("clerk", JUSTICE)
        await authn.authenticate({"authorization": f"Bearer {token}"}, "/x.v1.S/Delete")
        async with httpx.AsyncClient() as client:
            revoked = await client.post(
                f"{identity.issuer}/protocol/openid-connect/revoke",
                data={"token": token},
                auth=("qlvb-stp", "qlvb-stp-secret-2025"),
            )
        assert revoked.status_code == 200
        with pytest.raises(Unauthenticated):
            await authn.authenticate({"authorization": f"Bearer {token}"}, "/x.v1.S/Delete")
    finally:
        await creds.aclose()
        await authn.aclose()


async def test_authenticator_from_settings_trusts_the_running_provider(identity) -> None:
    await asyncio.to_thread(provisioner(identity).provision, SPEC)
    authn = authenticator_from_settings(identity.settings)
    assert isinstance(authn, JwtAuthenticator) and authn.issuer == identity.issuer
    creds = ClientCredentials(
        f"{identity.issuer}/protocol/openid-connect/token", "qlvb-stp", "qlvb-stp-secret-2025"
    )
    try:
        token = await creds.token()
        p = await authn.authenticate({"authorization": f"Bearer {token}"}, "/x.v1.S/Get")
        assert p.client_id == "qlvb-stp"
    finally:
        await creds.aclose()
        await authn.aclose()
