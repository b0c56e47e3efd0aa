"""The pass-through: any method of the platform's services, forwarded by name as raw bytes.

A grpc.GenericRpcHandler on the gateway's server answers every "/lgsp.api.<area>.v<N>.<Service>/
<Method>" whose area has a route (identity, documents, dossiers, search, mail by default).
For each call it:

1. takes the caller from the token (checked by the platform's auth layer with
   GatewayAuthenticator, which hands refusals to the proxy so they are logged too) — the
   member is the token's client (azp); a user token from a member system's frontend counts
   for that member; with mutual TLS the certificate names the member and the token must
   belong to it;
2. checks the member is active and holds a right on the method (AccessService); a call with
   no authorization entry at all to a method a service declares public (Plugin.public_methods:
   the citizens' dossier lookup) needs no member and is limited per caller address instead;
3. admits it under the member's rate and concurrency limits (RESOURCE_EXHAUSTED otherwise);
4. checks the request parses as the method's input type (INVALID_ARGUMENT otherwise);
5. forwards it with the caller's metadata (authorization, traceparent/tracestate,
   x-request-id…; hop-by-hop headers dropped; x-lgsp-message-id and x-lgsp-client-member
   added, the caller's address appended to x-forwarded-for) and the remaining deadline;
   all four call shapes stream message by message;
6. appends an entry to the message log (also for refused calls) and returns the upstream's
   answer, status and trailers, with x-lgsp-message-id in the trailers.

The call shape comes from the descriptor pool (every lgsp.api module is loaded); a method the
pool does not know, in a routed area, is forwarded as a bidirectional stream, which carries
any shape. Trace context passes through unchanged; a call without one joins the gateway's
own span's trace, so the log's trace id always opens the call's trace.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from opentelemetry import propagate, trace

from lgsp import events
from lgsp.auth import Authenticator, Principal, current_principal
from lgsp.grpc.client import client_options
from lgsp.grpc.errors import (
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
    Unavailable,
    to_status,
)
from lgsp.netaddr import peer_host
from lgsp.ratelimit import KeyedBuckets
from services.gateway.limits import Limiter, LimitExceeded
from services.gateway.msglog import LogEntry, LogUnavailable, MessageLog, format_time
from services.gateway.registry import Registry

__all__ = [
    "ANSWERED_PREFIXES",
    "AUTH_ERROR_CLAIM",
    "OWN_PREFIXES",
    "GatewayAuthenticator",
    "LoggedMethod",
    "Proxy",
    "Route",
    "certificate_sha256",
]

log = logging.getLogger("services.gateway")

# The gateway answers these itself (its admin services, diagnostics, health, reflection).
OWN_PREFIXES = ("/lgsp.api.gateway.v1.", "/lgsp.api.diagnostics.v1.", "/grpc.")
# Answered by the gateway too, but as member calls: rights, limits and the message log as
# for a forwarded call (national.py, the connectors to the national systems).
ANSWERED_PREFIXES = ("/lgsp.api.national.v1.",)
AUTH_ERROR_CLAIM = "lgsp.gateway.auth_error"
AUTH_CODE_CLAIM = "lgsp.gateway.auth_code"
# Set on an anonymous principal when the call carried no authorization entry at all: only such
# a call may reach a public method without a token (a bad token is refused as ever).
NO_TOKEN_CLAIM = "lgsp.gateway.no_token"
FORWARDED_FOR = "x-forwarded-for"
MESSAGE_ID = "x-lgsp-message-id"
CLIENT_MEMBER = "x-lgsp-client-member"
RETRY_AFTER = "retry-after-ms"
# Connection-level or re-generated headers: never forwarded.
_HOP_BY_HOP = frozenset(
    {
        ":authority",
        "te",
        "content-type",
        "user-agent",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-previous-rpc-attempts",
        MESSAGE_ID,
        CLIENT_MEMBER,
    }
)
_METHOD = re.compile(r"/lgsp\.api\.([a-z][a-z0-9_]*)\.(v[0-9]+)\.([A-Za-z_]\w*)/([A-Za-z_]\w*)")
_EMPTY_SHA = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Route:
    """Where calls of one area go: the upstream address and its member code in the log."""

    area: str
    target: str
    member_code: str


class GatewayAuthenticator:
    """The platform auth layer's authenticator for the gateway's server.

    The gateway's own services are checked as usual. For forwarded methods a refusal is not
    raised here but handed to the proxy in the principal's claims, so the proxy can log the
    refused call in the message log before answering UNAUTHENTICATED.
    """

    def __init__(self, inner: Authenticator) -> None:
        self.inner = inner
        # The platform runtime follows the inner checks' ended sessions (lgsp.authn.sessions).
        self.sessions = getattr(inner, "sessions", None)

    async def authenticate(self, metadata: Mapping[str, str], method: str) -> Principal:
        if method.startswith(OWN_PREFIXES):
            return await self.inner.authenticate(metadata, method)
        try:
            return await self.inner.authenticate(metadata, method)
        except ServiceError as error:
            claims: dict[str, Any] = {
                AUTH_ERROR_CLAIM: error.message,
                AUTH_CODE_CLAIM: error.code.name,
            }
            if "authorization" not in metadata:
                claims[NO_TOKEN_CLAIM] = True
            return Principal(subject="", kind="anonymous", claims=claims)


def certificate_sha256(context: grpc.aio.ServicerContext) -> str:
    """Lowercase hex SHA-256 of the peer's TLS client certificate (DER), or ""."""
    try:
        auth = context.auth_context()
    except Exception:
        return ""
    pems = auth.get("x509_pem_cert") if auth else None
    if not pems:
        return ""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(pems[0])
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _trace_id(parent: Any) -> str:
    """The caller's trace id from its traceparent, else the gateway span's."""
    if isinstance(parent, str):
        parts = parent.split("-")
        if len(parts) >= 3 and len(parts[1]) == 32:
            return parts[1]
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else ""


