"""Wiring: configuration → registry, limiter, message log, proxy, servicers, ServiceSpec.

`build_spec(settings)` is what `python -m services.gateway` runs; tests pass GatewayOptions
(routes to their own upstreams, small limits, a test authenticator's issuer…).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from lgsp.api.gateway.v1 import gateway_pb2_grpc as pbg
from lgsp.app import ServiceRuntime, ServiceSpec
from lgsp.auth import Authenticator, authenticator_from_settings
from lgsp.config import Settings
from services.gateway.limits import Limiter
from services.gateway.msglog import LogSigner, MessageLog, apply_retention, format_time
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
from services.gateway.tables import MIGRATIONS

__all__ = [
    "AREAS",
    "Gateway",
    "GatewayOptions",
    "TlsOptions",
    "build_spec",
    "options_from_settings",
    "routes_from_settings",
]

log = logging.getLogger("services.gateway")

AREAS = ("identity", "documents", "dossiers", "search", "mail")


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
    authenticator: Authenticator | None = None  # None: authenticator_from_settings
    tls: TlsOptions | None = None
    data_dir: str | None = None  # where the log signing key lives; None: platform.data_dir


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
    )


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host


def routes_from_settings(settings: Settings) -> dict[str, Route]:
    host = _client_host(settings.platform.host)
    return {area: Route(area, f"{host}:{settings.service(area).grpc_port}", area) for area in AREAS}


@dataclass
class Gateway:
    registry: Registry
    limiter: Limiter
    msglog: MessageLog
    proxy: Proxy
    schemas: SchemaRegistry
    runtime: ServiceRuntime
    tls_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_spec(
    settings: Settings,
    options: GatewayOptions | None = None,
    holder: dict[str, Gateway] | None = None,
) -> ServiceSpec:
    opts = options or options_from_settings(settings)
    holder = {} if holder is None else holder
    routes = dict(opts.routes) if opts.routes is not None else routes_from_settings(settings)

    def wire(runtime: ServiceRuntime) -> Gateway:
        gw = holder.get("gateway")
        if gw is not None and gw.runtime is runtime:
            return gw
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
        )
        gw = Gateway(
            registry, limiter, msglog, proxy, SchemaRegistry(settings.bus.partitions), runtime
        )
        holder["gateway"] = gw
        return gw

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
            holder["gateway"].tls_port = port

    def s_proxy(rt: ServiceRuntime) -> tuple[Any, Any]:
        return add_proxy, wire(rt).proxy

    def s_members(rt: ServiceRuntime) -> tuple[Any, Any]:
        return pbg.add_MemberServiceServicer_to_server, MemberServicer(wire(rt).registry)

    def s_access(rt: ServiceRuntime) -> tuple[Any, Any]:
        return pbg.add_AccessServiceServicer_to_server, AccessServicer(wire(rt).registry)

    def s_log(rt: ServiceRuntime) -> tuple[Any, Any]:
        return pbg.add_MessageLogServiceServicer_to_server, MessageLogServicer(
            rt.engine, wire(rt).msglog
        )

    def s_schemas(rt: ServiceRuntime) -> tuple[Any, Any]:
        return pbg.add_SchemaRegistryServiceServicer_to_server, SchemaRegistryServicer(
            wire(rt).schemas
        )

    def s_events(rt: ServiceRuntime) -> tuple[Any, Any]:
        gw = wire(rt)
        return pbg.add_EventServiceServicer_to_server, EventServicer(
            gw.registry, lambda: rt.bus, gw.msglog
        )

    async def message_log(rt: ServiceRuntime, stop: asyncio.Event) -> None:
        await wire(rt).msglog.run(stop)

    async def refresh_registry(rt: ServiceRuntime, stop: asyncio.Event) -> None:
        gw = wire(rt)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), opts.registry_refresh_seconds)
            if not stop.is_set():
                await asyncio.to_thread(gw.registry.reload)
        await gw.proxy.close()

    async def retention(rt: ServiceRuntime, stop: asyncio.Event) -> None:
        """Delete sealed log batches older than log_retention_days, at start and daily."""
        days = opts.log_retention_days
        while days > 0 and not stop.is_set():
            cutoff = format_time(datetime.now(UTC) - timedelta(days=days))
            try:
                deleted, checkpoint = await asyncio.to_thread(apply_retention, rt.engine, cutoff)
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

    authenticator = GatewayAuthenticator(
        opts.authenticator or authenticator_from_settings(settings)
    )
    return ServiceSpec(
        name="gateway",
        # The proxy first: grpc asks the generic handlers in order on every forwarded call,
        # and the proxy declines the gateway's own methods at once (OWN_PREFIXES).
        servicers=[s_proxy, s_members, s_access, s_log, s_schemas, s_events],
        migrations_dir=Path(MIGRATIONS),
        authenticator=authenticator,
        background=[message_log, refresh_registry, retention],
    )
