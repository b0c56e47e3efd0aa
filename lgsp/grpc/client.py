"""gRPC client channels for calling LGSP services (and the gateway) from a service.

The channel injects the caller's W3C trace context into every call (CLIENT spans from
opentelemetry-instrumentation-grpc), so a trace follows a request from service to service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from lgsp.grpc.server import DEFAULT_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from lgsp.config import Settings

__all__ = ["channel", "channel_credentials", "client_options"]


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """What a client of the platform's gRPC ports dials with: TLS trusting [tls] ca_file
    (the development CA's root, or the system's roots) when [tls] is enabled, else None."""
    if not settings.tls.enabled:
        return None
    from lgsp.tls import files

    return grpc.ssl_channel_credentials(root_certificates=files(settings).ca_pem())


def is_local(target: str) -> bool:
    """Whether a "host:port" target is on this machine (loopback)."""
    host = target.rpartition(":")[0].strip("[]") if ":" in target else target
    return host in ("localhost", "::1") or host.startswith("127.")


# gRPC's default reconnect backoff (1 s, growing to 120 s) is tuned for far, flaky peers; a
# restarted local service would be reached only 1-2.5 s after it is back (issue 13, item 19).
LOCAL_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def client_options(
    service_name: str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    target: str = "",
) -> list[tuple[str, Any]]:
    """Channel options matching the server bootstrap's limits and keepalive policy; a local
    `target` is reconnected to quickly."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Detect dead peers (a restarted pod, a silent NAT drop) within ~40 s.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Retry transparently on connection-level failures before the call reached a server.
        ("grpc.enable_retries", 1),
    ]
    if service_name:
        options.append(("grpc.primary_user_agent", f"lgsp-{service_name}"))
    if target and is_local(target):
        options += LOCAL_RECONNECT
    return options


def channel(
    target: str,
    *,
    service_name: str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    credentials: grpc.ChannelCredentials | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    tracing: bool = True,
) -> grpc.aio.Channel:
    """An aio channel to `target` ("host:port"); TLS when `credentials` are given.

    `service_name` names the calling service in the user agent. Extra `interceptors` run
    after the tracing one, so they see the CLIENT span as current.
    """
    chain: list[grpc.aio.ClientInterceptor] = []
    if tracing:
        chain += aio_client_interceptors()
    chain += interceptors
    all_options = [*client_options(service_name, max_message_bytes, target), *options]
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=all_options, interceptors=chain or None
        )
    return grpc.aio.insecure_channel(target, options=all_options, interceptors=chain or None)
