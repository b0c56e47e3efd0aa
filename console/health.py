"""Probing each component's listening sockets, and reading event lag from the bus."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lgsp.config import Endpoint, Settings, mask_url
from lgsp.grpc.client import channel_credentials
from lgsp.tls import client_ssl_context

TIMEOUT = 1.0


@dataclass(frozen=True)
class Probe:
    endpoint: Endpoint
    state: str  # "up" | "degraded" | "down" | "unknown"
    detail: str


async def probe(
    endpoint: Endpoint, limit_s: float = TIMEOUT, settings: Settings | None = None
) -> Probe:
    """One endpoint's state; over TLS trusting the platform's CA when `settings` enable it."""
    tls = settings is not None and settings.tls.enabled
    try:
        if endpoint.protocol == "grpc":
            creds = channel_credentials(settings) if settings is not None and tls else None
            return await _grpc(endpoint, limit_s, creds)
        if endpoint.protocol == "http":
            verify = client_ssl_context(settings) if settings is not None and tls else None
            return await _http(endpoint, limit_s, verify)
        return await _tcp(endpoint, limit_s)
    except Exception as exc:  # a probe must never take the page down
        return Probe(endpoint, "unknown", f"probe failed: {exc}")


async def probe_all(
    endpoints: list[Endpoint], limit_s: float = TIMEOUT, settings: Settings | None = None
) -> list[Probe]:
    return list(await asyncio.gather(*(probe(e, limit_s, settings) for e in endpoints)))


def _channel(ep: Endpoint, creds: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if creds is not None:
        return grpc.aio.secure_channel(ep.address, creds)
    return grpc.aio.insecure_channel(ep.address)


async def _grpc(ep: Endpoint, limit_s: float, creds: grpc.ChannelCredentials | None) -> Probe:
    async with _channel(ep, creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=limit_s)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            details = exc.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and "handshake" in details.lower():
                # Running, but one side speaks TLS and the other not, or the CA differs.
                return Probe(ep, "degraded", f"TLS handshake failed: {details[-160:]}")
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return Probe(ep, "down", "not running")
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return Probe(ep, "degraded", "answers, but has no gRPC health service")
            return Probe(ep, "degraded", f"health check failed: {code.name}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return Probe(ep, "up" if status == "SERVING" else "degraded", status)


async def _http(ep: Endpoint, limit_s: float, verify: ssl.SSLContext | None) -> Probe:
    scheme = "https" if verify is not None else "http"
    async with httpx.AsyncClient(timeout=limit_s, verify=verify or True) as client:
        try:
            resp = await client.get(f"{scheme}://{ep.address}/healthz")
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in str(exc):
                return Probe(ep, "degraded", f"TLS handshake failed: {exc}")
            return Probe(ep, "down", "not running")
        except httpx.ConnectTimeout:
            return Probe(ep, "down", "not running")
        except httpx.HTTPError as exc:
            return Probe(ep, "degraded", f"no answer: {type(exc).__name__}")
    if resp.status_code < 300:
        return Probe(ep, "up", f"HTTP {resp.status_code}")
    return Probe(ep, "degraded", f"/healthz answered HTTP {resp.status_code}")


async def _tcp(ep: Endpoint, limit_s: float) -> Probe:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), limit_s)
    except (OSError, TimeoutError):
        return Probe(ep, "down", "not running")
    try:
        greeting = await asyncio.wait_for(reader.readline(), limit_s)
    except (OSError, TimeoutError):
        greeting = b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if ep.protocol == "smtp" and not greeting.startswith(b"220"):
        return Probe(ep, "degraded", "accepts connections but sent no SMTP greeting")
    return Probe(ep, "up", "accepts connections")


class LagReader:
    """Event lag per consumer group, from the bus if its backend can report it.

    The bus is opened lazily and kept for the app's lifetime; any failure is shown as text.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.bus.url
        self._bus: Any = None
        self._unavailable: str | None = None

    async def read(self) -> dict[tuple[str, str, int], int] | str:
        if self._unavailable:
            return self._unavailable
        if self._bus is None:
            try:
                from lgsp.bus import open_bus
            except ImportError:
                self._unavailable = "lag not available: this build has no lgsp.bus.open_bus"
                return self._unavailable
            try:
                bus = open_bus(self.url)
                if inspect.isawaitable(bus):
                    bus = await bus
            except Exception as exc:
                return f"cannot open the bus at {mask_url(self.url)}: {exc}"
            self._bus = bus
        lag = getattr(self._bus, "lag", None)
        if lag is None:
            self._unavailable = "lag not available for this backend"
            return self._unavailable
        try:
            result = await asyncio.wait_for(lag(), 3.0)
        except Exception as exc:
            return f"could not read lag: {exc!r}"
        return dict(result)

    async def close(self) -> None:
        if self._bus is not None:
            with contextlib.suppress(Exception):
                await self._bus.close()
            self._bus = None