def _code_number(code: grpc.StatusCode) -> int:
    return int(code.value[0])


def _trailers(metadata: Any) -> list[tuple[str, Any]]:
    """Upstream trailers worth returning: custom ones and the rich status details."""
    out = []
    for key, value in metadata or ():
        if key.startswith("grpc-") and key != "grpc-status-details-bin":
            continue
        out.append((key, value))
    return out


class _Digest:
    """Hash and size of a body: one message as is; a stream as length-prefixed messages."""

    __slots__ = ("count", "h", "size")

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.size = 0
        self.count = 0

    def add(self, message: bytes, streaming: bool) -> None:
        if streaming:
            self.h.update(len(message).to_bytes(4, "big"))
        self.h.update(message)
        self.size += len(message)
        self.count += 1

    def hexdigest(self) -> str:
        return self.h.hexdigest()


@dataclass(slots=True)
class _Exchange:
    """One call through the gateway, as its log entry will say."""

    message_id: str
    when: float
    started: float
    principal: Principal
    trace_id: str
    req: _Digest = field(default_factory=lambda: _Digest())
    resp: _Digest = field(default_factory=lambda: _Digest())
    who: list[str] = field(default_factory=lambda: [""])  # the client member, once admitted
    code: grpc.StatusCode = grpc.StatusCode.OK
    release: Callable[[], None] | None = None
    entry: LogEntry | None = None


