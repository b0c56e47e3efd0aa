"""gRPC server bootstrap: one call gives a service a production-shaped grpc.aio server.

    server = build_server("documents", servicers=[(add_DocumentsServicer_to_server, svc)])
    await serve_until_signal(server, on_shutdown=[consumer.commit_and_close], grace=10)

Every server gets health checking (grpc.health.v1), reflection listing every service, the
diagnostics Echo, the interceptor chain of lgsp.grpc.interceptors, message-size and
concurrency limits, and keepalive settings that match lgsp.grpc.client.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from lgsp.api.diagnostics.v1 import diagnostics_pb2_grpc
from lgsp.auth import AllowAnonymous, Authenticator
from lgsp.grpc.diagnostics import DiagnosticsServicer
from lgsp.grpc.interceptors import (
    AccessLogInterceptor,
    AuthInterceptor,
    ErrorInterceptor,
    TracingInterceptor,
    wrap_handler,
)
from lgsp.logs import flush_logs
from lgsp.telemetry import flush_telemetry

if TYPE_CHECKING:
    from lgsp.config import Settings

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AddServicer",
    "LgspServer",
    "build_server",
    "serve_until_signal",
    "server_credentials",
]

log = logging.getLogger("lgsp.grpc")

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_RPCS = 256

# The generated `add_XServicer_to_server(servicer, server)` functions.
AddServicer = Callable[[Any, Any], None]

HEALTH_SERVICE = "grpc.health.v1.Health"


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped in the platform layers."""

    def __init__(self, inner: grpc.GenericRpcHandler, layers: Sequence[Any]) -> None:
        self._inner = inner
        self._layers = layers
        self._cache: dict[str, tuple[Any, Any]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._cache.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, wrap_handler(handler, method, self._layers))
            self._cache[method] = cached
        return cached[1]

    def service_name(self) -> str | None:
        name = getattr(self._inner, "service_name", None)
        return name() if callable(name) else None


