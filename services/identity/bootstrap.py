"""Wiring: configuration → storage, use cases, HTTP app, gRPC servicers.

`wire_service(runtime)` is the plugin's composition root; tests pass their own options. The
OIDC HTTP app runs under uvicorn as a background task of the service, in the same process
and event loop as the gRPC server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from lgsp.api.identity.v1 import admin_pb2_grpc, identity_pb2_grpc
from lgsp.api.identity.v1 import identity_pb2 as pb
from lgsp.app import ServiceRuntime
from lgsp.authn import issuer_from_settings
from lgsp.config import Settings
from lgsp.http_server import serve_asgi
from lgsp.plugins import Wiring
from lgsp.tls import uvicorn_ssl
from services.identity.adapters.unit_of_work import Storage
from services.identity.domain.access import ADMIN_CLI, MASTER, REALM, SYSTEM
from services.identity.domain.realm_settings import RealmSettings
from services.identity.domain.sessions import DEFAULT_SSO, SsoLifetimes
from services.identity.entrypoints.grpc import (
    AdminServicer,
    IdentityServicer,
    local_authenticator,
)
from services.identity.entrypoints.http import OidcApp
from services.identity.service_layer.agencies import Agencies
from services.identity.service_layer.app_passwords import DEFAULT_PER_USER, AppPasswords
from services.identity.service_layer.cache import DirectoryCache
from services.identity.service_layer.clients import Clients
from services.identity.service_layer.grants import Grants
from services.identity.service_layer.groups import Groups
from services.identity.service_layer.keys import KeyStore
from services.identity.service_layer.logins import Logins
from services.identity.service_layer.realm_settings import RealmPolicies
from services.identity.service_layer.roles import Roles
from services.identity.service_layer.sessions import Sessions
from services.identity.service_layer.sso import SingleSignOn
from services.identity.service_layer.users import Users

log = logging.getLogger("services.identity")

MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS_TOPIC = "lgsp.identity.v1"
# Deprecated: read only while identity.admin_password is "" (older test fixtures set it).
ADMIN_PASSWORD_FILE = "identity-admin-password"


def public_base_url(settings: Settings, http_port: int | None = None) -> str:
    """What issuers start with: identity.issuer_base_url, else http://{host}:{http_port}.

    Derived by lgsp.authn.issuer_from_settings, so the tokens' `iss` is exactly what the other
    services trust."""
    ident = dataclasses.replace(
        settings.identity,
        provider="builtin",
        http_port=http_port or settings.identity.http_port,
    )
    issuer = issuer_from_settings(settings.with_section("identity", ident))
    return issuer.removesuffix(f"/realms/{REALM}")


@dataclass
class Identity:
    """The identity service's objects over one engine: its storage, the use cases, the app."""

    storage: Storage
    agencies: Agencies
    users: Users
    roles: Roles
    groups: Groups
    clients: Clients
    keys: KeyStore
    logins: Logins
    grants: Grants
    sessions: Sessions
    app: OidcApp
    app_passwords: AppPasswords
    sso: SingleSignOn


def wire(
    engine: Engine,
    base_url: str,
    after_commit: Any = lambda: None,
    app_passwords_per_user: int = DEFAULT_PER_USER,
    sso_lifetimes: SsoLifetimes = DEFAULT_SSO,
) -> Identity:
    storage = Storage(engine, after_commit=after_commit)
    # The realms' settings: the configured ones, unless an administrator changed them.
    policies = RealmPolicies(
        storage, RealmSettings(sso_idle=sso_lifetimes.idle, sso_max=sso_lifetimes.max)
    )
    keys = KeyStore(storage)
    keys.load(force=True)  # creates the first key now, never inside a token transaction
    cache = DirectoryCache(storage)
    logins = Logins(storage, app_password_verifies=app_passwords_per_user, policies=policies)
    grants = Grants(storage, keys, logins, cache, base_url, sso=sso_lifetimes, policies=policies)
    sessions = Sessions(storage, keys, cache, base_url)
    sso = SingleSignOn(storage, keys, base_url, sso_lifetimes, policies=policies)
    storage.on_sessions_ended = sso.notify_later
    agencies, users, roles = Agencies(storage), Users(storage), Roles(storage)
    users.policies = policies
    groups, clients = Groups(storage), Clients(storage)
    app = OidcApp(
        storage,
        keys=keys,
        logins=logins,
        grants=grants,
        sessions=sessions,
        users=users,
        roles=roles,
        groups=groups,
        clients=clients,
        sso=sso,
    )
    return Identity(
        storage,
        agencies,
        users,
        roles,
        groups,
        clients,
        keys,
        logins,
        grants,
        sessions,
        app,
        AppPasswords(storage, app_passwords_per_user),
        sso,
    )


