"""The resilient HTTP call every national connector makes.

One call = one deadline shared by all its attempts. An attempt is bounded by
min(attempt_timeout, time left). Retried, with exponential backoff and full jitter, only when
another attempt can help: a connection that could not be made, a 502/503/504 or an attempt
that timed out (those two only for idempotent requests), and 429 after its Retry-After if
that fits before the deadline. Never retried: 400/401/403/404/409 and other 4xx, 500.

Each endpoint (method + route template) has its own circuit breaker: connection failures,
time-outs and 5xx count against it; while open, calls fail at once with CircuitOpen and no
request leaves the process. Reads that allow it are answered from a TTL cache.

Each attempt is a CLIENT span carrying the W3C traceparent to the national system, inside
one INTERNAL span for the logical call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from lgsp.connectors.errors import (
    CircuitOpen,
    Conflict,
    ConnectorError,
    DeadlineExceeded,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)
from lgsp.connectors.resilience import CircuitBreaker, RetryPolicy, TTLCache
from lgsp.telemetry import trace_headers, tracer

log = logging.getLogger(__name__)
_tracer = tracer("lgsp.connectors")

RETRYABLE_STATUS = frozenset({502, 503, 504})
INVALID_STATUS = frozenset({400, 413, 415, 422})
API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class ClientOptions:
    deadline_s: float = 5.0  # one call, every attempt and wait included
    attempt_timeout_s: float = 2.0  # one attempt
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_failures: int = 5
    breaker_window_s: float = 30.0
    breaker_open_s: float = 10.0
    cache_entries: int = 10_000


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON (None when the body is empty)
    headers: Mapping[str, str]


class _Retry(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, error: ConnectorError, wait_at_least: float = 0.0) -> None:
        self.error = error
        self.wait_at_least = wait_at_least


class ResilientClient:
    def __init__(
        self,
        system: str,
        base_url: str,
        api_key: str,
        options: ClientOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.options = options or ClientOptions()
        self.breakers: dict[str, CircuitBreaker] = {}
        self.cache = TTLCache(self.options.cache_entries)
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={API_KEY_HEADER: api_key, "User-Agent": "lgsp-connector/1"},
            timeout=None,  # bounded by asyncio.timeout per attempt instead
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def breaker(self, method: str, route: str) -> CircuitBreaker:
        key = f"{method} {route}"
        if key not in self.breakers:
            o = self.options
            self.breakers[key] = CircuitBreaker(
                o.breaker_failures, o.breaker_window_s, o.breaker_open_s
            )
        return self.breakers[key]

    async def call(
        self,
        operation: str,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        cache_ttl_s: float | None = None,
        deadline_s: float | None = None,
    ) -> Reply:
        url = route.format(**{k: quote(v, safe="") for k, v in (path or {}).items()})
        cache_key = None
        if cache_ttl_s:
            body_key = json.dumps(json_body, sort_keys=True, ensure_ascii=False)
            cache_key = (method, url, tuple(sorted((params or {}).items())), body_key)
            cached = self.cache.get(cache_key)
            if cached is not None:
                assert isinstance(cached, Reply)
                return cached
        budget = self.options.deadline_s if deadline_s is None else deadline_s
        with _tracer.start_as_current_span(
            f"{self.system}.{operation}",
            attributes={"national.system": self.system, "national.operation": operation},
        ) as span:
            try:
                reply = await self._with_retries(
                    operation,
                    method,
                    route,
                    url,
                    params,
                    json_body,
                    content,
                    headers,
                    idempotent,
                    time.monotonic() + budget,
                    budget,
                )
            except ConnectorError as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("national.attempts", exc.attempts)
                raise
        if cache_key is not None:
            self.cache.put(cache_key, reply, cache_ttl_s or 0.0)
        return reply

    async def _with_retries(
        self,
        operation: str,
        method: str,
        route: str,
        url: str,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        deadline: float,
        budget: float,
    ) -> Reply:
        breaker = self.breaker(method, route)
        policy = self.options.retry
        attempt = 0
        while True:
            if not breaker.allow():
                if attempt == 0:
                    raise CircuitOpen(
                        self.system,
                        operation,
                        f"circuit open for {method} {route} after repeated failures; not called",
                        attempts=0,
                    )
                raise Unavailable(
                    self.system,
                    operation,
                    f"circuit opened during the call after {attempt} attempt(s)",
                    attempts=attempt,
                )
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                return await self._attempt(
                    operation,
                    method,
                    route,
                    url,
                    params,
                    json_body,
                    content,
                    headers,
                    idempotent,
                    attempt,
                    breaker,
                    min(self.options.attempt_timeout_s, remaining),
                    deadline,
                    budget,
                )
            except _Retry as retry:
                error = retry.error
                if attempt >= policy.max_attempts or breaker.state == "open":
                    # Out of attempts, or this failure opened the circuit: no point waiting.
                    raise error from None
                wait = max(retry.wait_at_least, policy.delay(attempt, self._rng))
                if time.monotonic() + wait >= deadline:
                    # Sleeping would only end at the deadline: fail now, with the reason.
                    raise error from None
                # DEBUG: a retry that succeeds is no news, and one that fails reaches the
                # caller, which logs it once (a poller during an outage would otherwise write
                # these lines at every pass). The span keeps the attempts.
                log.debug(
                    "national call failed, retrying",
                    extra={
                        "system": self.system,
                        "operation": operation,
                        "attempt": attempt,
                        "error": str(error),
                        "wait_s": round(wait, 3),
                    },
                )
                await asyncio.sleep(wait)

    async def _attempt(
        self,
        operation: str,
        method: str,
        route: str,
        url: str,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        attempt: int,
        breaker: CircuitBreaker,
        bound: float,
        deadline: float,
        budget: float,
    ) -> Reply:
        def fail(cls: type[ConnectorError], message: str, **kw: Any) -> ConnectorError:
            return cls(self.system, operation, message, attempts=attempt, **kw)

        if bound <= 0:
            raise fail(DeadlineExceeded, f"deadline of {budget:.2f}s passed")
        with _tracer.start_as_current_span(
            f"{method} {route}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": f"{self.base_url}{url}",
                "server.address": self._http.base_url.host,
                "http.request.resend_count": attempt - 1,
            },
        ) as span:
            send_headers = {**(headers or {}), **trace_headers()}
            try:
                async with asyncio.timeout(bound):
                    resp = await self._http.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        content=content,
                        headers=send_headers,
                    )
            except TimeoutError:
                breaker.record_failure()
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                if deadline - time.monotonic() <= 0.01:
                    raise fail(
                        DeadlineExceeded, f"no answer within the deadline of {budget:.2f}s"
                    ) from None
                error = fail(DeadlineExceeded, f"attempt timed out after {bound:.2f}s")
                if idempotent:
                    raise _Retry(error) from None
                raise error from None
            except httpx.ConnectError as exc:
                breaker.record_failure()
                span.set_status(Status(StatusCode.ERROR, "connect error"))
                # Nothing was sent: safe to retry even a non-idempotent request.
                raise _Retry(fail(Unavailable, f"cannot connect: {exc}")) from None
            except httpx.TransportError as exc:
                breaker.record_failure()
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                error = fail(Unavailable, f"transport error: {exc!r}")
                if idempotent:
                    raise _Retry(error) from None
                raise error from None
            except asyncio.CancelledError:
                breaker.release()
                raise
            span.set_attribute("http.response.status_code", resp.status_code)
            if resp.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {resp.status_code}"))
                breaker.record_failure()
            else:
                breaker.record_success()
            return self._reply(resp, fail, idempotent)

    def _reply(self, resp: httpx.Response, fail: Any, idempotent: bool) -> Reply:
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        status = resp.status_code
        if status < 300:
            return Reply(status, body, resp.headers)
        err = body if isinstance(body, dict) else {}
        code = err.get("code")
        message = str(err.get("message") or f"HTTP {status}")
        kw = {"status": status, "code": code}
        if status == 429:
            after = _retry_after(resp.headers.get("retry-after"))
            error = fail(Unavailable, message, retry_after=after, **kw)
            raise _Retry(error, wait_at_least=after or 0.0)
        if status in RETRYABLE_STATUS:
            error = fail(Unavailable, message, **kw)
            if idempotent:
                raise _Retry(error)
            raise error
        if status >= 500:
            raise fail(Unavailable, message, retryable=False, **kw)
        if status == 404:
            raise fail(NotFound, message, **kw)
        if status == 401:
            raise fail(Unauthorized, message, **kw)
        if status == 403:
            raise fail(Forbidden, message, **kw)
        if status in (409, 410):
            raise fail(Conflict, message, **kw)
        if status in INVALID_STATUS:
            raise fail(InvalidRequest, message, field=err.get("field"), **kw)
        raise fail(InvalidRequest, message, **kw)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # the HTTP-date form: treat as unknown, back off normally


def base_url(host: str, port: int, scheme: str = "http") -> str:
    if host in {"0.0.0.0", ""}:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
