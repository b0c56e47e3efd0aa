"""The service runtime: one life cycle for every service plugin (lgsp.plugins).

    logging and tracing → database migrated → bus opened → the plugin's wire(runtime) → gRPC
    server (health, reflection, interceptors) → outbox relay → one supervised consumer loop
    per subscription, and the plugin's background tasks
    → on SIGTERM/SIGINT: drain calls, stop consumers (committing what they handled), stop
      the relay and the background tasks, run the plugin's closers, close the bus and the
      database.

`ServiceRuntime` is that life cycle without signal handling, for tests that run several
services in one event loop; `run_service` adds logging, telemetry and signals for
`python -m services.<name>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from lgsp import db
from lgsp.authn.sessions import EndedSessions
from lgsp.bus import Bus, open_bus, run_consumer
from lgsp.config import Settings, load_settings
from lgsp.grpc.server import LgspServer, build_server, serve_until_signal, server_credentials
from lgsp.inbox import EventProcessor, ensure_topics
from lgsp.logs import setup_logging
from lgsp.metrics import MetricsServer, RuntimeCollector
from lgsp.outbox import OutboxRelay, backoff_delay, pending_count
from lgsp.plugins import Plugin, Subscription, Wiring, load
from lgsp.telemetry import setup_telemetry
from lgsp.tls import uvicorn_ssl

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """A running service's adapters and background tasks."""

    plugin: Plugin
    settings: Settings
    port: int | None = None  # overrides the configured gRPC port (tests use 0)
    bus: Bus | None = None  # a bus shared with other runtimes (tests); owned otherwise
    engine: Engine = field(init=False)
    server: LgspServer = field(init=False)
    relay: OutboxRelay = field(init=False)
    processors: dict[str, EventProcessor] = field(init=False, default_factory=dict)
    wiring: Wiring = field(init=False)
    _owns_bus: bool = field(init=False, default=False)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def section(self) -> Any:
        """The plugin's own settings section."""
        return self.settings.service(self.plugin.name)

    @property
    def app(self) -> Any:
        """The service's composition root, as its wire() returned it."""
        return self.wiring.app

    async def start(self) -> None:
        name = self.plugin.name
        self.engine = db.create_engine(self.section.database_url)
        if self.plugin.migrations is not None:
            await asyncio.to_thread(db.migrate, self.engine, self.plugin.migrations)
        if self.bus is None:
            self.bus = open_bus(
                self.settings.bus.url, client_id=name, partitions=self.settings.bus.partitions
            )
            self._owns_bus = True
        self.relay = OutboxRelay(self.engine, self.bus)
        self.wiring = self.plugin.wire_runtime(self)
        port = self.section.grpc_port if self.port is None else self.port
        self.server = build_server(
            name,
            servicers=list(self.wiring.servicers),
            host=self.settings.platform.host,
            port=port,
            authenticator=self.wiring.authenticator,
            public_methods=self.wiring.public_methods,
            credentials=server_credentials(self.settings),
        )
        self._spawn("outbox relay", lambda: self.relay.run(self._stop))
        for sub in self.wiring.subscriptions:
            self._spawn(f"consumer {sub.group}", self._consume_forever(sub))
        for task in self.wiring.background:
            self._spawn(getattr(task, "__name__", "task"), functools.partial(task, self._stop))
        sessions = getattr(self.wiring.authenticator, "sessions", None)
        if isinstance(sessions, EndedSessions):
            sessions.followed = True  # calls wait for the follower from the very first
            bus = self._bus
            self._spawn(
                "ended sessions", lambda: sessions.follow(bus, self._stop, source=self.plugin.name)
            )
        await self.server.start()

    def after_commit(self) -> None:
        """Call after a unit of work with events committed: the relay publishes at once."""
        self.relay.wake()

    async def stop_background(self) -> None:
        """Stop consumers (they commit what they handled), the relay and the adapters."""
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("background task ended with %r", result)
        for close in self.wiring.closers:
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", getattr(close, "__qualname__", close))
        if self.bus is not None and self._owns_bus:
            await self.bus.close()
        self.engine.dispose()

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(self.plugin.grace_seconds if grace is None else grace)
        await self.stop_background()

    def _spawn(self, what: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(what, factory), name=what))

    async def _supervise(self, what: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop; restart it with backoff if it crashes (the database or
        broker went away), so a fault never leaves the service silently half-working."""
        failures = 0
        while not self._stop.is_set():
            try:
                await factory()
                return
            except Exception:
                failures += 1
                delay = backoff_delay(failures, 0.2, 10.0)
                log.exception("%s crashed; restarting in %.1fs", what, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    def _consume_forever(self, sub: Subscription) -> Callable[[], Awaitable[None]]:
        processor = EventProcessor(
            self.engine,
            sub.handlers,
            self._bus,
            consumer_name=sub.group,
            source=self.plugin.name,
            max_attempts=sub.max_attempts,
        )
        self.processors[sub.group] = processor

        async def consume() -> None:
            await ensure_topics(self._bus, sub.topics)
            consumer = self._bus.consumer(sub.group, sub.topics)
            await run_consumer(consumer, processor, self._stop)

        return consume

    @property
    def _bus(self) -> Bus:
        assert self.bus is not None, "runtime not started"
        return self.bus


def apply_telemetry_settings(
    component: str, settings: Settings, environ: MutableMapping[str, str]
) -> None:
    """A service started on its own (`python -m services.<name>`) follows its telemetry
    settings as it does under `lgsp up`: the runner passes them as OTEL_* variables, and
    those already set (by the runner or the operator) win."""
    for key, value in settings.process_env(component).items():
        if key.startswith("OTEL_") or key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            environ.setdefault(key, value)


def serve_metrics(runtime: ServiceRuntime, port: int | None = None) -> MetricsServer | None:
    """Serve the process's Prometheus metrics on `port` (default its settings' metrics port),
    with the runtime's bus lag, outbox backlog and pool use read at each scrape. A port that
    is taken is logged, not fatal: the service itself still runs."""
    port = runtime.section.metrics_listen_port() if port is None else port
    engine = runtime.engine
    collector = RuntimeCollector(
        lag=getattr(runtime.bus, "lag_sync", None),
        groups=lambda: list(runtime.processors),
        backlog=lambda: pending_count(engine),
        pool=engine.pool,
    )
    settings = runtime.settings
    try:
        served = MetricsServer(settings.platform.host, port, collector, **uvicorn_ssl(settings))
    except OSError as exc:
        log.warning("Prometheus metrics not served: port %d: %s", port, exc)
        return None
    log.info(
        "Prometheus metrics on %s://%s:%d/metrics",
        settings.http_scheme,
        settings.platform.host,
        port,
    )
    return served


def run_service(plugin: Plugin, settings: Settings | None = None) -> int:
    """Run one service until SIGTERM/SIGINT; the exit code."""
    settings = settings or load_settings(os.environ.get("LGSP_CONFIG"))
    setup_logging(
        plugin.name,
        settings.platform.log_level,
        json={"json": True, "text": False}.get(settings.platform.log_format),
        third_party_level=settings.platform.third_party_log_level,
    )
    apply_telemetry_settings(plugin.name, settings, os.environ)
    setup_telemetry(plugin.name)

    async def main() -> None:
        runtime = ServiceRuntime(plugin, settings)
        await runtime.start()
        served = serve_metrics(runtime) if settings.platform.metrics else None

        async def stop() -> None:
            await runtime.stop_background()
            if served is not None:
                served.close()

        await serve_until_signal(runtime.server, on_shutdown=[stop], grace=plugin.grace_seconds)

    asyncio.run(main())
    return 0


def main(package: str) -> int:
    """`python -m services.<name>` (each service's __main__): run the plugin it declares."""
    settings = load_settings(os.environ.get("LGSP_CONFIG"))
    return run_service(load(package.rpartition(".")[2]), settings)
