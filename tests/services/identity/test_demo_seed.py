"""Issue 13 item 8: demo data only when asked, on loopback only, with secrets nobody can derive
from the source: random per official and per client, in <data_dir>/identity-demo.json (0600)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import httpx
import pytest

from services.identity.seed import (
    CLIENTS,
    DEMO_FILE,
    RemoteSeedRefused,
    check_may_seed,
    officials,
    read_demo,
    seed_demo,
)
from tests.fixtures import free_port
from tests.services.identity.conftest import start_identity

TOKEN = "/realms/lgsp/protocol/openid-connect/token"
# What the demo secrets and the shared password used to be: anyone with the source had them.
OLD_PASSWORD = "LgspDemo@2025"


def old_secret(client_id: str) -> str:
    return hashlib.sha256(f"lgsp-demo:{client_id}".encode()).hexdigest()[:32]


async def test_nothing_is_seeded_unless_asked(tmp_path: Path) -> None:
    runtime, ident, _ = await start_identity(tmp_path)  # LGSP_IDENTITY_DEMO_SEED unset…
    try:
        with ident.storage.read() as r:
            assert r.agencies.count() == 0
        assert not (tmp_path / DEMO_FILE).exists()
    finally:
        await runtime.stop(grace=1)


async def test_demo_secrets_are_random_per_official_and_client_and_kept_0600(
    tmp_path: Path,
) -> None:
    runtime, _, base = await start_identity(tmp_path / "a", seed=True)
    try:
        path = tmp_path / "a" / DEMO_FILE
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        demo = read_demo(tmp_path / "a")
        usernames = [o["username"] for o in officials()]
        assert sorted(demo.passwords) == sorted(usernames)
        assert len(set(demo.passwords.values())) == len(usernames)  # one each
        confidential = [c for c, _, _, roles in CLIENTS if roles is not None]
        assert sorted(demo.client_secrets) == sorted(confidential)
        for client_id, secret in demo.client_secrets.items():
            assert secret != old_secret(client_id) and len(secret) >= 32
        admin = next(o["username"] for o in officials() if "admin" in o["roles"])
        async with httpx.AsyncClient() as http:
            form = {"grant_type": "password", "username": admin}
            auth = ("documents", demo.secret("documents"))
            ok = await http.post(
                f"{base}{TOKEN}", data={**form, "password": demo.password(admin)}, auth=auth
            )
            assert ok.status_code == 200
            # What the source used to give away works no more.
            old = await http.post(
                f"{base}{TOKEN}", data={**form, "password": OLD_PASSWORD}, auth=auth
            )
            assert old.status_code == 401
            derived = await http.post(
                f"{base}{TOKEN}",
                data={"grant_type": "client_credentials"},
                auth=("documents", old_secret("documents")),
            )
            assert derived.status_code == 401
            # The public web client takes no passwords; Keycloak's admin-cli (in every realm)
            # does, as python-keycloak's KeycloakAdmin and command-line tools expect.
            public = await http.post(
                f"{base}{TOKEN}",
                data={**form, "password": demo.password(admin), "client_id": "lgsp-web"},
            )
            assert public.status_code == 400 and public.json()["error"] == "unauthorized_client"
            cli = await http.post(
                f"{base}{TOKEN}",
                data={**form, "password": demo.password(admin), "client_id": "admin-cli"},
            )
            assert cli.status_code == 200
        # Seeding again is idempotent and keeps what the file says.
        await runtime.stop(grace=1)
        runtime = None
        os.chmod(path, 0o644)
        runtime2, ident2, _ = await start_identity(tmp_path / "a", seed=True)
        try:
            created = seed_demo(ident2, tmp_path / "a")
            assert created == {"agencies": 0, "users": 0, "clients": 0}
            assert read_demo(tmp_path / "a") == demo
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        finally:
            await runtime2.stop(grace=1)
    finally:
        if runtime is not None:
            await runtime.stop(grace=1)
    # Another installation gets other secrets; its browser clients call back where its console
    # listens.
    port = free_port()
    runtime3, ident3, _ = await start_identity(
        tmp_path / "b", seed=True, env_extra={"LGSP_CONSOLE_PORT": str(port)}
    )
    try:
        web = ident3.clients.row("lgsp", "lgsp-web")
        console = ident3.clients.row("lgsp", "console")
    finally:
        await runtime3.stop(grace=1)
    assert web["redirect_uris"] == [
        f"http://127.0.0.1:{port}/callback",
        f"http://localhost:{port}/callback",
    ]
    assert console["redirect_uris"][0] == f"http://127.0.0.1:{port}/auth/callback"
    assert not web["direct_grants"]
    other = read_demo(tmp_path / "b")
    assert not set(other.passwords.values()) & set(demo.passwords.values())
    assert not set(other.client_secrets.values()) & set(demo.client_secrets.values())


@pytest.mark.parametrize(
    ("host", "allowed", "refused"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("10.20.30.40", False, True),
        ("sso.hatinh.gov.vn", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_demo_data_is_refused_on_a_host_others_reach(
    host: str, allowed: bool, refused: bool
) -> None:
    if refused:
        with pytest.raises(RemoteSeedRefused, match="demo_seed_allow_remote"):
            check_may_seed(host, allowed)
    else:
        check_may_seed(host, allowed)


async def test_a_service_on_all_interfaces_does_not_seed(tmp_path: Path) -> None:
    runtime, ident, _ = await start_identity(tmp_path, seed=True, host="0.0.0.0")
    try:
        with ident.storage.read() as r:
            assert r.agencies.count() == 0
        assert not (tmp_path / DEMO_FILE).exists()
    finally:
        await runtime.stop(grace=1)