class Proxy(grpc.GenericRpcHandler):
    def __init__(
        self,
        registry: Registry,
        limiter: Limiter,
        msglog: MessageLog,
        routes: Mapping[str, Route],
        *,
        require_client_certificate: bool = False,
        max_message_bytes: int = 4 * 1024 * 1024,
        public_methods: Iterable[str] = (),
        public_limits: KeyedBuckets | None = None,
        upstream_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.registry = registry
        # TLS to the services when [tls] is on (lgsp.grpc.client.channel_credentials).
        self.upstream_credentials = upstream_credentials
        # Methods the services declare public (Plugin.public_methods): callable without a
        # token, each caller address under `public_limits`.
        self.public_methods = frozenset(public_methods)
        self.public_limits = public_limits or KeyedBuckets(600, 60)
        self.limiter = limiter
        self.msglog = msglog
        self.routes = dict(routes)
        self.require_client_certificate = require_client_certificate
        self.max_message_bytes = max_message_bytes
        self._handlers: dict[str, Any] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        events._load_registry()  # the descriptor pool knows every lgsp.api method
        self._pool = descriptor_pool.Default()

    # --- handler lookup -----------------------------------------------------------------------

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        if not method.startswith("/lgsp.api.") or method.startswith(OWN_PREFIXES):
            return None
        if method.startswith(ANSWERED_PREFIXES):
            return None
        handler, cacheable = self._build(method)
        if cacheable and len(self._handlers) < 10_000:
            self._handlers[method] = handler
        return handler

    def _build(self, method: str) -> tuple[Any, bool]:
        m = _METHOD.fullmatch(method)
        if m is None:
            return _refusal(
                method, "is not a method name /lgsp.api.<area>.vN.<Service>/<Method>"
            ), False
        area, version, service, name = m.groups()
        route = self.routes.get(area)
        if route is None:
            known = ", ".join(sorted(self.routes))
            return _refusal(method, f"has no route: the gateway forwards {known}"), False
        full = f"lgsp.api.{area}.{version}.{service}.{name}"
        try:
            desc = self._pool.FindMethodByName(full)
        except KeyError:
            desc = None
        proxy = _MethodProxy(self, method, route, desc)
        return proxy.handler(), True

    def channel(self, target: str) -> grpc.aio.Channel:
        ch = self._channels.get(target)
        if ch is None:
            options = client_options("gateway", self.max_message_bytes, target)
            if self.upstream_credentials is not None:
                ch = grpc.aio.secure_channel(target, self.upstream_credentials, options=options)
            else:
                ch = grpc.aio.insecure_channel(target, options=options)
            self._channels[target] = ch
        return ch

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._handlers.clear()  # their multicallables belong to the closed channels

    # --- admission ----------------------------------------------------------------------------

    def admit(
        self,
        method: str,
        principal: Principal,
        context: grpc.aio.ServicerContext,
        who: list[str],
    ) -> Callable[[], None]:
        """The release of the member's concurrency slot, or ServiceError if refused; `who[0]`
        is set to the member's code as soon as it is known (refused calls are logged with it)."""
        error = principal.claims.get(AUTH_ERROR_CLAIM) if principal.is_anonymous else None
        if principal.is_anonymous:
            if principal.claims.get(NO_TOKEN_CLAIM) and method in self.public_methods:
                return self.admit_public(context)
            code = principal.claims.get(AUTH_CODE_CLAIM)
            if code == "UNAVAILABLE":
                raise Unavailable(str(error))
            raise Unauthenticated(str(error or "authentication required"))
        client_id = principal.client_id or ""
        member = self.registry.member_for_client(client_id)
        if self.require_client_certificate or member is None or member.certificate_sha256:
            fingerprint = certificate_sha256(context)
            if fingerprint:
                by_cert = self.registry.member_for_certificate(fingerprint)
                if by_cert is None:
                    raise PermissionDenied("client certificate belongs to no registered member")
                if member is None or by_cert.code != member.code:
                    raise PermissionDenied(
                        f"token of client {client_id or '(none)'} presented with the "
                        f"certificate of member {by_cert.code}"
                    )
            elif self.require_client_certificate or (member and member.certificate_sha256):
                raise PermissionDenied("a client certificate is required for this member")
        if member is None:
            raise PermissionDenied(
                f"client {client_id or '(none)'} is not a registered LGSP member"
            )
        who[0] = member.code
        if not member.active:
            raise PermissionDenied(f"member {member.code} is suspended")
        decision = self.registry.check_method(member.code, method)
        if not decision.allowed:
            raise PermissionDenied(f"member {member.code} may not call {method}: {decision.reason}")
        try:
            self.msglog.check_capacity()
        except LogUnavailable:
            raise Unavailable("message log unavailable, retry later", retry_after=1.0) from None
        release = self.limiter.admit(
            member.code,
            member.rate_limit_per_minute,
            decision.right_id,
            decision.rate_limit_per_minute,
        )
        return release

    def admit_public(self, context: grpc.aio.ServicerContext) -> Callable[[], None]:
        """A call without a token to a public method: no member (logged with an empty client
        member), limited per caller address instead."""
        try:
            self.msglog.check_capacity()
        except LogUnavailable:
            raise Unavailable("message log unavailable, retry later", retry_after=1.0) from None
        wait = self.public_limits.take(peer_host(str(context.peer() or "")))
        if wait:
            raise LimitExceeded(
                f"too many calls without a token from this address; retry in {wait:.1f} s", wait
            )
        return _no_release


def _no_release() -> None:
    """Public calls hold no member's concurrency slot."""


def _refusal(method: str, why: str) -> Any:
    async def refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"method {method} {why}")

    return grpc.stream_stream_rpc_method_handler(refuse)


