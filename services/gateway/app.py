"""Wiring: configuration → registry, limiter, message log, proxy, servicers.

`wire(runtime)` is the gateway plugin's composition root; tests pass GatewayOptions
(routes to their own upstreams, small limits, a test authenticator's issuer…).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from lgsp.api.gateway.v1 import gateway_pb2_grpc as pbg
from lgsp.api.national.v1 import national_pb2_grpc as npbg
from lgsp.app import ServiceRuntime
from lgsp.auth import Authenticator
from lgsp.authn import authenticator_from_settings
from lgsp.config import Settings, peer
from lgsp.connectors.http import ClientOptions
from lgsp.grpc.client import channel_credentials
from lgsp.plugins import Wiring, discover
from lgsp.ratelimit import KeyedBuckets
from services.gateway.limits import Limiter
from services.gateway.msglog import LogSigner, MessageLog, apply_retention, format_time
from services.gateway.national import BusinessRegistryServicer, National, PopulationServicer
from services.gateway.proxy import GatewayAuthenticator, Proxy, Route
from services.gateway.registry import Registry
from services.gateway.schemas import SchemaRegistry
from services.gateway.servicers import (
    AccessServicer,
    EventServicer,
    MemberServicer,
    MessageLogServicer,
    SchemaRegistryServicer,
)

__all__ = [
    "Gateway",
    "GatewayOptions",
    "TlsOptions",
    "options_from_settings",
    "routes_from_settings",
    "wire",
]

log = logging.getLogger("services.gateway")


@dataclass(frozen=True)
class TlsOptions:
    """A second, TLS port for member systems; with `client_ca_pem` clients must present a
    certificate signed by it (mutual TLS) and the certificate names the member."""

    port: int
    cert_chain_pem: bytes
    private_key_pem: bytes
    client_ca_pem: bytes | None = None
    host: str | None = None


@dataclass(frozen=True)
class GatewayOptions:
    default_rate_per_minute: int = 60_000
    burst_seconds: float = 1.0
    max_concurrent_per_member: int = 64
    seal_every: int = 1000
    seal_interval: float = 5.0
    log_retention_days: int = 0  # 0: keep every entry
    log_batch_size: int = 1000
    registry_refresh_seconds: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024
    routes: Mapping[str, Route] | None = None  # None: the services' ports in Settings
    # Callable without a token (per caller address limits); None: the plugins' public_methods.
    public_methods: Sequence[str] | None = None
    public_per_minute: int = 600
    public_burst: int = 60
    authenticator: Authenticator | None = None  # None: authenticator_from_settings
    tls: TlsOptions | None = None
    data_dir: str | None = None  # where the log signing key lives; None: platform.data_dir
    demo_seed: bool = False  # register the platform's demo members and rights (demo.py)
    national: ClientOptions | None = None  # the national connectors' deadlines, breakers…


def options_from_settings(settings: Settings) -> GatewayOptions:
    """The [gateway] section as options; TLS files are read now (a missing file fails start-up)."""
    g = settings.gateway
    tls = None
    if g.tls_port:
        tls = TlsOptions(
            port=g.tls_port,
            cert_chain_pem=Path(g.tls_cert).read_bytes(),
            private_key_pem=Path(g.tls_key).read_bytes(),
            client_ca_pem=Path(g.tls_client_ca).read_bytes() if g.tls_client_ca else None,
        )
    return GatewayOptions(
        default_rate_per_minute=g.rate_per_minute,
        burst_seconds=g.burst_seconds,
        max_concurrent_per_member=g.max_concurrent_per_member,
        seal_every=g.seal_every_entries,
        seal_interval=g.seal_every_seconds,
        log_retention_days=g.log_retention_days,
        tls=tls,
        demo_seed=g.demo_seed,
        public_per_minute=g.public_per_minute,
        public_burst=g.public_burst,
    )


def routes_from_settings(settings: Settings) -> dict[str, Route]:
    """Each API area an installed service's plugin declares, to that service's address."""
    return {
        area: Route(area, peer(settings, name).address, area)
        for name, plugin in discover().items()
        for area in plugin.routes
    }


def public_methods_from_plugins() -> list[str]:
    """The methods the installed services declare callable without a token."""
    return [m for plugin in discover().values() for m in plugin.public_methods]


@dataclass
class Gateway:
    registry: Registry
    limiter: Limiter
    msglog: MessageLog
    proxy: Proxy
    schemas: SchemaRegistry
    runtime: ServiceRuntime
    national: National
    tls_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def wire(runtime: ServiceRuntime, *, options: GatewayOptions | None = None) -> Wiring:
    """The gateway's objects over the runtime's engine and bus (options: tests' own routes,
    limits, authenticator…)."""
    settings = runtime.settings
    opts = options or options_from_settings(settings)
    routes = dict(opts.routes) if opts.routes is not None else routes_from_settings(settings)
    gw = _build(runtime, settings, opts, routes)

    def add_proxy(proxy: Proxy, server: Any) -> None:
        server.add_generic_rpc_handlers([proxy])
        tls = opts.tls
        if tls is not None:
            creds = grpc.ssl_server_credentials(
                [(tls.private_key_pem, tls.cert_chain_pem)],
                root_certificates=tls.client_ca_pem,
                require_client_auth=tls.client_ca_pem is not None,
            )
            host = tls.host or settings.platform.host
            port = server.add_secure_port(f"{host}:{tls.port}", creds)
            if port == 0:
                raise OSError(f"cannot bind the gateway's TLS port {host}:{tls.port}")
            gw.tls_port = port

    async def message_log(stop: asyncio.Event) -> None:
        await gw.msglog.run(stop)

    async def refresh_registry(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), opts.registry_refresh_seconds)
            if not stop.is_set():
                await asyncio.to_thread(gw.registry.refresh)
        await gw.proxy.close()

    async def retention(stop: asyncio.Event) -> None:
        """Delete sealed log batches older than log_retention_days, at start and daily."""
        days = opts.log_retention_days
        while days > 0 and not stop.is_set():
            cutoff = format_time(datetime.now(UTC) - timedelta(days=days))
            try:
                deleted, checkpoint = await asyncio.to_thread(
                    apply_retention, runtime.engine, cutoff
                )
                if deleted:
                    log.info(
                        "message log retention: %d entries older than %d days deleted "
                        "(checkpoint seal at entry %d)",
                        deleted,
                        days,
                        checkpoint,
                    )
            except Exception:
                log.exception("message log retention failed; retried in a day")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 86_400)

    return Wiring(
        # The proxy first: grpc asks the generic handlers in order on every forwarded call,
        # and the proxy declines the gateway's own methods at once (OWN_PREFIXES).
        servicers=[
            (add_proxy, gw.proxy),
            (pbg.add_MemberServiceServicer_to_server, MemberServicer(gw.registry)),
            (pbg.add_AccessServiceServicer_to_server, AccessServicer(gw.registry)),
            (
                pbg.add_MessageLogServiceServicer_to_server,
                MessageLogServicer(runtime.engine, gw.msglog),
            ),
            (pbg.add_SchemaRegistryServiceServicer_to_server, SchemaRegistryServicer(gw.schemas)),
            (
                pbg.add_EventServiceServicer_to_server,
                EventServicer(gw.registry, lambda: runtime.bus, gw.msglog),
            ),
            (npbg.add_PopulationServiceServicer_to_server, PopulationServicer(gw.national)),
            (
                npbg.add_BusinessRegistryServiceServicer_to_server,
                BusinessRegistryServicer(gw.national),
            ),
        ],
        authenticator=GatewayAuthenticator(
            opts.authenticator or authenticator_from_settings(settings)
        ),
        background=[message_log, refresh_registry, retention],
        closers=[gw.national.aclose],
        app=gw,
    )


def _build(
    runtime: ServiceRuntime, settings: Settings, opts: GatewayOptions, routes: dict[str, Route]
) -> Gateway:
    registry = Registry(runtime.engine, after_commit=runtime.after_commit)
    registry.reload()
    signer = LogSigner.load_or_create(opts.data_dir or settings.platform.data_dir)
    msglog = MessageLog(
        runtime.engine,
        signer,
        batch_size=opts.log_batch_size,
        seal_every=opts.seal_every,
        seal_interval=opts.seal_interval,
    )
    msglog._open()  # before the first call: the chain continues where the table ends
    limiter = Limiter(
        default_per_minute=opts.default_rate_per_minute,
        burst_seconds=opts.burst_seconds,
        max_concurrent=opts.max_concurrent_per_member,
    )
    proxy = Proxy(
        registry,
        limiter,
        msglog,
        routes,
        require_client_certificate=bool(opts.tls and opts.tls.client_ca_pem),
        max_message_bytes=opts.max_message_bytes,
        public_methods=(
            public_methods_from_plugins() if opts.public_methods is None else opts.public_methods
        ),
        public_limits=KeyedBuckets(opts.public_per_minute, opts.public_burst),
        upstream_credentials=channel_credentials(settings),
    )
    if opts.demo_seed:
        from services.gateway.demo import seed_demo_members

        seed_demo_members(registry)
    national = National.from_settings(proxy, settings, opts.national)
    schemas = SchemaRegistry(settings.bus.partitions)
    return Gateway(registry, limiter, msglog, proxy, schemas, runtime, national)