class _WrappingServer:
    """Stands in for the server in `add_XServicer_to_server`: wraps every method handler in
    the platform layers as it is registered, and remembers the service names."""

    def __init__(self, server: grpc.aio.Server, layers: Sequence[Any]) -> None:
        self._server = server
        self._layers = layers
        self.service_names: list[str] = []

    def _note(self, name: str | None) -> None:
        if name and name not in self.service_names:
            self.service_names.append(name)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        wrapped = [_WrappedGenericHandler(h, self._layers) for h in handlers]
        for handler in wrapped:
            self._note(handler.service_name())
        self._server.add_generic_rpc_handlers(wrapped)

    def add_registered_method_handlers(self, service_name: str, handlers: Any) -> None:
        self._note(service_name)
        self._server.add_registered_method_handlers(
            service_name,
            {
                name: wrap_handler(handler, f"/{service_name}/{name}", self._layers)
                for name, handler in handlers.items()
            },
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class LgspServer:
    """A built, bound, not yet started server."""

    def __init__(
        self,
        service_name: str,
        server: grpc.aio.Server,
        port: int,
        host: str,
        service_names: Sequence[str],
        health_servicer: health.aio.HealthServicer,
    ) -> None:
        self.service_name = service_name
        self.server = server
        self.port = port
        self.host = host
        self.service_names: tuple[str, ...] = tuple(service_names)
        self.health = health_servicer
        self.started = False

    @property
    def address(self) -> str:
        """host:port for clients (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Start serving; every registered service and "" report SERVING."""
        await self.server.start()
        self.started = True
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "gRPC server %s listening on %s",
            self.service_name,
            self.address,
            extra={"port": self.port, "services": list(self.service_names)},
        )

    async def set_serving(self, service: str, serving: bool) -> None:
        """Report one service ("" for the whole server) healthy or not, e.g. when its DB is lost."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(service, status)

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, refuse new calls, let in-flight calls finish within `grace` s."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.started = False

    async def wait_for_termination(self) -> bool:
        return bool(await self.server.wait_for_termination())


def build_server(
    service_name: str,
    *,
    servicers: Iterable[tuple[AddServicer, Any]] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    authenticator: Authenticator | None = None,
    public_methods: Iterable[str] = (),
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_rpcs: int | None = DEFAULT_MAX_CONCURRENT_RPCS,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    tracing: bool = True,
    reflection_enabled: bool = True,
    credentials: grpc.ServerCredentials | None = None,
) -> LgspServer:
    """Build and bind (port 0 picks a free one) a grpc.aio server; call inside the event loop.

    `servicers` are (generated add function, servicer) pairs. `public_methods` adds
    "/pkg.Service/Method" (or "/pkg.Service/" for a whole service) to the methods callable
    without credentials. Calls past `max_concurrent_rpcs` get RESOURCE_EXHAUSTED, as do
    messages over `max_message_bytes`. Extra grpc.aio `interceptors` run before the platform
    layers (outside the SERVER span); prefer the layers for anything per call.
    """
    layers: list[Any] = [TracingInterceptor()] if tracing else []
    layers += [
        AccessLogInterceptor(),
        AuthInterceptor(authenticator or AllowAnonymous(), public_methods),
        ErrorInterceptor(),
    ]
    server_options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Accept the client keepalive pings of lgsp.grpc.client (every 30 s, also when idle).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # Recycle connections now and then so clients rebalance across replicas.
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", 60_000),
        # grpc enables SO_REUSEPORT by default: two servers could then share a port silently.
        ("grpc.so_reuseport", 0),
        *options,
    ]
    server = grpc.aio.server(
        interceptors=list(interceptors) or None,
        options=server_options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    recorder = _WrappingServer(server, layers)
    diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(
        DiagnosticsServicer(service_name), recorder
    )
    for add, servicer in servicers:
        add(servicer, recorder)
    service_names = list(recorder.service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, recorder)
    if reflection_enabled:
        names = [*service_names, HEALTH_SERVICE, reflection.SERVICE_NAME]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(names), recorder
        )
    if credentials is not None:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC server {service_name} to {host}:{port}")
    return LgspServer(service_name, server, bound, host, service_names, health_servicer)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials for every gRPC port when [tls] is enabled (lgsp.tls), else None."""
    if not settings.tls.enabled:
        return None
    from lgsp.tls import files

    f = files(settings)
    return grpc.ssl_server_credentials([(f.key_file.read_bytes(), f.cert_file.read_bytes())])


async def serve_until_signal(
    server: LgspServer,
    *,
    on_shutdown: Iterable[Callable[[], Awaitable[Any]]] = (),
    grace: float = 10.0,
    drain_delay: float = 0.0,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully.

    On the signal: health goes NOT_SERVING; after `drain_delay` s (time for load balancers
    to notice) the server stops accepting calls and in-flight calls get up to `grace` s to
    finish; then each `on_shutdown` callback runs in order (consumers commit their offsets
    and close, outbox relays stop, pools close), each one even if an earlier one failed;
    last, pending spans and log records are flushed (exporters stay open: the process may
    go on).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if not server.started:
            await server.start()
        await stop.wait()
        log.info(
            "%s received, draining in-flight calls (grace %.1fs)",
            received[0].name,
            grace,
            extra={"signal": received[0].name, "grace_s": grace},
        )
        await server.health.enter_graceful_shutdown()
        if drain_delay > 0:
            await asyncio.sleep(drain_delay)
        await server.stop(grace)
        flush_logs()  # the access log of the drained calls comes before the callbacks' output
        for callback in on_shutdown:
            try:
                await callback()
            except Exception:
                log.exception("shutdown callback %r failed", callback)
        log.info("gRPC server %s stopped", server.service_name)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        flush_telemetry()  # the spans of the last calls; safe when telemetry is not set up
        flush_logs()  # records queued for the background log writer are never lost
