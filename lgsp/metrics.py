"""Prometheus metrics of a platform process (prometheus-client), on its own port.

What is counted where:
- gRPC calls by method and status code, with latency histograms: the access-log layer of
  every LGSP gRPC server (lgsp.grpc.interceptors), which already has both for its line;
- bus records published (the outbox relay) and consumed (the consumer loop), per topic and
  per consumer group and topic;
- bus lag, outbox backlog and database pool use: read when Prometheus scrapes (a collector),
  so an idle process does no work for them between scrapes.

Each service serves /metrics on `[<service>] metrics_port` (by default its gRPC port + 1000,
so components on one host never share one), from a thread of prometheus-client's own HTTP
server: a scrape never waits for the event loop, and the loop never runs a scrape. One port
per process rather than one endpoint for the platform: Prometheus then sees each process
fail, restart and scale on its own (a gateway of processes would hide that), and it is what
one container per component needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# No `_created` series beside every counter and histogram: twice the series for a start time.
disable_created_metrics()

# Latencies of the platform's calls are milliseconds; a signature or a search may take seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_HANDLED = Counter(
    "lgsp_grpc_server_handled",
    "gRPC calls finished by this process's server, by method and status code.",
    ["grpc_method", "grpc_code"],
)
GRPC_SECONDS = Histogram(
    "lgsp_grpc_server_handling_seconds",
    "Time from a gRPC call's start to its status, by method.",
    ["grpc_method"],
    buckets=_BUCKETS,
)
BUS_PUBLISHED = Counter(
    "lgsp_bus_published_records", "Records this process published to the bus.", ["topic"]
)
BUS_CONSUMED = Counter(
    "lgsp_bus_consumed_records",
    "Records this process's consumers handled, by consumer group and topic.",
    ["group", "topic"],
)

_grpc_children: dict[str, Any] = {}
_handled_children: dict[tuple[str, str], Any] = {}


def observe_call(method: str, code: str, seconds: float) -> None:
    """Count one finished gRPC call (the label children are cached: this is on every call)."""
    child = _grpc_children.get(method)
    if child is None:
        child = _grpc_children[method] = GRPC_SECONDS.labels(method)
    child.observe(seconds)
    key = (method, code)
    counter = _handled_children.get(key)
    if counter is None:
        counter = _handled_children[key] = GRPC_HANDLED.labels(method, code)
    counter.inc()


class RuntimeCollector(Collector):
    """Gauges read at scrape time from a service's bus, outbox and database engine.

    `lag` returns records behind per (group, topic, partition) (the bus's lag, synchronous);
    `groups` limits it to this service's consumer groups. A source that fails is left out of
    the scrape and logged at DEBUG (the scrape itself must not fail)."""

    def __init__(
        self,
        *,
        lag: Callable[[], Mapping[tuple[str, str, int], int]] | None = None,
        groups: Callable[[], Iterable[str]] = lambda: (),
        backlog: Callable[[], int] | None = None,
        pool: Any = None,
    ) -> None:
        self.lag, self.groups, self.backlog, self.pool = lag, groups, backlog, pool

    def describe(self) -> Iterable[Any]:
        return []  # collected at scrape time only: no registration-time call

    def collect(self) -> Iterable[Any]:
        if self.lag is not None:
            lag = GaugeMetricFamily(
                "lgsp_bus_lag_records",
                "Records not yet handled, by consumer group and topic (end against committed).",
                labels=["group", "topic"],
            )
            try:
                mine = set(self.groups())
                totals: dict[tuple[str, str], int] = {}
                for (group, topic, _partition), n in self.lag().items():
                    if group in mine:
                        totals[(group, topic)] = totals.get((group, topic), 0) + n
                for (group, topic), n in sorted(totals.items()):
                    lag.add_metric([group, topic], n)
                yield lag
            except Exception as exc:
                log.debug("bus lag left out of the scrape: %r", exc)
        if self.backlog is not None:
            try:
                yield GaugeMetricFamily(
                    "lgsp_outbox_backlog_events",
                    "Events committed to the outbox and not yet published.",
                    value=self.backlog(),
                )
            except Exception as exc:
                log.debug("outbox backlog left out of the scrape: %r", exc)
        if self.pool is not None:
            yield from _pool_gauges(self.pool)


def _pool_gauges(pool: Any) -> Iterable[Any]:
    """Connections checked out of the SQLAlchemy pool, and its size where it has one."""
    checked_out = getattr(pool, "checkedout", None)
    if callable(checked_out):
        yield GaugeMetricFamily(
            "lgsp_db_pool_checked_out_connections",
            "Database connections in use.",
            value=checked_out(),
        )
    size = getattr(pool, "size", None)
    if callable(size):
        yield GaugeMetricFamily(
            "lgsp_db_pool_size_connections",
            "Connections the database pool keeps.",
            value=size(),
        )


class MetricsServer:
    """prometheus-client's HTTP server on a daemon thread; `close()` stops it."""

    def __init__(
        self,
        host: str,
        port: int,
        collector: Collector | None = None,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        """HTTPS when given a certificate and key (the [tls] ones, lgsp.tls.uvicorn_ssl)."""
        self.collector = collector
        if collector is not None:
            REGISTRY.register(collector)
        try:
            self._server, self._thread = start_http_server(
                port, addr=host, certfile=ssl_certfile, keyfile=ssl_keyfile
            )
        except BaseException:
            if collector is not None:
                REGISTRY.unregister(collector)
            raise
        self.port = int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.collector is not None:
            REGISTRY.unregister(self.collector)
            self.collector = None
        if isinstance(self._thread, threading.Thread):
            self._thread.join(timeout=5)