class LoggedMethod:
    """What every call of one method through the gateway goes through, forwarded or answered
    by the gateway itself (national.py): admission (rights, limits) and its message log entry,
    written durably before the answer leaves. `service_member` is the log's service side."""

    def __init__(self, gw: Proxy, method: str, service_member: str) -> None:
        self.gw = gw
        self.method = method
        self.service_member = service_member

    # --- pieces shared by the four shapes -----------------------------------------------------

    def _begin(
        self, context: grpc.aio.ServicerContext
    ) -> tuple[str, list[tuple[str, Any]], str, bool]:
        """The message id, the metadata to forward, the trace id and whether the caller sent
        trace context, in one pass over the metadata."""
        forward: list[tuple[str, Any]] = []
        traceparent = None
        hops: list[str] = []
        for key, value in context.invocation_metadata() or ():
            if key in _HOP_BY_HOP:
                continue
            if key == "traceparent":
                traceparent = value
            if key == FORWARDED_FOR:
                hops.append(str(value))
                continue
            forward.append((key, value))
        # As any proxy: the caller's address appended, so a service that trusts the gateway
        # (dossiers' trusted_proxies) limits each citizen, not the gateway; entries the caller
        # sent are kept left of it, and such a service believes only the rightmost untrusted.
        hops.append(peer_host(str(context.peer() or "")))
        forward.append((FORWARDED_FOR, ", ".join(hops)))
        return str(uuid.uuid4()), forward, _trace_id(traceparent), traceparent is not None

    @staticmethod
    def _forward_metadata(
        md: list[tuple[str, Any]], traced: bool, message_id: str, member: str
    ) -> list[tuple[str, Any]]:
        if not traced:  # the call joins the gateway span's trace
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            md.extend(carrier.items())
        md.append((MESSAGE_ID, message_id))
        md.append((CLIENT_MEMBER, member))
        return md

    def _record(self, x: _Exchange) -> LogEntry | None:
        """The exchange's log entry, appended once (a second call returns None)."""
        if x.entry is not None:
            return None
        ok = x.code is grpc.StatusCode.OK
        response = x.resp if ok else None
        x.entry = self.gw.msglog.append(
            id=x.message_id,
            time=format_time(x.when),
            client_member=x.who[0],
            service_member=self.service_member,
            caller=x.principal.subject,
            method=self.method,
            status_code=_code_number(x.code),
            duration_us=int((time.perf_counter() - x.started) * 1e6),
            trace_id=x.trace_id,
            request_sha256=x.req.hexdigest() if x.req.count else _EMPTY_SHA,
            response_sha256=response.hexdigest() if response is not None and response.count else "",
            request_size=x.req.size,
            response_size=response.size if response is not None else 0,
        )
        return x.entry

    async def _logged(self, x: _Exchange, context: grpc.aio.ServicerContext) -> None:
        """Write-ahead: the answer goes back only once its entry is durable in the log."""
        entry = self._record(x)
        if entry is None:
            return
        try:
            await self.gw.msglog.durable(entry)
        except LogUnavailable as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e), ((MESSAGE_ID, x.message_id),))

    async def _refuse(
        self, context: grpc.aio.ServicerContext, error: ServiceError, x: _Exchange
    ) -> None:
        x.code = error.code
        await self._logged(x, context)
        code, message, trailers = to_status(error)
        extra: tuple[tuple[str, Any], ...] = ((MESSAGE_ID, x.message_id),)
        if isinstance(error, LimitExceeded):
            extra += ((RETRY_AFTER, str(max(1, int(error.retry_after * 1000)))),)
        await context.abort(code, message, trailers + extra)

    def _start(
        self, context: grpc.aio.ServicerContext
    ) -> tuple[_Exchange, list[tuple[str, Any]], bool]:
        started, when = time.perf_counter(), time.time()
        message_id, forward, trace_id, traced = self._begin(context)
        x = _Exchange(message_id, when, started, current_principal(), trace_id)
        return x, forward, traced

    def _admit(self, x: _Exchange, context: grpc.aio.ServicerContext) -> Callable[[], None]:
        release = self.gw.admit(self.method, x.principal, context, x.who)
        x.release = release
        return release

    def _end(self, x: _Exchange, failure: BaseException | None) -> None:
        """Whatever happened: the limits released and the exchange logged once (a call the
        client cancelled, or one that failed inside the gateway, is logged without waiting)."""
        if isinstance(failure, asyncio.CancelledError | GeneratorExit):
            x.code = grpc.StatusCode.CANCELLED
        elif failure is not None and x.code is grpc.StatusCode.OK and x.entry is None:
            x.code = grpc.StatusCode.INTERNAL
        if x.release is not None:
            x.release()
            x.release = None
        self._record(x)

    def _timeout(self, context: grpc.aio.ServicerContext) -> float | None:
        remaining = context.time_remaining()
        return None if remaining is None else max(remaining, 0.0)

    def _validate(self, message: bytes) -> None:
        """Refuse a request that does not parse (a forwarded method's input type)."""

    def _admitted(
        self, x: _Exchange, context: grpc.aio.ServicerContext, validate: bytes | None
    ) -> ServiceError | None:
        """The refusal of the call (rights, limits, the request's schema), if any."""
        try:
            self._admit(x, context)
            if validate is not None:
                self._validate(validate)
        except ServiceError as error:
            return error
        return None

    async def answered(
        self,
        request: ProtoMessage,
        context: grpc.aio.ServicerContext,
        work: Callable[[float | None], Awaitable[ProtoMessage]],
    ) -> ProtoMessage:
        """A unary call the gateway answers itself: admitted like a forwarded one, then
        `work(seconds left of the caller's deadline)`; a ServiceError it raises is the answer.
        Logged (durably) either way, with x-lgsp-message-id in the trailers."""
        x, _, _ = self._start(context)
        x.req.add(request.SerializeToString(), False)
        failure: BaseException | None = None
        try:
            refusal = self._admitted(x, context, None)
            if refusal is not None:
                await self._refuse(context, refusal, x)
            try:
                response = await work(self._timeout(context))
            except ServiceError as error:
                await self._refuse(context, error, x)
            x.resp.add(response.SerializeToString(), False)
            context.set_trailing_metadata(((MESSAGE_ID, x.message_id),))
            await self._logged(x, context)
            return response
        except BaseException as e:
            failure = e
            raise
        finally:
            self._end(x, failure)