def ensure_master(identity: Identity, data_dir: str | None, admin_password: str = "") -> str | None:
    """admin-cli in every realm, and the master realm's admin user (Keycloak's bootstrap
    admin).

    The password is `admin_password` (setting identity.admin_password), else one is generated
    and written to <data_dir>/identity-admin-password (mode 0600). Returns it when newly
    created."""
    for realm in (MASTER, REALM):
        if identity.clients.row(realm, ADMIN_CLI) is None:
            identity.clients.create(
                SYSTEM,
                pb.ClientSystem(client_id=ADMIN_CLI, display_name=ADMIN_CLI),
                realm=realm,
                secret=None,
                service_accounts=False,
            )
    admin = identity.users.find(MASTER, "admin")
    if admin is not None:
        return None
    password = admin_password
    if not password:
        from services.identity.domain.security import new_secret

        password = new_secret(15) + "Aa1!"
        if data_dir:
            path = Path(data_dir) / ADMIN_PASSWORD_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            log.info("master realm admin created; its password is in %s", path)
    user, _ = identity.users.create(
        SYSTEM,
        pb.User(username="admin", display_name="Quản trị hệ thống"),
        password=password,
        realm=MASTER,
    )
    identity.roles.grant(SYSTEM, user.id, "admin", "")
    return password


def _identity_servicer(i: Identity) -> IdentityServicer:
    return IdentityServicer(i.agencies, i.users, i.groups, i.clients, i.app_passwords)


def _admin_servicer(i: Identity) -> AdminServicer:
    return AdminServicer(i.agencies, i.users, i.roles, i.groups, i.clients, i.app_passwords)


async def _ensure_topics(runtime: ServiceRuntime) -> None:
    """Identity's topics exist before its first events (a broker may not create them on
    publish); in the background: a broker that is down must not hold up sign-ins."""
    from lgsp.authn.sessions import SESSIONS_TOPIC
    from lgsp.inbox import ensure_topics

    if runtime.bus is None:
        return
    try:
        await ensure_topics(runtime.bus, [EVENTS_TOPIC, SESSIONS_TOPIC], with_dlq=False)
    except Exception as e:  # the relay retries publishing anyway
        log.warning("could not create identity's topics: %s", e)


def wire_service(
    runtime: ServiceRuntime, *, http_port: int | None = None, seed_demo: bool | None = None
) -> Wiring:
    """The identity plugin's composition root. seed_demo None: as the identity.demo_seed
    setting says (the demo province is seeded on first start only, when the directory is
    empty)."""
    settings = runtime.settings
    port = http_port or settings.identity.http_port
    ident = wire(
        runtime.engine,
        public_base_url(settings, port),
        runtime.after_commit,
        settings.identity.app_passwords_per_user,
        SsoLifetimes(
            settings.identity.sso_session_idle_seconds, settings.identity.sso_session_max_seconds
        ),
    )
    if seed_demo is None:
        seed_demo = settings.identity.demo_seed
    authenticator = local_authenticator(ident.sessions, ident.app.build())

    async def oidc_server(stop: asyncio.Event) -> None:
        topics = asyncio.create_task(_ensure_topics(runtime))
        await asyncio.to_thread(ident.keys.load, True)
        await asyncio.to_thread(
            ensure_master, ident, settings.platform.data_dir, settings.identity.admin_password
        )
        if seed_demo:
            from services.identity.seed import RemoteSeedRefused, check_may_seed
            from services.identity.seed import seed_demo as seed

            try:
                check_may_seed(settings.platform.host, settings.identity.demo_seed_allow_remote)
            except RemoteSeedRefused as e:
                log.error("%s", e)
            else:
                await asyncio.to_thread(
                    seed, ident, settings.platform.data_dir, True, settings.console_url
                )
        # Forwarded headers only from the proxies named in identity.trusted_proxies.
        await serve_asgi(
            ident.app.build(),
            settings.platform.host,
            port,
            stop,
            trusted_proxies=settings.identity.proxies(),
            ssl=uvicorn_ssl(settings),
        )
        topics.cancel()

    return Wiring(
        servicers=[
            (
                identity_pb2_grpc.add_IdentityServiceServicer_to_server,
                _identity_servicer(ident),
            ),
            (admin_pb2_grpc.add_AdminServiceServicer_to_server, _admin_servicer(ident)),
        ],
        authenticator=authenticator,
        background=[oidc_server],
        closers=[authenticator.aclose],
        app=ident,
    )