class _MethodProxy(LoggedMethod):
    """Forwarding of one method (its route, shape and input type resolved once)."""

    def __init__(self, gw: Proxy, method: str, route: Route, desc: Any) -> None:
        super().__init__(gw, method, route.member_code)
        self.route = route
        self._callable: Any = None
        if desc is None:
            self.client_streaming = self.server_streaming = True
            self.input: type[ProtoMessage] | None = None
        else:
            self.client_streaming = bool(desc.client_streaming)
            self.server_streaming = bool(desc.server_streaming)
            self.input = events.message_class(desc.input_type.full_name)

    def upstream(self) -> Any:
        """The method's multicallable on the route's channel, made once and registered with
        the channel (grpc resolves the method path once, not per call)."""
        if self._callable is None:
            ch = self.gw.channel(self.route.target)
            if self.client_streaming and self.server_streaming:
                factory: Any = ch.stream_stream
            elif self.client_streaming:
                factory = ch.stream_unary
            elif self.server_streaming:
                factory = ch.unary_stream
            else:
                factory = ch.unary_unary
            self._callable = factory(self.method, _registered_method=True)
        return self._callable

    def handler(self) -> Any:
        if self.client_streaming and self.server_streaming:
            return grpc.stream_stream_rpc_method_handler(self.stream_stream)
        if self.client_streaming:
            return grpc.stream_unary_rpc_method_handler(self.stream_unary)
        if self.server_streaming:
            return grpc.unary_stream_rpc_method_handler(self.unary_stream)
        return grpc.unary_unary_rpc_method_handler(self.unary_unary)

    def _validate(self, message: bytes) -> None:
        if self.input is not None:
            try:
                self.input.FromString(message)
            except (DecodeError, ValueError):
                raise InvalidArgument(
                    "request", f"is not a valid {self.input.DESCRIPTOR.full_name}"
                ) from None

    async def _upstream_error(
        self, context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError, x: _Exchange
    ) -> None:
        code = x.code = error.code()
        await self._logged(x, context)
        details = error.details() or ""
        if code is grpc.StatusCode.UNAVAILABLE:
            details = f"upstream {self.route.area} unavailable: {details}"
        trailers = [*_trailers(error.trailing_metadata()), (MESSAGE_ID, x.message_id)]
        await context.abort(code, details, tuple(trailers))

    # --- the four shapes ----------------------------------------------------------------------
    # Each: admit (rights, limits, schema) → forward → log the exchange durably → answer.

    async def unary_unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        x, forward, traced = self._start(context)
        x.req.add(request, False)
        return await self._one_answer(x, context, forward, traced, request, request, False)

    async def stream_unary(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        x, forward, traced = self._start(context)
        body = self._requests(request_iterator, x.req, [])
        return await self._one_answer(x, context, forward, traced, body, None, True)

    async def unary_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        x, forward, traced = self._start(context)
        x.req.add(request, True)
        answers = self._answers(x, context, forward, traced, request, request)
        try:
            async for message in answers:
                yield message
        finally:
            await answers.aclose()  # a caller gone: the exchange ends (and is logged) now

    async def stream_stream(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        x, forward, traced = self._start(context)
        body = self._requests(request_iterator, x.req, [])
        answers = self._answers(x, context, forward, traced, body, None)
        try:
            async for message in answers:
                yield message
        finally:
            await answers.aclose()  # a caller gone: the exchange ends (and is logged) now

    async def _requests(
        self, request_iterator: AsyncIterator[bytes], digest: _Digest, first: list[bytes]
    ) -> AsyncIterator[bytes]:
        for message in first:
            yield message
        async for message in request_iterator:
            digest.add(message, True)
            yield message

    async def _one_answer(
        self,
        x: _Exchange,
        context: grpc.aio.ServicerContext,
        forward: list[tuple[str, Any]],
        traced: bool,
        body: Any,
        validate: bytes | None,
        streamed: bool,
    ) -> bytes:
        """Forward a call with one response (its request one message or a stream)."""
        failure: BaseException | None = None
        try:
            refusal = self._admitted(x, context, validate)
            if refusal is not None:
                await self._refuse(context, refusal, x)
            call = self.upstream()(
                body,
                metadata=self._forward_metadata(forward, traced, x.message_id, x.who[0]),
                timeout=self._timeout(context),
            )
            try:
                response = await call
            except grpc.aio.AioRpcError as error:
                await self._upstream_error(context, error, x)
            x.resp.add(response, streamed)
            context.set_trailing_metadata(
                (*tuple(_trailers(await call.trailing_metadata())), (MESSAGE_ID, x.message_id))
            )
            await self._logged(x, context)
            return response
        except BaseException as e:
            failure = e
            raise
        finally:
            self._end(x, failure)

    async def _answers(
        self,
        x: _Exchange,
        context: grpc.aio.ServicerContext,
        forward: list[tuple[str, Any]],
        traced: bool,
        body: Any,
        validate: bytes | None,
    ) -> AsyncGenerator[bytes, None]:
        """Forward a call with a stream of responses; its final status waits for the entry."""
        failure: BaseException | None = None
        try:
            refusal = self._admitted(x, context, validate)
            if refusal is not None:
                await self._refuse(context, refusal, x)
            call = self.upstream()(
                body,
                metadata=self._forward_metadata(forward, traced, x.message_id, x.who[0]),
                timeout=self._timeout(context),
            )
            try:
                async for message in call:
                    x.resp.add(message, True)
                    yield message
            except grpc.aio.AioRpcError as error:
                await self._upstream_error(context, error, x)
            context.set_trailing_metadata(
                (*tuple(_trailers(await call.trailing_metadata())), (MESSAGE_ID, x.message_id))
            )
            await self._logged(x, context)
        except BaseException as e:
            failure = e
            raise
        finally:
            self._end(x, failure)
